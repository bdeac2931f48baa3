import type { ShareCharge, ShareRow } from '../repositories/shares.ts';

/**
 * Bytes a link may serve past its counted copies before one more copy is counted: what a cut
 * connection had in flight (Node and kernel socket buffers: megabytes on a fast link) and what a
 * download manager fetches twice. At most a quarter of the file, so two whole copies always count
 * as two and the bytes served never reach a whole copy more than the link allows.
 */
export function copySlack(size: number): number {
  return Math.min(64 * 1024 * 1024, Math.floor(size / 4));
}

/**
 * How many bytes a download charges to its link at a time while it streams. Charging as the bytes
 * go, not the whole range up front, keeps a download manager's abandoned requests (aria2c asks for
 * the whole file first, then cuts that request where its other connections take over) from
 * counting copies they never delivered: the counter only ever runs ahead of the bytes sent by what
 * each connection holds reserved, at most two steps. At 1/32 of the slack, sixteen connections
 * together stay within it.
 */
export function meterStep(size: number): number {
  return Math.max(64 * 1024, Math.floor(copySlack(size) / 32));
}

/**
 * How a link's counters change when `length` more bytes of a `size`-byte file are sent through
 * it, or null when that would deliver more copies than `max_downloads` allows.
 *
 * A download is one whole copy delivered, not one request: the bytes a link has served, divided
 * by the file's size, are the copies it has given out. A download manager's parallel ranges and a
 * resumed transfer add up to one copy; a second whole copy, in any number of ranges, is a second
 * download. Any bytes at all count as at least one. An empty file has no bytes to count, so each
 * request for it is a copy.
 */
export function chargeFor(row: ShareRow, length: number, size: number): ShareCharge | null {
  const served = Number(row.bytes_served);
  const counted = Number(row.downloads);
  let copies: number;
  let bytesServed = served;
  if (size === 0) {
    copies = counted + 1;
  } else {
    bytesServed = served + length;
    copies = Math.max(counted, 1, Math.ceil((bytesServed - copySlack(size)) / size));
  }
  if (row.max_downloads !== null && copies > row.max_downloads) return null;
  return { bytesServed, downloads: copies };
}
