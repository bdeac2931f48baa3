import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type SshdHandle, startSshd } from '@dfs/cluster/sshd';
import { Client, type SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodeUrl, redactNodeUrl } from '../../src/storage/node-spec.ts';
import { createNode } from '../../src/storage/node-url.ts';
import { NOT_OFFERED } from '../../src/storage/sftp/connection.ts';
import { SftpNode } from '../../src/storage/sftp.ts';
import { NodeUnavailableError, type StorageNode } from '../../src/storage/types.ts';
import { readAll, sourceOf, storageConformance } from './conformance.ts';

const MiB = 1024 * 1024;
const timeouts = { connectMs: 2_000, opMs: 2_000, idleMs: 3_000, pingMs: 1_000 };

let sshd: SshdHandle;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

for (const auth of ['password', 'key'] as const) {
  storageConformance(`sftp (${auth} auth)`, async () => {
    const root = path.join(sshd.root, auth);
    const node = await createNode(parseNodeUrl(sshd.url(auth, root)), { timeouts });
    return {
      node,
      localRoot: root,
      cleanup: async () => {
        await node.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  });
}

/** A bare ssh2 SFTP session, for the tests that pin what the node relies on in ssh2. */
async function rawSftp(server: SshdHandle): Promise<{ sftp: SFTPWrapper; end: () => void }> {
  const ssh = new Client();
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
    ssh.once('error', reject);
    ssh.once('ready', () => ssh.sftp((err, s) => (err ? reject(err) : resolve(s))));
    ssh.connect({
      host: server.host,
      port: server.port,
      username: server.username,
      password: server.password,
    });
  });
  return { sftp, end: () => ssh.end() };
}

const call = <T>(fn: (cb: (err: Error | undefined | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));

/** A large object made lazily, so the test can act while the put is still in flight. */
function bigSource(total: number, onProgress: (sent: number) => void): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      sent += block.length;
      onProgress(sent);
      this.push(block);
    },
  });
}

describe('sftp node against a real sshd', () => {
  let node: StorageNode;
  let root: string;

  beforeAll(async () => {
    root = path.join(sshd.root, 'faults');
    node = await createNode(parseNodeUrl(sshd.url('password', root)), { timeouts });
    await node.connect();
  });
  afterAll(async () => {
    await node?.close();
  });

  it('reports the OpenSSH extensions it relies on', () => {
    expect(node.capabilities()).toEqual({ atomicRename: true, fsync: true, statvfs: true, checksMd5: false });
  });

  // The node sends reads and writes of up to 255 KiB and leaves it to ssh2 to split one that is
  // larger than the server announced; if an ssh2 update stopped doing that, this fails.
  it('ssh2 splits a read or a write larger than the server takes, in one call', async () => {
    const { sftp, end } = await rawSftp(sshd);
    try {
      const data = randomBytes(4 * MiB + 3);
      const file = `${root}/split-probe`;
      const handle = await call<Buffer>((cb) => sftp.open(file, 'w+', cb));
      await call<void>((cb) => sftp.write(handle, data, 0, data.length, 0, (err) => cb(err)));
      const back = Buffer.alloc(data.length);
      const got = await call<number>((cb) =>
        sftp.read(handle, back, 0, back.length, 0, (err, n) => cb(err, n)),
      );
      await call<void>((cb) => sftp.close(handle, cb));
      expect(got).toBe(data.length);
      expect(back.equals(data)).toBe(true);
    } finally {
      end();
    }
  });

  it('never puts the password in its name', () => {
    expect(node.name).toBe(`sftp://${sshd.username}@127.0.0.1:${sshd.port}${root}`);
    expect(node.name).not.toContain(sshd.password);
  });

  it('a connection that dies mid-write fails the put, publishes nothing, and the next call reconnects', async () => {
    const key = 'objects/de/ad/crash';
    let killed: Promise<void> | undefined;
    const put = node.put(
      key,
      bigSource(256 * MiB, (sent) => {
        if (sent >= 16 * MiB) killed ??= sshd.kill();
      }),
      256 * MiB,
    );
    await expect(put).rejects.toBeInstanceOf(NodeUnavailableError);
    await killed;
    await sshd.restart();

    expect(await node.stat(key)).toBeNull();
    // The writer could not clean up over a dead connection; the sweeper can.
    expect(await readdir(path.join(root, '.tmp'))).toHaveLength(1);
    expect(await node.sweepTmp(0)).toBe(1);

    const data = randomBytes(3 * MiB + 5);
    await node.put(key, sourceOf(data), data.length);
    expect((await readAll(await node.get(key))).equals(data)).toBe(true);
  });

  it('a read stream errors instead of hanging when the connection dies', async () => {
    const key = 'objects/re/ad/stream';
    const data = randomBytes(8 * MiB);
    await node.put(key, sourceOf(data), data.length);
    const stream = await node.get(key);
    // Take one chunk and stop reading, so no request is pending when the server dies.
    await new Promise<void>((resolve) => stream.once('readable', () => resolve()));
    const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
    await sshd.kill();
    expect(await failed).toBeInstanceOf(NodeUnavailableError);
    await sshd.restart();
  });

  it('calls while sshd is down reject with NodeUnavailableError, and work again after a restart', async () => {
    await sshd.kill();
    for (const call of [() => node.stat('objects/x'), () => node.ping(), () => node.usage()]) {
      const t0 = Date.now();
      await expect(call()).rejects.toBeInstanceOf(NodeUnavailableError);
      expect(Date.now() - t0).toBeLessThan(timeouts.connectMs + 1_500);
    }
    await sshd.restart();
    await node.ping();
    await node.put('objects/ba/ck/again', sourceOf(Buffer.from('back')), 4);
    expect(await node.stat('objects/ba/ck/again')).toEqual({ size: 4 });
  });

  it('a hung server (no FIN, no answers) hits the timeouts instead of blocking', async () => {
    await node.ping();
    await sshd.freeze();
    try {
      const t0 = Date.now();
      // The open connection: the request is sent and never answered.
      await expect(node.stat('objects/x')).rejects.toBeInstanceOf(NodeUnavailableError);
      // A fresh connection: the kernel accepts it, but no SSH banner ever comes.
      await expect(node.ping()).rejects.toBeInstanceOf(NodeUnavailableError);
      expect(Date.now() - t0).toBeLessThan(timeouts.opMs + timeouts.connectMs + 3_000);
    } finally {
      await sshd.thaw();
    }
    await node.ping();
  });

  it('key auth and password auth reach the same files', async () => {
    const other = await createNode(parseNodeUrl(sshd.url('key', root)), { timeouts });
    try {
      expect(await other.stat('objects/ba/ck/again')).toEqual({ size: 4 });
    } finally {
      await other.close();
    }
  });

  it('a wrong password is NodeUnavailableError and names no secret', async () => {
    const bad = new SftpNode({
      host: sshd.host,
      port: sshd.port,
      username: sshd.username,
      password: 'definitely-wrong',
      root,
      timeouts,
    });
    const err = await bad.connect().then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(NodeUnavailableError);
    expect(err?.message).not.toContain('definitely-wrong');
  });
});

describe('node URLs', () => {
  it('parses local, password and key URLs', () => {
    expect(parseNodeUrl('local:///srv/dfs/a')).toEqual({ kind: 'local', root: '/srv/dfs/a' });
    expect(parseNodeUrl('sftp://bob:p%40ss%2Fw%3Ard@files.example:2222/srv/dfs/')).toEqual({
      kind: 'sftp',
      host: 'files.example',
      port: 2222,
      username: 'bob',
      password: 'p@ss/w:rd',
      root: '/srv/dfs',
    });
    expect(parseNodeUrl('sftp://bob@[::1]/data?key=/etc/dfs/id_ed25519')).toEqual({
      kind: 'sftp',
      host: '::1',
      port: 22,
      username: 'bob',
      privateKeyPath: '/etc/dfs/id_ed25519',
      root: '/data',
    });
  });

  it('parses S3 URLs: secret decoded, prefix, flags and their defaults', () => {
    expect(
      parseNodeUrl('s3://AKIA1:se%2Fcr%2Bet@rgw.internal:7480/dfs-data/tenant/a?tls=0&region=eu-1'),
    ).toEqual({
      kind: 's3',
      endpoint: 'http://rgw.internal:7480',
      region: 'eu-1',
      bucket: 'dfs-data',
      prefix: 'tenant/a/',
      accessKeyId: 'AKIA1',
      secretAccessKey: 'se/cr+et',
      pathStyle: true,
      presign: true,
    });
    expect(parseNodeUrl('s3://K:S@s3.amazonaws.com/bucket?pathStyle=0&presign=0')).toMatchObject({
      endpoint: 'https://s3.amazonaws.com',
      region: 'us-east-1',
      prefix: '',
      pathStyle: false,
      presign: false,
    });
    // Logs and errors never show the secret.
    expect(redactNodeUrl('s3://AKIA1:se%2Fcr%2Bet@rgw:7480/b')).toBe('s3://AKIA1:***@rgw:7480/b');
    expect(() => parseNodeUrl('s3://AKIA1:topsecret@rgw:7480/B')).toThrow(/^(?!.*topsecret)/s);
  });

  it.each([
    ['not a url', /not a URL/],
    ['local://host/dir', /no host/],
    ['local:///', /absolute/],
    ['ftp://bob:pw@host/x', /unsupported scheme/],
    ['s3://bucket/x', /access key and the secret/],
    ['s3://AK:SK@host:7480/', /not a bucket name/],
    ['s3://AK:SK@host:7480/Bad_Bucket', /not a bucket name/],
    ['s3://AK:SK@host:7480/b1', /not a bucket name/],
    ['s3://AK:SK@host:7480/bucket/Has Space', /prefix/],
    ['s3://AK:SK@host:7480/bucket?tls=yes', /tls= takes 0 or 1/],
    ['s3://AK:SK@host:7480/bucket?acl=public', /unknown parameter "acl"/],
    ['sftp://host/dir', /user name/],
    ['sftp://bob@host/dir', /password .* private key/],
    ['sftp://bob:pw@host', /absolute/],
    ['sftp://bob:pw@host/dir?x=1', /unknown parameter "x"/],
    ['sftp://bob@host/dir?key=relative/key', /absolute path/],
  ])('rejects %s', (url, why) => {
    expect(() => parseNodeUrl(url)).toThrow(why);
  });

  it('errors and logs never show the password', () => {
    expect(() => parseNodeUrl('sftp://bob:s3cret@host/dir?bad=1')).toThrow(/bob:\*\*\*@host/);
    expect(redactNodeUrl('sftp://bob:s3cret@host:22/dir')).toBe('sftp://bob:***@host:22/dir');
    expect(redactNodeUrl('sftp://bob@host/dir?key=/k')).toBe('sftp://bob@host/dir?key=/k');
    expect(redactNodeUrl('local:///srv')).toBe('local:///srv');
  });
});

describe('an SFTP server without fsync@openssh.com', () => {
  let bare: SshdHandle;
  beforeAll(async () => {
    const wrapper = fileURLToPath(new URL('../support/sftp-without-fsync.mjs', import.meta.url));
    bare = await startSshd({ sftpSubsystem: `${process.execPath} ${wrapper}` });
  });
  afterAll(async () => {
    await bare?.stop();
  });

  // The node learns which extensions a server offers by asking: ssh2 throws, before sending,
  // for one the server did not announce. If an ssh2 update changed that, this fails.
  it('ssh2 refuses an extension the server did not announce before sending it', async () => {
    const { sftp, end } = await rawSftp(bare);
    try {
      expect(() => sftp.ext_openssh_fsync(Buffer.alloc(0), () => {})).toThrow(NOT_OFFERED);
      // The same session still answers: nothing went out.
      expect(await call((cb) => sftp.realpath('.', cb))).toMatch(/^\//);
      // What the server did announce goes out and is answered.
      const renamed = call<void>((cb) =>
        sftp.ext_openssh_rename(`${bare.root}/none`, `${bare.root}/none`, cb),
      );
      await expect(renamed).rejects.toMatchObject({ code: 2 });
    } finally {
      end();
    }
  });

  it('is refused with an error naming the node, unless its URL says fsync=0', async () => {
    const root = path.join(bare.root, 'nosync');
    const node = await createNode(parseNodeUrl(bare.url('password', root)), { timeouts });
    try {
      const refused = node.connect();
      await expect(refused).rejects.toBeInstanceOf(NodeUnavailableError);
      await expect(refused).rejects.toThrow(/sftp:\/\/.*fsync@openssh\.com.*fsync=0/);
      await expect(node.put('objects/no/sy/nc', sourceOf(Buffer.from('x')), 1)).rejects.toBeInstanceOf(
        NodeUnavailableError,
      );
      expect(node.capabilities()).toMatchObject({ fsync: false, atomicRename: true });
    } finally {
      await node.close();
    }

    const accepted = await createNode(parseNodeUrl(`${bare.url('password', root)}?fsync=0`), { timeouts });
    try {
      await accepted.connect();
      expect(accepted.capabilities()).toMatchObject({ fsync: false });
      const data = Buffer.from('unsynced but accepted');
      await accepted.put('objects/no/sy/nc', sourceOf(data), data.length);
      expect((await readAll(await accepted.get('objects/no/sy/nc'))).equals(data)).toBe(true);
    } finally {
      await accepted.close();
    }
  });
});
