import path from 'node:path';
import { LocalNode } from './local.ts';
import { SftpNode, type SftpNodeOptions } from './sftp.ts';
import type { StorageNode } from './types.ts';

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
    };

/**
 * Parses one storage node URL:
 * - `local:///abs/dir`
 * - `sftp://user:pass@host:port/abs/dir` (password URL-encoded)
 * - `sftp://user@host:port/abs/dir?key=/abs/keyfile`
 * Errors name the part that is wrong but never echo the password.
 */
export function parseNodeUrl(url: string): NodeSpec {
  const shown = redactNodeUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `storage node URL "${shown}" is not a URL (expected local:///dir or sftp://user@host/dir)`,
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
    for (const [name, value] of u.searchParams) {
      if (name !== 'key') throw bad(`unknown parameter "${name}" (only "key" is allowed)`);
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
    };
  }

  throw bad(`unsupported scheme "${u.protocol}" (expected local: or sftp:)`);
}

export function createNode(
  spec: NodeSpec,
  options: Pick<SftpNodeOptions, 'timeouts' | 'concurrency'> = {},
): StorageNode {
  if (spec.kind === 'local') return new LocalNode(spec.root);
  return new SftpNode({ ...spec, ...options });
}

/** The URL with its password replaced, for logs and error messages. Works on malformed input too. */
export function redactNodeUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/i, '$1:***@');
}

function posixNormalize(p: string): string {
  return path.posix.normalize(p).replace(/(.)\/$/, '$1');
}
