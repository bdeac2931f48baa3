import { createHash } from 'node:crypto';

/**
 * The numeric id Nextcloud clients keep for an entry (`oc:fileid`): 62 bits of the SHA-1 of its
 * row id, so it never changes with a rename or a move. Each row keeps it (`oc_fileid`) to be
 * found by it: Nextcloud's versions URLs name a file so. Clients read it as a signed 64-bit
 * number. Two entries share one only by a hash collision (about one
 * chance in 10^7 among ten million entries).
 */
export function numericFileId(rowId: string): string {
  const hex = createHash('sha1').update(rowId).digest('hex').slice(0, 16);
  return (BigInt(`0x${hex}`) & ((1n << 62n) - 1n)).toString();
}
