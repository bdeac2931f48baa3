import { createHash, randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';

export const sha1 = (data: Buffer | string) => createHash('sha1').update(data).digest('hex');
export const md5Base64 = (data: Buffer) => createHash('md5').update(data).digest('base64');

/** `Content-Digest` with the CRC-32C of `data` (RFC 9530), as the web app and the CLI send it. */
export function crc32cDigest(data: Uint8Array): string {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32c(data) >>> 0);
  return `crc32c=:${crc.toString('base64')}:`;
}

/**
 * The checksum header a chunk PUT carries: a CRC-32C, unless the caller sends its own (a
 * Content-MD5 or a Content-Digest to test).
 */
export function chunkChecksum(data: Uint8Array, extra: Record<string, string> = {}): Record<string, string> {
  const own = Object.keys(extra).some((name) => /^content-(md5|digest)$/i.test(name));
  return own ? {} : { 'content-digest': crc32cDigest(data) };
}
export const random = (size: number) => randomBytes(size);

export function chunksOf(data: Buffer, chunkSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkSize) out.push(data.subarray(at, at + chunkSize));
  return out;
}

/** A block table (SHA-256 of each block, concatenated) computed independently of the server. */
export function blockTableOf(data: Buffer, blockSize: number): Buffer {
  return Buffer.concat(chunksOf(data, blockSize).map((block) => createHash('sha256').update(block).digest()));
}

/** The answer to an instant-upload challenge, as API.md defines it. */
export function proofFor(data: Buffer, challenge: { nonce: string; offset: number; length: number }): string {
  return createHash('sha1')
    .update(challenge.nonce, 'utf8')
    .update(data.subarray(challenge.offset, challenge.offset + challenge.length))
    .digest('hex');
}
