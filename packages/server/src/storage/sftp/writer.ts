import type { Readable } from 'node:stream';
import { NodeUnavailableError } from '../types.ts';
import type { Conn, SftpConnection } from './connection.ts';

export interface WriteLimits {
  /** Positioned writes kept in flight. */
  concurrency: number;
  /** A transfer fails when no byte moves for this long. */
  idleMs: number;
}

/**
 * Streams `source` into `handle` as up to `concurrency` positioned writes of `writeLen` bytes.
 * Reading from the source waits while all slots are busy, so memory stays near
 * concurrency × writeLen (4 MiB with the defaults) whatever the source's speed.
 */
export function writeAll(
  connection: SftpConnection,
  conn: Conn,
  handle: Buffer,
  source: Readable,
  expectedSize: number,
  { concurrency, idleMs }: WriteLimits,
): Promise<void> {
  const { sftp, writeLen } = conn;
  return new Promise<void>((resolve, reject) => {
    let offset = 0; // bytes handed to sftp.write
    let block = Buffer.allocUnsafe(Math.min(writeLen, Math.max(expectedSize, 1)));
    let fill = 0;
    let inflight = 0;
    let sourceDone = false;
    let settled = false;
    let idleTimer: NodeJS.Timeout | undefined;

    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(idleTimer);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      conn.sftp.off('close', onClose);
      if (err) {
        source.destroy();
        reject(err);
      } else {
        resolve();
      }
    };
    const touch = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        const err = new NodeUnavailableError(
          inflight > 0
            ? `${connection.name}: put: no write acknowledged for ${idleMs} ms`
            : `${connection.name}: put: source sent nothing for ${idleMs} ms`,
        );
        if (inflight > 0) connection.drop(conn, err);
        finish(inflight > 0 ? err : new Error(err.message));
      }, idleMs);
    };
    const send = (buf: Buffer, len: number) => {
      const pos = offset;
      offset += len;
      inflight++;
      try {
        sftp.write(handle, buf, 0, len, pos, (err) => {
          inflight--;
          if (settled) return;
          if (err) {
            finish(connection.fail(conn, 'write', err));
            return;
          }
          touch();
          if (inflight < concurrency && source.isPaused()) source.resume();
          if (sourceDone && inflight === 0) finish();
        });
      } catch (err) {
        inflight--;
        finish(connection.fail(conn, 'write', err));
      }
    };
    const flush = () => {
      if (fill === 0) return;
      const buf = block;
      block = Buffer.allocUnsafe(writeLen);
      const len = fill;
      fill = 0;
      send(buf, len);
    };
    const onData = (chunk: Buffer | string) => {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      touch();
      if (offset + fill + data.length > expectedSize) {
        finish(new Error(`size mismatch: source has more than ${expectedSize} bytes`));
        return;
      }
      let at = 0;
      while (at < data.length) {
        if (fill === 0 && data.length - at >= writeLen) {
          // Whole blocks of a large chunk go out as views: ssh2 copies them into its packet anyway.
          send(data.subarray(at, at + writeLen), writeLen);
          at += writeLen;
          continue;
        }
        const n = Math.min(writeLen - fill, data.length - at);
        data.copy(block, fill, at, at + n);
        fill += n;
        at += n;
        if (fill === writeLen) flush();
      }
      if (inflight >= concurrency) source.pause();
    };
    const onEnd = () => {
      sourceDone = true;
      flush();
      if (offset !== expectedSize) {
        finish(new Error(`size mismatch: source ended after ${offset} bytes, expected ${expectedSize}`));
      } else if (inflight === 0) {
        finish();
      }
    };
    const onError = (err: Error) => finish(err);
    // ssh2 fails pending requests on a dropped channel, but a write that was never sent (source
    // slower than the network) has no request to fail.
    const onClose = () => finish(connection.unavailable('put', new Error('connection lost')));

    source.on('error', onError);
    source.on('end', onEnd);
    conn.sftp.on('close', onClose);
    if (!conn.alive) {
      onClose();
      return;
    }
    touch();
    source.on('data', onData);
    if (source.readableEnded) onEnd();
  });
}

/** Sends `data` as positioned writes at `base`, up to `concurrency` of them in flight. */
export function writeBuffer(
  connection: SftpConnection,
  conn: Conn,
  handle: Buffer,
  data: Buffer,
  base: number,
  { concurrency, idleMs }: WriteLimits,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let next = 0;
    let inflight = 0;
    let failed = false;
    const pump = () => {
      while (!failed && inflight < concurrency && next < data.length) {
        const at = next;
        const len = Math.min(conn.writeLen, data.length - at);
        next += len;
        inflight++;
        connection
          .req<void>(
            conn,
            'write part',
            (cb) => conn.sftp.write(handle, data, at, len, base + at, (err) => cb(err)),
            idleMs,
          )
          .then(
            () => {
              inflight--;
              if (failed) return;
              if (next >= data.length && inflight === 0) resolve();
              else pump();
            },
            (err: Error) => {
              inflight--;
              if (!failed) {
                failed = true;
                reject(err);
              }
            },
          );
      }
    };
    if (data.length === 0) resolve();
    else pump();
  });
}
