import { bytesToHex } from '../util/bytes.ts';

/** Whether `crypto.subtle` exists: browsers expose it only in secure contexts (https, localhost). */
export function webCryptoAvailable(): boolean {
  return typeof globalThis.crypto?.subtle?.digest === 'function';
}

/**
 * SHA-1 of bytes in memory with WebCrypto: native code, off the JS thread, no WebAssembly to
 * load — the cheap way to hash a small file in a page. Lowercase hex.
 */
export async function webCryptoSha1(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-1', bytes as Uint8Array<ArrayBuffer>);
  return bytesToHex(new Uint8Array(digest));
}
