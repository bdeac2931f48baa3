import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config.ts';
import { parseNodeUrl } from '../../src/storage/node-spec.ts';

/**
 * The deployment files cannot be run here (no Docker engine), so this reads them the way Docker
 * Compose, Docker and nginx would and checks that they agree with each other and with the app.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The variables the compose file may hand the app; each must be one the app reads. */
const KNOWN_DFS_VARIABLES = [
  'DFS_PORT',
  'DFS_TRUST_PROXY',
  'DFS_HOST',
  'DFS_DATA_DIR',
  'DFS_DB_URL',
  'DFS_NODES',
  'DFS_REPLICAS',
  'DFS_HEARTBEAT_SECONDS',
  'DFS_SECRET',
  'DFS_CHUNK_SIZE',
];

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  expose?: (string | number)[];
  ports?: (string | number | { target?: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: Healthcheck;
  profiles?: string[];
}

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** Compose's `${VAR:-default}` family, resolved as on a machine where none of them is set. */
function interpolate(value: string): string {
  return (
    value
      // The variables are unset here: `:-`/`-` give their default, `:+` (set → word) gives nothing.
      .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?+])([^}]*))?\}/g, (_match, _name, op, word) =>
        op === '+' ? '' : (word ?? ''),
      )
      .replace(/\$\$/g, '$')
  );
}

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(env).map(([key, value]) => [key, value == null ? '' : String(value)]);
  return Object.fromEntries(entries.map(([key, value]) => [key, interpolate(String(value))]));
}

function buildOf(service: Service): { context: string; dockerfile: string } | null {
  if (!service.build) return null;
  const build = typeof service.build === 'string' ? { context: service.build } : service.build;
  const context = path.resolve(root, build.context ?? '.');
  return { context, dockerfile: path.resolve(context, build.dockerfile ?? 'Dockerfile') };
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(dockerfile: string): { op: string; args: string }[] {
  const text = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [op = '', ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

interface NginxBlock {
  name: string;
  args: string;
  directives: [string, string][];
  children: NginxBlock[];
}

/** Enough of nginx's grammar for one config file: directives, nested blocks, quoted strings. */
function parseNginx(text: string): NginxBlock {
  const tokens = text.replace(/#[^\n]*/g, '').match(/'[^']*'|"[^"]*"|[{};]|[^\s{};]+/g) ?? [];
  const top: NginxBlock = { name: 'main', args: '', directives: [], children: [] };
  const stack = [top];
  let words: string[] = [];
  for (const token of tokens) {
    const current = stack[stack.length - 1]!;
    if (token === ';') {
      const [name = '', ...args] = words;
      current.directives.push([name, args.join(' ')]);
      words = [];
    } else if (token === '{') {
      const [name = '', ...args] = words;
      const block: NginxBlock = { name, args: args.join(' '), directives: [], children: [] };
      current.children.push(block);
      stack.push(block);
      words = [];
    } else if (token === '}') {
      stack.pop();
    } else {
      words.push(token);
    }
  }
  expect(stack, 'unbalanced braces in nginx.conf').toHaveLength(1);
  return top;
}

function directive(block: NginxBlock, name: string): string | undefined {
  return block.directives.find(([key]) => key === name)?.[1];
}

describe('docker-compose.yml', () => {
  let compose: Compose;
  let services: Record<string, Service>;
  let app: Service;
  let appEnv: Record<string, string>;
  let nginx: NginxBlock;
  let appDockerfile: { op: string; args: string }[];

  beforeAll(() => {
    // merge: the node services share their settings through a `<<: *sftp-node` merge key.
    compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;
    services = compose.services;
    app = services.app!;
    appEnv = environment(app);
    nginx = parseNginx(readFileSync(path.join(root, 'deploy/nginx.conf'), 'utf8'));
    appDockerfile = instructions(buildOf(app)!.dockerfile);
  });

  it('has the mysql, three storage nodes, app and nginx services', () => {
    for (const name of ['mysql', 'node1', 'node2', 'node3', 'app', 'nginx']) {
      expect(services, name).toHaveProperty(name);
    }
  });

  it('builds from paths that exist, copying files that exist', () => {
    const built = Object.entries(services).filter(([, service]) => service.build);
    expect(built.map(([name]) => name).sort()).toEqual(['app', 'nginx']);
    for (const [name, service] of built) {
      const { context, dockerfile } = buildOf(service)!;
      expect(existsSync(context), `${name} build context ${context}`).toBe(true);
      expect(existsSync(dockerfile), `${name} dockerfile ${dockerfile}`).toBe(true);
      for (const { op, args } of instructions(dockerfile)) {
        if ((op !== 'COPY' && op !== 'ADD') || /--from=/.test(args)) continue;
        const sources = args
          .split(/\s+/)
          .filter((word) => !word.startsWith('--'))
          .slice(0, -1);
        for (const source of sources) {
          expect(existsSync(path.join(context, source)), `${name}: ${op} ${source}`).toBe(true);
        }
      }
    }
  });

  it('bind-mounts only files that exist and declares every named volume', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : (volume.source ?? '');
        const isBind = typeof volume === 'string' ? /^[./~]/.test(source) : volume.type === 'bind';
        if (isBind) {
          expect(path.isAbsolute(source), `${name}: ${source} must be relative to the repo`).toBe(false);
          expect(existsSync(path.resolve(root, source)), `${name}: bind mount ${source}`).toBe(true);
        } else {
          expect(compose.volumes ?? {}, `${name}: volume ${source}`).toHaveProperty(source);
        }
      }
    }
  });

  it('gives every service a healthcheck, and starts each one after what it needs is healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck?.disable, name).not.toBe(true);
      expect(service.healthcheck?.test?.length, `${name} has a healthcheck`).toBeGreaterThan(0);
    }
    const conditions = (service: Service) => service.depends_on as Record<string, { condition?: string }>;
    for (const dependency of ['mysql', 'node1', 'node2', 'node3']) {
      expect(conditions(app)[dependency]?.condition, `app after ${dependency}`).toBe('service_healthy');
    }
    expect(conditions(services.nginx!).app?.condition).toBe('service_healthy');
  });

  it('hands the app only DFS_ variables it knows', () => {
    // The literal list above must not drift from what the app's config schema declares.
    for (const name of KNOWN_DFS_VARIABLES) expect(CONFIG_VARIABLES).toContain(name);
    const dockerfileEnv = appDockerfile
      .filter(({ op }) => op === 'ENV')
      .flatMap(({ args }) => [...args.matchAll(/(\w+)=/g)].map((match) => match[1]!));
    for (const name of [...Object.keys(appEnv), ...dockerfileEnv].filter((key) => key.startsWith('DFS_'))) {
      expect(KNOWN_DFS_VARIABLES, name).toContain(name);
    }
  });

  it('points DFS_NODES at the three SFTP services with their own credentials and directory', () => {
    const urls = appEnv.DFS_NODES!.split(',').map((url) => new URL(url.trim()));
    expect(urls).toHaveLength(3);
    expect(new Set(urls.map((url) => url.hostname)).size).toBe(3);
    for (const url of urls) {
      expect(url.protocol).toBe('sftp:');
      const node = services[url.hostname];
      expect(node, `${url.hostname} is a compose service`).toBeDefined();
      // atmoz/sftp: user:pass[:e][:uid[:gid[:dir1[,dir2]...]]], chrooted into /home/<user>.
      const command = interpolate(Array.isArray(node!.command) ? node!.command.join(' ') : node!.command!);
      const [user, password, ...rest] = command.split(':');
      const dirs = (rest[rest.length - 1] ?? '').split(',');
      expect(decodeURIComponent(url.username)).toBe(user);
      expect(decodeURIComponent(url.password)).toBe(password);
      expect(Number(url.port || 22)).toBe(22);
      expect(dirs.map((dir) => `/${dir}`)).toContain(url.pathname);
    }
    expect(Number(appEnv.DFS_REPLICAS)).toBeGreaterThanOrEqual(1);
    expect(Number(appEnv.DFS_REPLICAS)).toBeLessThanOrEqual(urls.length);
  });

  it('adds an S3 node only with the s3 profile, on a store the profile starts', () => {
    const minio = services.minio!;
    expect(minio.profiles).toEqual(['s3']);
    const raw = (app.environment as Record<string, string>).DFS_NODES!;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own interpolation, verbatim
    expect(raw).toContain('${DFS_S3_NODE:+,}${DFS_S3_NODE:-}');
    // The documented value parses as a node URL and names the profile's service and credentials.
    const header = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    const documented = /DFS_S3_NODE='([^']+)'/.exec(header)?.[1];
    expect(documented).toBeDefined();
    const spec = parseNodeUrl(documented!);
    expect(spec).toMatchObject({ kind: 's3', endpoint: 'http://minio:9000', bucket: 'dfs', presign: false });
    const minioEnv = environment(minio);
    expect(spec.kind === 's3' && spec.accessKeyId).toBe(minioEnv.MINIO_ROOT_USER);
    expect(spec.kind === 's3' && spec.secretAccessKey).toBe(minioEnv.MINIO_ROOT_PASSWORD);
  });

  it('points DFS_DB_URL at the mysql service with the credentials it creates', () => {
    const url = new URL(appEnv.DFS_DB_URL!);
    const mysqlEnv = environment(services.mysql!);
    expect(url.protocol).toBe('mysql:');
    expect(url.hostname).toBe('mysql');
    expect(decodeURIComponent(url.username)).toBe(mysqlEnv.MYSQL_USER);
    expect(decodeURIComponent(url.password)).toBe(mysqlEnv.MYSQL_PASSWORD);
    expect(url.pathname).toBe(`/${mysqlEnv.MYSQL_DATABASE}`);
  });

  it('uses one app port in the Dockerfile, the compose file and nginx', () => {
    const exposed = appDockerfile.filter(({ op }) => op === 'EXPOSE').map(({ args }) => args.split('/')[0]);
    expect(exposed).toEqual(['8080']);
    const port = exposed[0];
    expect(appEnv.DFS_PORT ?? port).toBe(port);
    expect((app.expose ?? []).map(String)).toContain(port);
    expect(app.ports ?? [], 'the app is reached through nginx only').toHaveLength(0);
    const upstreams = nginx.children.filter((block) => block.name === 'upstream');
    const servers = upstreams.flatMap((block) =>
      block.directives.filter(([key]) => key === 'server').map(([, args]) => args.split(/\s+/)[0]),
    );
    expect([...new Set(servers)]).toEqual([`app:${port}`]);
  });

  describe('deploy/nginx.conf', () => {
    let server: NginxBlock;
    let locations: NginxBlock[];

    beforeAll(() => {
      server = nginx.children.find((block) => block.name === 'server')!;
      locations = server.children.filter((block) => block.name === 'location');
    });

    /** Where a location's proxy_pass ends up, with upstream names resolved to their servers. */
    function proxiedTo(location: NginxBlock | undefined): string[] {
      const target = location && directive(location, 'proxy_pass');
      if (!target) return [];
      const host = new URL(target).host;
      const upstream = nginx.children.find((block) => block.name === 'upstream' && block.args === host);
      if (!upstream) return [host];
      return upstream.directives.filter(([key]) => key === 'server').map(([, args]) => args.split(/\s+/)[0]!);
    }

    function location(uri: string): NginxBlock | undefined {
      return locations.find((block) => block.args.split(/\s+/).pop() === uri);
    }

    it('leaves the body limit to the app', () => {
      // One limit in one place: the app's own, per route (a chunk, a batch, a WebDAV or tus file,
      // the user's quota). nginx's default of 1m would refuse chunks; any other number would
      // refuse what the app accepts.
      expect(directive(server, 'client_max_body_size') ?? directive(nginx, 'client_max_body_size')).toBe('0');
    });

    it("sends every path to the app, the web app included, with the client's Host and port", () => {
      expect(proxiedTo(location('/'))).toEqual(['app:8080']);
      // No file of the web app is served by nginx: the app answers with its security headers,
      // and decides what a path is (WebDAV, API, the shell).
      expect(directive(server, 'root')).toBeUndefined();
      expect(locations.flatMap((block) => block.directives.filter(([key]) => key === 'try_files'))).toEqual(
        [],
      );
      const headers = server.directives.filter(([key]) => key === 'proxy_set_header').map(([, args]) => args);
      expect(headers).toContain('Host $http_host');
      expect(headers).toContain('X-Forwarded-Host $http_host');
    });

    it('streams uploads, tus and WebDAV bodies to the app, one upload on one instance', () => {
      expect(proxiedTo(location('/api/uploads'))).toEqual(['app:8080']);
      for (const uri of ['/api/uploads', '/api/tus/', '/dav']) {
        expect(location(uri), uri).toBeDefined();
        expect(directive(location(uri)!, 'proxy_request_buffering'), uri).toBe('off');
      }
      for (const uri of ['/api/tus/', '/dav']) {
        expect(
          Number.parseInt(directive(location(uri)!, 'proxy_read_timeout')!, 10),
          uri,
        ).toBeGreaterThanOrEqual(3600);
      }
      // One upload's chunks stay on one instance (its running hash), by the upload id in the URI.
      for (const uri of ['/api/uploads', '/api/tus/']) {
        const upstream = nginx.children.find(
          (block) =>
            block.name === 'upstream' &&
            block.args === new URL(directive(location(uri)!, 'proxy_pass')!).host,
        );
        expect(directive(upstream!, 'hash'), uri).toBe('$dfs_upload_key consistent');
      }
      const map = nginx.children.find(
        (block) => block.name === 'map' && block.args.endsWith('$dfs_upload_key'),
      );
      expect(
        map?.directives.some(([key, value]) => key.startsWith('~^/api/uploads/') && value === '$upload_id'),
      ).toBe(true);
      expect(
        map?.directives.some(([key, value]) => key.startsWith('~^/api/tus/') && value === '$tus_id'),
      ).toBe(true);
    });

    it('builds an nginx image with this configuration and no copy of the web app', () => {
      const copied = instructions(buildOf(services.nginx!)!.dockerfile)
        .filter(({ op }) => op === 'COPY')
        .map(({ args }) => args);
      expect(copied).toHaveLength(1);
      expect(copied[0]).toMatch(/deploy\/nginx\.conf\s+\/etc\/nginx\/conf\.d\//);
    });
  });
});
