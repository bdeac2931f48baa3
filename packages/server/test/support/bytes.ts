import { createHash, randomBytes } from 'node:crypto';

export const sha1 = (data: Buffer | string) => createHash('sha1').update(data).digest('hex');
export const md5Base64 = (data: Buffer) => createHash('md5').update(data).digest('base64');
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
