import path from 'node:path';
// A type only: parsing a URL does not load the AWS SDK.
import type { S3NodeOptions } from './s3/node.ts';

export type NodeSpec =
  | { kind: 'local'; root: string }
  | {
      kind: 'sftp';
      host: string;
      port: number;
      username: string;
      password?: string;
      privateKeyPath?: string;
      root: string;
      /** `fsync=0`: accept a server without `fsync@openssh.com` (writes then not synced). */
      requireFsync?: boolean;
    }
  | ({ kind: 's3' } & Omit<S3NodeOptions, 'timeouts'>);

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses one storage node URL:
 * - `local:///abs/dir`
 * - `sftp://user:pass@host:port/abs/dir` (password URL-encoded)
 * - `sftp://user@host:port/abs/dir?key=/abs/keyfile` (`&fsync=0` accepts a server that cannot fsync)
 * - `s3://ACCESS_KEY:SECRET@host:port/bucket[/prefix]?region=…&tls=0|1&pathStyle=0|1&presign=0|1`
 * Errors name the part that is wrong but never echo the password.
 */
export function parseNodeUrl(url: string): NodeSpec {
  const shown = redactNodeUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `storage node URL "${shown}" is not a URL (expected local:///dir, sftp://user@host/dir or s3://KEY:SECRET@host/bucket)`,
    );
  }
  const bad = (what: string) => new Error(`storage node URL "${shown}": ${what}`);
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad(`${what} has a bad %-escape`);
    }
  };

  if (u.protocol === 'local:') {
    if (u.host) throw bad('a local node has no host; write local:///absolute/dir (three slashes)');
    if (u.username || u.password) throw bad('a local node takes no user or password');
    if (u.search) throw bad('a local node takes no query parameters');
    const root = decode(u.pathname, 'the path');
    if (!path.isAbsolute(root) || root === '/') throw bad('the directory must be an absolute path below /');
    return { kind: 'local', root: path.resolve(root) };
  }

  if (u.protocol === 'sftp:') {
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) throw bad('the host is missing');
    const username = decode(u.username, 'the user name');
    if (!username) throw bad('the user name is missing (sftp://user@host/dir)');
    const password = u.password ? decode(u.password, 'the password') : undefined;
    const port = u.port ? Number(u.port) : 22;
    const root = decode(u.pathname, 'the path');
    if (!root.startsWith('/') || root === '/') throw bad('the directory must be an absolute path below /');
    if (root.split('/').includes('..')) throw bad('the directory must not contain ".."');
    let privateKeyPath: string | undefined;
    let requireFsync = true;
    for (const [name, value] of u.searchParams) {
      if (name === 'fsync') {
        if (value !== '0' && value !== '1') throw bad('fsync= takes 0 or 1');
        requireFsync = value === '1';
        continue;
      }
      if (name !== 'key') throw bad(`unknown parameter "${name}" (only "key" and "fsync" are allowed)`);
      if (!path.isAbsolute(value)) throw bad('key= must be an absolute path to a private key file');
      privateKeyPath = value;
    }
    if (!password && !privateKeyPath) throw bad('give a password (user:pass@) or a private key (?key=/path)');
    return {
      kind: 'sftp',
      host,
      port,
      username,
      root: posixNormalize(root),
      ...(password ? { password } : {}),
      ...(privateKeyPath ? { privateKeyPath } : {}),
      ...(requireFsync ? {} : { requireFsync: false }),
    };
  }

  if (u.protocol === 's3:') {
    const host = u.hostname;
    if (!host) throw bad('the host is missing (s3://KEY:SECRET@host:port/bucket)');
    const accessKeyId = decode(u.username, 'the access key');
    const secretAccessKey = decode(u.password, 'the secret');
    if (!accessKeyId || !secretAccessKey)
      throw bad('give the access key and the secret (s3://KEY:SECRET@host/bucket)');
    const [bucket = '', ...rest] = decode(u.pathname, 'the path').replace(/^\//, '').split('/');
    if (!BUCKET_RE.test(bucket)) throw bad(`"${bucket}" is not a bucket name (3–63 of a-z, 0-9, ".", "-")`);
    const prefixParts = rest.filter(Boolean);
    if (prefixParts.some((part) => !/^[a-z0-9][a-z0-9._-]*$/.test(part))) {
      throw bad('the prefix after the bucket takes path segments of a-z, 0-9, ".", "_", "-"');
    }
    const flags: Record<string, boolean> = { tls: true, pathStyle: true, presign: true };
    let region = 'us-east-1';
    for (const [name, value] of u.searchParams) {
      if (name === 'region') {
        if (!/^[a-z0-9-]+$/i.test(value)) throw bad('region= takes a region name such as us-east-1');
        region = value;
      } else if (name in flags) {
        if (value !== '0' && value !== '1') throw bad(`${name}= takes 0 or 1`);
        flags[name] = value === '1';
      } else {
        throw bad(`unknown parameter "${name}" (region, tls, pathStyle and presign are allowed)`);
      }
    }
    const scheme = flags.tls ? 'https' : 'http';
    return {
      kind: 's3',
      endpoint: `${scheme}://${u.host}`,
      region,
      bucket,
      prefix: prefixParts.length ? `${prefixParts.join('/')}/` : '',
      accessKeyId,
      secretAccessKey,
      pathStyle: flags.pathStyle as boolean,
      presign: flags.presign as boolean,
    };
  }

  throw bad(`unsupported scheme "${u.protocol}" (expected local:, sftp: or s3:)`);
}

/** The URL with its password replaced, for logs and error messages. Works on malformed input too. */
export function redactNodeUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/i, '$1:***@');
}

function posixNormalize(p: string): string {
  return path.posix.normalize(p).replace(/(.)\/$/, '$1');
}
