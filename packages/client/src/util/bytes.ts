/** Lowercase hex → base64 (for `Content-MD5`, RFC 1864), without Node's Buffer. */
export function hexToBase64(hex: string): string {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('not a hex string');
  let bin = '';
  for (let i = 0; i < hex.length; i += 2)
    bin += String.fromCharCode(Number.parseInt(hex.slice(i, i + 2), 16));
  return btoa(bin);
}

/**
 * The `Content-Digest` field value (RFC 9530) of a chunk's CRC-32C: `crc32c=:<base64>:`, the
 * base64 of the CRC's four bytes, big-endian.
 */
export function crc32cDigestHeader(crc: number): string {
  if (!Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) throw new RangeError('not a CRC-32C');
  const bin = String.fromCharCode((crc >>> 24) & 0xff, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff);
  return `crc32c=:${btoa(bin)}:`;
}

export function bytesToHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * A Uint8Array that owns its whole ArrayBuffer (so it can be transferred to a worker without
 * detaching someone else's memory); copies only when `bytes` is a view into a larger buffer.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes as Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(bytes);
}

export const textEncoder = new TextEncoder();

const KiB = 1024;

export function formatBytes(n: number): string {
  if (n < KiB) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / KiB;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}
