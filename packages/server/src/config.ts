import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Cron } from 'croner';
import { defaultDataDir } from './data-dir.ts';
import { parseNodeUrl } from './storage/node-spec.ts';
import { S3_MAX_PARTS, S3_MIN_PART_BYTES } from './storage/s3/limits.ts';

const MiB = 1024 * 1024;

/**
 * Every setting dfs reads, declared once. Each key is the `DFS_*` variable that sets it; the
 * README's config table is written from this list. Defaults run with no setup at all.
 */
const EnvSchema = Type.Object({
  DFS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'HTTP port' }),
  DFS_HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description: 'interface to listen on (`0.0.0.0` to serve the network)',
  }),
  DFS_DATA_DIR: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'SQLite database, the generated secret, the default node',
      defaultText: '`data/` in the dfs checkout, wherever dfs is started from',
    }),
  ),
  DFS_DB_URL: Type.Optional(
    Type.String({
      pattern: '^(sqlite|mysql)://',
      description: 'or `mysql://user:pass@host:3306/db` (MySQL 8 / MariaDB 10.6+)',
      defaultText: '`sqlite://<data dir>/dfs.sqlite`',
    }),
  ),
  DFS_DB_READ_URL: Type.Optional(
    Type.String({
      pattern: '^mysql://',
      description:
        "a MariaDB read replica of `DFS_DB_URL`: listings, search and share look-ups read there, a user's own writes always read back fresh (see docs/OPERATIONS.md)",
    }),
  ),
  DFS_DB_READ_MAX_LAG_SECONDS: Type.Number({
    exclusiveMinimum: 0,
    default: 5,
    description: 'a replica further behind (or not answering) sends every read to the primary',
  }),
  DFS_NODES: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'comma-separated node URLs: `local:///abs/dir`, `sftp://user:pass@host:22/abs/dir` (URL-encoded password), `sftp://user@host:22/abs/dir?key=/abs/keyfile`, `s3://KEY:SECRET@host:port/bucket[/prefix]?region=…&tls=0|1&pathStyle=0|1&presign=0|1` (see S3 nodes)',
      defaultText: '`local://<data dir>/nodes/local`',
    }),
  ),
  DFS_REPLICAS: Type.Integer({
    minimum: 1,
    maximum: 16,
    default: 2,
    description: 'copies of each content, capped by the nodes that are up',
  }),
  DFS_HEARTBEAT_SECONDS: Type.Number({
    exclusiveMinimum: 0,
    default: 10,
    description: 'node ping interval; two missed beats mark a node down',
  }),
  DFS_REPAIR_GRACE_SECONDS: Type.Number({
    minimum: 0,
    default: 900,
    description: 'how long a down node still counts as holding its copies before repair replaces them',
  }),
  DFS_SCRUB_BYTES_PER_SECOND: Type.Integer({
    minimum: 0,
    default: 8 * MiB,
    description: 'read budget of the scrub job that re-hashes replicas; 0 turns scrubbing off',
    defaultText: '`8388608` (8 MiB)',
  }),
  DFS_SCRUB_PERIOD_DAYS: Type.Number({
    minimum: 0,
    default: 30,
    description: 'each replica is re-hashed about this often',
  }),
  DFS_DRAIN_NODES: Type.Optional(
    Type.String({
      description:
        'comma-separated nodes (URLs as in DFS_NODES, or names) to empty: no new writes, copies move',
    }),
  ),
  DFS_ACCEL_REDIRECT: Type.Optional(
    Type.String({
      description:
        'downloads nginx sends itself from node directories it can read: `/location/=node` pairs (see docs/OPERATIONS.md); off by default',
    }),
  ),
  DFS_SECRET: Type.Optional(
    Type.String({
      minLength: 16,
      description: 'peppers password hashes; keep it with the database',
      defaultText: 'generated into `<data dir>/secret`',
    }),
  ),
  DFS_CHUNK_SIZE: Type.Integer({
    minimum: 64 * 1024,
    maximum: 256 * MiB,
    default: 8 * MiB,
    description: 'upload chunk size, decided by the server',
    defaultText: '`8388608` (8 MiB)',
  }),
  DFS_MAX_FILE_SIZE: Type.Integer({
    minimum: 1,
    default: 64 * 1024 * MiB,
    description: 'largest file accepted',
    defaultText: '64 GiB',
  }),
  DFS_UPLOAD_EXPIRY_HOURS: Type.Number({
    exclusiveMinimum: 0,
    default: 24,
    description: 'unfinished uploads expire (sliding) and their bytes are swept',
  }),
  DFS_MAX_UPLOADS_PER_USER: Type.Integer({
    minimum: 1,
    default: 50,
    description: 'unfinished uploads per user',
  }),
  DFS_SESSION_DAYS: Type.Number({
    exclusiveMinimum: 0,
    default: 30,
    description: 'sliding session lifetime',
  }),
  DFS_GC_GRACE_SECONDS: Type.Number({
    minimum: 0,
    default: 3600,
    description: 'how long unreferenced content stays on the nodes',
  }),
  DFS_VERSIONS_MAX_SHARE: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.5,
    description:
      "share of a user's quota old versions may take (the oldest go first beyond it); versions whose content a file still uses cost nothing",
  }),
  DFS_VERSIONS_EVERY_MINUTES: Type.Number({
    exclusiveMinimum: 0,
    default: 15,
    description:
      'how often the version job thins old versions (every one for a day, hourly for a week, daily for a month, weekly after)',
  }),
  DFS_MASS_CHANGE_FILES: Type.Integer({
    minimum: 1,
    default: 100,
    description:
      'files one actor may replace, rename, move or trash within `DFS_MASS_CHANGE_MINUTES` before the owner is alerted',
  }),
  DFS_MASS_CHANGE_MINUTES: Type.Number({
    exclusiveMinimum: 0,
    default: 5,
    description: 'the window of `DFS_MASS_CHANGE_FILES`',
  }),
  DFS_SIGNIN_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 10,
    description: 'sign-ins per minute per address and name',
  }),
  DFS_SIGNUP: Type.Union([Type.Literal('open'), Type.Literal('closed'), Type.Literal('invite')], {
    default: 'open',
    description:
      "`open`, `closed` (admins create users) or `invite` (sign-up needs an admin's invite code); the first account can always sign up",
  }),
  DFS_SIGNUP_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 10,
    description: 'sign-ups per hour per address',
  }),
  DFS_LDAP_URL: Type.Optional(
    Type.String({
      pattern: '^ldaps?://[^/?#]+/?$',
      description:
        '`ldap://host:389` or `ldaps://host:636`: directory users sign in with their directory password (see Users, groups and sign-in)',
      defaultText: 'none (no directory)',
    }),
  ),
  DFS_LDAP_BIND_DN: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'the service account that searches the directory for the user',
    }),
  ),
  DFS_LDAP_BIND_PASSWORD: Type.Optional(
    Type.String({ minLength: 1, description: "the service account's password" }),
  ),
  DFS_LDAP_SEARCH_BASE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'where users are searched (`ou=people,dc=example,dc=org`); needed with `DFS_LDAP_URL`',
    }),
  ),
  DFS_LDAP_SEARCH_FILTER: Type.String({
    pattern: '\\{username\\}',
    default: '(uid={username})',
    description:
      'the user entry, `{username}` being the name typed at sign-in (escaped); an entry the filter leaves out cannot sign in, e.g. `(&(uid={username})(!(employeeType=disabled)))`',
  }),
  DFS_LDAP_STARTTLS: Type.Union([Type.Literal('false'), Type.Literal('true')], {
    default: 'false',
    description: '`true`: upgrade an `ldap://` connection with StartTLS before any password is sent',
  }),
  DFS_LDAP_TLS_CA: Type.Optional(
    Type.String({
      minLength: 1,
      description: "a PEM file of the CA that signed the directory's certificate (`ldaps://` or StartTLS)",
      defaultText: "the system's CAs",
    }),
  ),
  DFS_LDAP_GROUP_BASE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "where groups are searched; when set, a directory user's dfs groups (by `cn`) follow the directory at each sign-in",
    }),
  ),
  DFS_LDAP_GROUP_FILTER: Type.String({
    default: '(member={dn})',
    description: "the user's groups, `{dn}` being the user entry's DN (escaped), `{username}` as above",
  }),
  DFS_WEBAUTHN_RP_ID: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9.-]+$',
      description:
        'the host name passkeys are bound to (`drive.example.org`, or a parent domain of it); WebAuthn refuses IP addresses, so passkeys need the server reached by a name',
      defaultText: 'the host name of the request',
    }),
  ),
  DFS_WEBAUTHN_ORIGIN: Type.Optional(
    Type.String({
      pattern: '^https?://[^/?#]+$',
      description: 'the origin of the web app that passkeys sign on, `https://drive.example.org` (no path)',
      defaultText: "the request's origin",
    }),
  ),
  DFS_WEBAUTHN_RP_NAME: Type.String({
    minLength: 1,
    maxLength: 64,
    default: 'dfs',
    description: "the server's name in the browser's passkey dialogs",
  }),
  DFS_REQUIRE_2FA: Type.Union([Type.Literal('false'), Type.Literal('true')], {
    default: 'false',
    description:
      '`true`: every user needs a second factor (TOTP or a passkey; a sign-in through the OpenID provider counts as both); until they set one up, their sessions may only do that, and their app passwords nothing',
  }),
  DFS_DEFAULT_QUOTA_BYTES: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'bytes per user (files, trash and unfinished uploads); admins can override it per user',
    defaultText: '`0` (no quota)',
  }),
  DFS_MAX_FILES_PER_USER: Type.Integer({
    minimum: 1,
    default: 1_000_000,
    description: 'files and folders per user, trash and unfinished uploads included',
  }),
  DFS_MIN_FREE_BYTES: Type.Integer({
    minimum: 0,
    default: 1024 * MiB,
    description:
      'free space a node keeps after an upload placed on it; uploads no node has room for get `507`',
    defaultText: '`1073741824` (1 GiB)',
  }),
  DFS_DIGEST_THREADS: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 64,
      description:
        "threads that hash uploaded chunks and small files beside the app's own thread; `0` hashes on the app's thread",
      defaultText: 'one fewer than the cores, 1 to 4',
    }),
  ),
  DFS_UPLOAD_HASH_BUFFER_BYTES: Type.Integer({
    minimum: 0,
    default: 256 * MiB,
    description:
      'memory for chunks that arrive ahead of an earlier one, held until the running whole-file hash reaches them',
    defaultText: '`268435456` (256 MiB)',
  }),
  DFS_UPLOAD_MEMORY_BYTES: Type.Integer({
    minimum: 0,
    default: 512 * MiB,
    description:
      'memory for upload bodies being received (a chunk PUT holds its chunk, a tus PATCH with `Upload-Checksum` its body) across all users; past it a request gets `429` with `Retry-After`. 0 = no bound',
    defaultText: '`536870912` (512 MiB)',
  }),
  DFS_UPLOAD_MEMORY_PER_USER_BYTES: Type.Integer({
    minimum: 0,
    default: 128 * MiB,
    description: 'the same bound for one user (sixteen 8 MiB chunks in flight); 0 = no bound',
    defaultText: '`134217728` (128 MiB)',
  }),
  DFS_UPLOAD_IDLE_SECONDS: Type.Number({
    exclusiveMinimum: 0,
    default: 60,
    description:
      'an upload body (chunk, tus PATCH, form, WebDAV PUT) that sends no byte for this long while the server waits for one loses its connection, and the memory it held is freed',
  }),
  DFS_UPLOAD_LOOKUP_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 1200,
    description: 'upload starts (content look-ups) per minute per user',
  }),
  DFS_SHARE_PASSWORD_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 20,
    description:
      'share password attempts per minute per link and address (downloads themselves are never throttled)',
  }),
  DFS_DROP_RATE_LIMIT: Type.Integer({
    minimum: 1,
    default: 120,
    description: 'resumable uploads an address may start through upload requests per minute',
  }),
  DFS_DROP_RATE_LIMIT_BYTES: Type.Integer({
    minimum: 1,
    default: 8 * 1024 * MiB,
    description:
      'bytes an address may send through upload requests per minute, counted in chunks of DFS_CHUNK_SIZE',
    defaultText: '`8589934592` (8 GiB)',
  }),
  DFS_TRUST_PROXY: Type.String({
    default: 'false',
    pattern: '^(false|true|[0-9]+|[0-9A-Fa-f.:/]+(,[0-9A-Fa-f.:/ ]+)*)$',
    description:
      "where the client address comes from: `false` (the socket); `true` = one proxy in front (the address it appended to `X-Forwarded-For`, never the client-written left-most one); a number of proxies; or the proxies' addresses/CIDRs, comma-separated",
  }),
  DFS_CORS_ORIGINS: Type.String({
    default: '',
    pattern: '^(\\s*https?://[^,\\s/]+\\s*(,\\s*https?://[^,\\s/]+\\s*)*)?$',
    description:
      'comma-separated origins (`https://app.example`) whose web apps (Uppy, tus-js-client, another front end) may call the API; Bearer tokens only, cookies are never allowed cross-origin',
    defaultText: 'none',
  }),
  DFS_MAX_CONNECTIONS_PER_IP: Type.Integer({
    minimum: 0,
    default: 256,
    description:
      'open connections per client address; `0` turns the cap off (behind nginx, cap there with `limit_conn`)',
  }),
  DFS_BODY_TIMEOUT_SECONDS: Type.Number({
    exclusiveMinimum: 0,
    default: 15,
    description:
      'time a client has to send a small (JSON) body; headers get this plus 5 s (slow-drip clients lose their socket)',
  }),
  DFS_PUBLIC_URL: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'base URL of share links',
      defaultText: "the request's origin",
    }),
  ),
  DFS_OIDC_ISSUER: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description:
        'an OpenID Connect provider (`https://auth.example/application/o/dfs/`): a "Sign in with …" button on the sign-in page (see Users, groups and sign-in)',
      defaultText: 'none (no single sign-on)',
    }),
  ),
  DFS_OIDC_CLIENT_ID: Type.Optional(
    Type.String({
      minLength: 1,
      description: "dfs's client id at the provider; needed with `DFS_OIDC_ISSUER`",
    }),
  ),
  DFS_OIDC_CLIENT_SECRET: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "the client's secret (sent with HTTP Basic); without one dfs is a public client and PKCE alone protects the code",
    }),
  ),
  DFS_OIDC_NAME: Type.String({
    minLength: 1,
    maxLength: 64,
    default: 'single sign-on',
    description: 'the provider\'s name on the button ("Sign in with Authentik")',
  }),
  DFS_OIDC_SCOPES: Type.String({
    pattern: '(^|\\s)openid(\\s|$)',
    default: 'openid profile email',
    description:
      'scopes asked for (space-separated, `openid` among them); add the one that carries the groups claim if the provider needs it',
  }),
  DFS_OIDC_GROUPS_CLAIM: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "a claim listing the user's group names (`groups`): their dfs groups follow it at each sign-in, missing groups are created",
      defaultText: 'none (groups are not synced)',
    }),
  ),
  DFS_OIDC_REDIRECT_URL: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'the callback URL registered at the provider',
      defaultText: "`<DFS_PUBLIC_URL or the request's origin>/api/auth/oidc/callback`",
    }),
  ),
  DFS_METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        '`GET /metrics` (Prometheus text format) answers a request carrying `Authorization: Bearer <this>`; unset, it answers only on `DFS_METRICS_PORT`',
    }),
  ),
  DFS_METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 65535,
      description:
        'a second listener on `DFS_HOST` serving only `GET /metrics`, without a token (keep it off the public network)',
    }),
  ),
  DFS_AUDIT_RETENTION_DAYS: Type.Number({
    minimum: 0,
    default: 365,
    description: 'how long the audit log keeps an event; 0 keeps every event',
  }),
  DFS_BACKUP_DIR: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'scheduled backups of the metadata (and the manifest of the contents it references) go into dated folders here (see docs/OPERATIONS.md)',
    }),
  ),
  DFS_BACKUP_CRON: Type.String({
    minLength: 1,
    default: '0 3 * * *',
    description: "when the scheduled backup runs (cron, the server's local time); only with `DFS_BACKUP_DIR`",
  }),
  DFS_BACKUP_KEEP_DAYS: Type.Number({
    minimum: 0,
    default: 30,
    description:
      'scheduled backups older than this are removed, and the collector keeps every content a younger backup lists',
  }),
  DFS_LOG_LEVEL: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
    { default: 'info', description: '`fatal` … `trace`, or `silent`' },
  ),
});

type Env = Static<typeof EnvSchema>;

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  dbUrl: string;
  /** A MariaDB replica of dbUrl for stale-tolerant reads; null: every read goes to dbUrl. */
  dbReadUrl: string | null;
  dbReadMaxLagMs: number;
  /** Nodes whose directory nginx serves at an `internal` location (X-Accel-Redirect). */
  accelLocations: { location: string; node: string }[];
  nodeUrls: string[];
  replicas: number;
  heartbeatMs: number;
  repairGraceMs: number;
  scrubBytesPerSecond: number;
  scrubPeriodMs: number;
  /** Nodes to drain, as given (URL or name); the cluster matches them against DFS_NODES. */
  drainNodes: string[];
  /** DFS_SECRET; null: the app keeps its own in the data directory (resolveSecret). */
  secret: string | null;
  chunkSize: number;
  /** Digest threads (services/hashing/pool.ts); undefined: one fewer than the cores, 1 to 4. */
  digestThreads: number | undefined;
  maxFileSize: number;
  uploadExpiryMs: number;
  maxUploadsPerUser: number;
  sessionTtlMs: number;
  gcGraceMs: number;
  /** Old versions may take this share of a user's quota (0–1). */
  versionsMaxShare: number;
  versionsEveryMs: number;
  /** More changes than this by one actor within the window raise a mass-change alert. */
  massChangeFiles: number;
  massChangeWindowMs: number;
  publicUrl: string | null;
  /** DFS_OIDC_*; null: no single sign-on. */
  oidc: OidcConfig | null;
  /** Fastify's trustProxy: false, a hop count, or the proxies' addresses. */
  trustProxy: boolean | number | string[];
  corsOrigins: string[];
  maxConnectionsPerIp: number;
  bodyTimeoutMs: number;
  signinRateLimit: number;
  signup: Env['DFS_SIGNUP'];
  signupRateLimit: number;
  defaultQuotaBytes: number;
  maxFilesPerUser: number;
  minFreeBytes: number;
  uploadHashBufferBytes: number;
  uploadMemoryBytes: number;
  uploadMemoryPerUserBytes: number;
  uploadIdleMs: number;
  uploadLookupRateLimit: number;
  sharePasswordRateLimit: number;
  /** Upload request sessions an address may start, and bytes it may send, per minute. */
  dropRateLimit: { sessions: number; bytes: number };
  logLevel: Env['DFS_LOG_LEVEL'];
  /** DFS_LDAP_*; null: no directory. */
  ldap: LdapConfig | null;
  /** DFS_WEBAUTHN_*: null RP ID or origin: the request's own. */
  webauthn: { rpId: string | null; origin: string | null; rpName: string };
  /** DFS_REQUIRE_2FA. */
  requireTwoFactor: boolean;
  /** DFS_METRICS_TOKEN; null: /metrics only on the metrics port. */
  metricsToken: string | null;
  /** DFS_METRICS_PORT; null: no separate metrics listener. */
  metricsPort: number | null;
  /** 0: the audit log keeps everything. */
  auditRetentionMs: number;
  /** DFS_BACKUP_DIR and DFS_BACKUP_CRON; dir null: no scheduled backups. */
  backup: { dir: string | null; cron: string; keepMs: number };
}

export interface LdapConfig {
  url: string;
  bindDn: string | null;
  bindPassword: string | null;
  searchBase: string;
  /** Holds `{username}`, replaced by the escaped name typed at sign-in. */
  searchFilter: string;
  startTls: boolean;
  /** PEM of the CA to trust instead of the system's; null: the system's. */
  tlsCa: string | null;
  groupBase: string | null;
  groupFilter: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const CONFIG_VARIABLES = Object.keys(EnvSchema.properties);

/** One row of the README's configuration table, straight from the schema. */
export interface ConfigVariableDoc {
  name: string;
  /** Markdown: `defaultText` when the schema gives one, else the default in backticks, else —. */
  defaultText: string;
  description: string;
}

export function configReference(): ConfigVariableDoc[] {
  return Object.entries(EnvSchema.properties).map(([name, schema]) => {
    const s = schema as { default?: unknown; defaultText?: string; description?: string };
    const fallback = s.default === undefined ? '—' : s.default === '' ? 'none' : `\`${String(s.default)}\``;
    return { name, defaultText: s.defaultText ?? fallback, description: s.description ?? '' };
  });
}

/**
 * The `DFS_*` variables that are set (an empty one counts as unset), numbers made numbers for the
 * check to judge. Not TypeBox's Value.Convert: it turns "1.5" into the integer 1 without a word,
 * where a setting such as DFS_REPLICAS=1.5 must be refused.
 */
function coerce(source: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const raw = source[key];
    if (raw === undefined || raw === '') continue;
    const type = (schema as { type?: string }).type;
    out[key] = (type === 'integer' || type === 'number') && raw.trim() !== '' ? Number(raw) : raw;
  }
  return out;
}

/** Chunks become S3 multipart parts: at least 5 MiB each (but the last), at most 10,000 per file. */
function checkS3Chunks(chunkSize: number, maxFileSize: number): void {
  if (chunkSize < S3_MIN_PART_BYTES) {
    throw new ConfigError(
      `DFS_CHUNK_SIZE: S3 nodes take chunks of at least ${S3_MIN_PART_BYTES} bytes (5 MiB), got ${chunkSize}`,
    );
  }
  if (Math.ceil(maxFileSize / chunkSize) > S3_MAX_PARTS) {
    throw new ConfigError(
      `DFS_MAX_FILE_SIZE: with S3 nodes a file has at most ${S3_MAX_PARTS} chunks; raise DFS_CHUNK_SIZE to at least ${Math.ceil(maxFileSize / S3_MAX_PARTS)} or lower DFS_MAX_FILE_SIZE`,
    );
  }
}

/** Reads and checks the `DFS_*` variables; a bad one stops the start with its name in the message. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const candidate = Value.Default(EnvSchema, coerce(source));
  const firstError = Value.Errors(EnvSchema, candidate).First();
  if (firstError) {
    const variable = firstError.path.replace(/^\//, '') || 'environment';
    const given = source[variable];
    throw new ConfigError(
      `${variable}: ${firstError.message}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`,
    );
  }
  const env = candidate as Env;
  const dataDir = env.DFS_DATA_DIR ? path.resolve(env.DFS_DATA_DIR) : defaultDataDir();
  const nodeUrls = (env.DFS_NODES ?? `local://${path.join(dataDir, 'nodes', 'local')}`)
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  if (nodeUrls.length === 0) throw new ConfigError('DFS_NODES: at least one storage node is needed');
  for (const url of nodeUrls) {
    try {
      parseNodeUrl(url);
    } catch (error) {
      // The parser's message names the URL (password hidden) and what is wrong with it.
      throw new ConfigError(`DFS_NODES: ${(error as Error).message}`);
    }
  }
  if (nodeUrls.some((url) => /^s3:/i.test(url))) checkS3Chunks(env.DFS_CHUNK_SIZE, env.DFS_MAX_FILE_SIZE);
  const dbUrl = env.DFS_DB_URL ?? `sqlite://${path.join(dataDir, 'dfs.sqlite')}`;
  if (env.DFS_DB_READ_URL && !dbUrl.startsWith('mysql://')) {
    throw new ConfigError('DFS_DB_READ_URL: a read replica needs a MySQL/MariaDB primary in DFS_DB_URL');
  }
  return {
    port: env.DFS_PORT,
    host: env.DFS_HOST,
    dataDir,
    dbUrl,
    dbReadUrl: env.DFS_DB_READ_URL ?? null,
    dbReadMaxLagMs: env.DFS_DB_READ_MAX_LAG_SECONDS * 1000,
    nodeUrls,
    replicas: env.DFS_REPLICAS,
    heartbeatMs: env.DFS_HEARTBEAT_SECONDS * 1000,
    repairGraceMs: env.DFS_REPAIR_GRACE_SECONDS * 1000,
    scrubBytesPerSecond: env.DFS_SCRUB_BYTES_PER_SECOND,
    scrubPeriodMs: env.DFS_SCRUB_PERIOD_DAYS * 86400_000,
    drainNodes: (env.DFS_DRAIN_NODES ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean),
    accelLocations: parseAccelLocations(env.DFS_ACCEL_REDIRECT ?? ''),
    secret: env.DFS_SECRET ?? null,
    chunkSize: env.DFS_CHUNK_SIZE,
    digestThreads: env.DFS_DIGEST_THREADS,
    maxFileSize: env.DFS_MAX_FILE_SIZE,
    uploadExpiryMs: env.DFS_UPLOAD_EXPIRY_HOURS * 3600_000,
    maxUploadsPerUser: env.DFS_MAX_UPLOADS_PER_USER,
    sessionTtlMs: env.DFS_SESSION_DAYS * 86400_000,
    gcGraceMs: env.DFS_GC_GRACE_SECONDS * 1000,
    versionsMaxShare: env.DFS_VERSIONS_MAX_SHARE,
    versionsEveryMs: env.DFS_VERSIONS_EVERY_MINUTES * 60_000,
    massChangeFiles: env.DFS_MASS_CHANGE_FILES,
    massChangeWindowMs: env.DFS_MASS_CHANGE_MINUTES * 60_000,
    publicUrl: env.DFS_PUBLIC_URL?.replace(/\/+$/, '') ?? null,
    oidc: parseOidc(env),
    trustProxy: parseTrustProxy(env.DFS_TRUST_PROXY),
    corsOrigins: env.DFS_CORS_ORIGINS.split(',')
      .map((origin) => origin.trim().replace(/\/+$/, ''))
      .filter(Boolean),
    maxConnectionsPerIp: env.DFS_MAX_CONNECTIONS_PER_IP,
    bodyTimeoutMs: env.DFS_BODY_TIMEOUT_SECONDS * 1000,
    signinRateLimit: env.DFS_SIGNIN_RATE_LIMIT,
    signup: env.DFS_SIGNUP,
    signupRateLimit: env.DFS_SIGNUP_RATE_LIMIT,
    defaultQuotaBytes: env.DFS_DEFAULT_QUOTA_BYTES,
    maxFilesPerUser: env.DFS_MAX_FILES_PER_USER,
    minFreeBytes: env.DFS_MIN_FREE_BYTES,
    uploadHashBufferBytes: env.DFS_UPLOAD_HASH_BUFFER_BYTES,
    uploadMemoryBytes: env.DFS_UPLOAD_MEMORY_BYTES,
    uploadMemoryPerUserBytes: env.DFS_UPLOAD_MEMORY_PER_USER_BYTES,
    uploadIdleMs: env.DFS_UPLOAD_IDLE_SECONDS * 1000,
    uploadLookupRateLimit: env.DFS_UPLOAD_LOOKUP_RATE_LIMIT,
    sharePasswordRateLimit: env.DFS_SHARE_PASSWORD_RATE_LIMIT,
    dropRateLimit: { sessions: env.DFS_DROP_RATE_LIMIT, bytes: env.DFS_DROP_RATE_LIMIT_BYTES },
    logLevel: env.DFS_LOG_LEVEL,
    ldap: parseLdap(env),
    webauthn: {
      rpId: env.DFS_WEBAUTHN_RP_ID?.toLowerCase() ?? null,
      origin: env.DFS_WEBAUTHN_ORIGIN ?? null,
      rpName: env.DFS_WEBAUTHN_RP_NAME,
    },
    requireTwoFactor: env.DFS_REQUIRE_2FA === 'true',
    metricsToken: env.DFS_METRICS_TOKEN ?? null,
    metricsPort: env.DFS_METRICS_PORT ?? null,
    auditRetentionMs: env.DFS_AUDIT_RETENTION_DAYS * 86400_000,
    backup: {
      dir: env.DFS_BACKUP_DIR ? path.resolve(env.DFS_BACKUP_DIR) : null,
      cron: parseCron(env.DFS_BACKUP_CRON),
      keepMs: env.DFS_BACKUP_KEEP_DAYS * 86400_000,
    },
  };
}

/** A cron expression croner accepts (five or six fields, or a nickname such as `@daily`). */
function parseCron(expression: string): string {
  try {
    new Cron(expression, { paused: true }).stop();
  } catch (error) {
    throw new ConfigError(`DFS_BACKUP_CRON: ${(error as Error).message} (got ${JSON.stringify(expression)})`);
  }
  return expression;
}

/** The directory settings hang together; a half-configured one stops the start. */
function parseLdap(env: Env): LdapConfig | null {
  if (!env.DFS_LDAP_URL) return null;
  if (!env.DFS_LDAP_SEARCH_BASE) throw new ConfigError('DFS_LDAP_SEARCH_BASE: needed with DFS_LDAP_URL');
  if (Boolean(env.DFS_LDAP_BIND_DN) !== Boolean(env.DFS_LDAP_BIND_PASSWORD)) {
    throw new ConfigError('DFS_LDAP_BIND_DN and DFS_LDAP_BIND_PASSWORD: set both or neither');
  }
  const startTls = env.DFS_LDAP_STARTTLS === 'true';
  if (startTls && env.DFS_LDAP_URL.startsWith('ldaps:')) {
    throw new ConfigError(
      'DFS_LDAP_STARTTLS: an ldaps:// connection is TLS already; use ldap:// with StartTLS',
    );
  }
  let tlsCa: string | null = null;
  if (env.DFS_LDAP_TLS_CA) {
    try {
      tlsCa = readFileSync(env.DFS_LDAP_TLS_CA, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `DFS_LDAP_TLS_CA: cannot read ${env.DFS_LDAP_TLS_CA} (${(error as Error).message})`,
      );
    }
  }
  return {
    url: env.DFS_LDAP_URL.replace(/\/+$/, ''),
    bindDn: env.DFS_LDAP_BIND_DN ?? null,
    bindPassword: env.DFS_LDAP_BIND_PASSWORD ?? null,
    searchBase: env.DFS_LDAP_SEARCH_BASE,
    searchFilter: env.DFS_LDAP_SEARCH_FILTER,
    startTls,
    tlsCa,
    groupBase: env.DFS_LDAP_GROUP_BASE ?? null,
    groupFilter: env.DFS_LDAP_GROUP_FILTER,
  };
}

/** `/dfs-a/=sftp://…,/dfs-b/=local:///srv/b`: the location is everything before the first `=`. */
function parseAccelLocations(value: string): { location: string; node: string }[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf('=');
      const location = entry.slice(0, Math.max(0, at)).trim();
      const node = entry.slice(at + 1).trim();
      if (at < 0 || !/^\/[A-Za-z0-9._~\-/]*\/$/.test(location) || !node) {
        throw new ConfigError(
          `DFS_ACCEL_REDIRECT: ${JSON.stringify(entry.replace(/\/\/[^@/]*@/, '//…@'))} is not "/location/=node" ` +
            '(an nginx location that starts and ends with "/", then a node of DFS_NODES)',
        );
      }
      return { location, node };
    });
}

/**
 * `true` trusts exactly one proxy (the address it appended to X-Forwarded-For), never the
 * left-most entry, which any client can write itself.
 */
function parseTrustProxy(value: string): boolean | number | string[] {
  if (value === 'false') return false;
  if (value === 'true') return 1;
  if (/^[0-9]+$/.test(value)) return Number(value) === 0 ? false : Number(value);
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

export interface OidcConfig {
  issuer: string;
  clientId: string;
  clientSecret: string | null;
  name: string;
  scopes: string;
  groupsClaim: string | null;
  redirectUrl: string | null;
}

function parseOidc(env: Env): OidcConfig | null {
  if (!env.DFS_OIDC_ISSUER) {
    if (env.DFS_OIDC_CLIENT_ID) throw new ConfigError('DFS_OIDC_ISSUER: needed with DFS_OIDC_CLIENT_ID');
    return null;
  }
  if (!env.DFS_OIDC_CLIENT_ID) throw new ConfigError('DFS_OIDC_CLIENT_ID: needed with DFS_OIDC_ISSUER');
  return {
    issuer: env.DFS_OIDC_ISSUER,
    clientId: env.DFS_OIDC_CLIENT_ID,
    clientSecret: env.DFS_OIDC_CLIENT_SECRET ?? null,
    name: env.DFS_OIDC_NAME,
    scopes: env.DFS_OIDC_SCOPES.trim().split(/\s+/).join(' '),
    groupsClaim: env.DFS_OIDC_GROUPS_CLAIM ?? null,
    redirectUrl: env.DFS_OIDC_REDIRECT_URL ?? null,
  };
}

/**
 * DFS_SECRET, or the one kept in the data directory (made on first start). The secret must survive
 * restarts: it keys share-password hashing and challenge MACs. Reading the config writes nothing;
 * the app calls this when it starts.
 */
export function resolveSecret(config: Pick<Config, 'secret' | 'dataDir'>): string {
  return config.secret ?? loadOrCreateSecret(config.dataDir);
}

function loadOrCreateSecret(dataDir: string): string {
  const file = path.join(dataDir, 'secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}
