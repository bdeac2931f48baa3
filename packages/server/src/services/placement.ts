import { createHash } from 'node:crypto';

export interface PlacementCandidate {
  id: string;
  freeBytes: number | null;
}

/**
 * Weighted rendezvous (HRW) hashing: every node scores each content independently, so adding or
 * losing a node only moves the contents that scored highest on it. The score `w / -ln(u)` with `u`
 * uniform in (0,1) from a hash of (content, node) picks a node with probability proportional to `w`
 * (free space here), the logarithmic method of Schindelhauer & Schomaker.
 */
export function rankNodes<T extends PlacementCandidate>(sha1: string, nodes: T[], size = 0): T[] {
  const unknown = unknownWeight(nodes);
  return nodes
    .filter((node) => node.freeBytes === null || node.freeBytes > size)
    .map((node) => ({ node, score: weightOf(node, unknown) / -Math.log(unitHash(`${sha1}:${node.id}`)) }))
    .sort((a, b) => b.score - a.score || a.node.id.localeCompare(b.node.id))
    .map(({ node }) => node);
}

function weightOf(node: PlacementCandidate, unknown: number): number {
  return node.freeBytes === null ? unknown : Math.max(1, node.freeBytes / 2 ** 30);
}

/**
 * Unknown free space (not measured yet, or a backend that never says, like S3) counts as the
 * median node's rather than as an empty or a full one.
 */
function unknownWeight(nodes: PlacementCandidate[]): number {
  const known = nodes
    .filter((n) => n.freeBytes !== null)
    .map((n) => Math.max(1, (n.freeBytes as number) / 2 ** 30))
    .sort((a, b) => a - b);
  if (known.length === 0) return 1;
  const mid = known.length >> 1;
  return known.length % 2
    ? (known[mid] as number)
    : ((known[mid - 1] as number) + (known[mid] as number)) / 2;
}

/** A number in (0, 1) from the first 52 bits of a SHA-1. */
function unitHash(value: string): number {
  const digest = createHash('sha1').update(value).digest();
  const high = digest.readUInt32BE(0) >>> 0;
  const low = digest.readUInt32BE(4) >>> 12;
  return (high * 2 ** 20 + low + 1) / (2 ** 52 + 2);
}
