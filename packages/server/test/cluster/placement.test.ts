import { describe, expect, it } from 'vitest';
import { type PlacementCandidate, rankNodes } from '../../src/services/placement.ts';
import { sha1 } from '../support/bytes.ts';

const GiB = 2 ** 30;
const KEYS = 20_000;
const keys = Array.from({ length: KEYS }, (_, i) => sha1(`content-${i}`));
const node = (id: string, freeGiB: number | null = 100): PlacementCandidate => ({
  id,
  freeBytes: freeGiB === null ? null : freeGiB * GiB,
});

/** Fixed keys make these exact; the tolerance only says how close to the ideal they must be. */
function expectNear(actual: number | undefined, expected: number, tolerance = 0.02): void {
  expect(Math.abs((actual ?? Number.NaN) - expected)).toBeLessThan(tolerance);
}

/** How often each node comes first over all keys, as fractions. */
function firstShares(nodes: PlacementCandidate[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) {
    const first = rankNodes(key, nodes)[0]!.id;
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  return new Map([...counts].map(([id, n]) => [id, n / KEYS]));
}

describe('rendezvous placement', () => {
  it('is deterministic and ranks every eligible node once', () => {
    const nodes = [node('a'), node('b'), node('c')];
    for (const key of keys.slice(0, 100)) {
      const order = rankNodes(key, nodes).map((n) => n.id);
      expect(order).toEqual(rankNodes(key, [...nodes].reverse()).map((n) => n.id));
      expect([...order].sort()).toEqual(['a', 'b', 'c']);
    }
  });

  it('spreads contents evenly over equal nodes, for the first and the second copy', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((id) => node(id));
    for (const share of firstShares(nodes).values()) expectNear(share, 0.25);
    const holds = new Map<string, number>();
    for (const key of keys)
      for (const n of rankNodes(key, nodes).slice(0, 2)) holds.set(n.id, (holds.get(n.id) ?? 0) + 1);
    for (const n of holds.values()) expect(n / KEYS).toBeGreaterThan(0.47);
  });

  it('weights by free space', () => {
    const shares = firstShares([node('small', 100), node('medium', 200), node('large', 300)]);
    expectNear(shares.get('small'), 1 / 6);
    expectNear(shares.get('medium'), 2 / 6);
    expectNear(shares.get('large'), 3 / 6);
    // An unmeasured node counts as an average one rather than an empty one.
    expectNear(firstShares([node('new', null), node('old', 1)]).get('new'), 0.5);
  });

  it('weighs a node that reports no free space (S3) like the median node', () => {
    const shares = firstShares([node('small', 10), node('mid', 100), node('big', 300), node('s3', null)]);
    // Weights 10 : 100 : 300 : 100 (the median of the known ones).
    expectNear(shares.get('s3'), 100 / 510);
    expectNear(shares.get('mid'), 100 / 510);
    expectNear(shares.get('small'), 10 / 510);
  });

  it('skips a node without room for the content', () => {
    const nodes = [node('a'), { id: 'full', freeBytes: 10_000 }, node('b')];
    for (const key of keys.slice(0, 200)) {
      expect(rankNodes(key, nodes, 10_000).map((n) => n.id)).not.toContain('full');
      expect(rankNodes(key, nodes, 9_999).map((n) => n.id)).toContain('full');
    }
  });

  it('moves only what the new node takes when a node is added', () => {
    const before = ['a', 'b', 'c'].map((id) => node(id));
    const after = [...before, node('d')];
    let movedFirst = 0;
    let changedSets = 0;
    for (const key of keys) {
      const was = rankNodes(key, before).map((n) => n.id);
      const now = rankNodes(key, after).map((n) => n.id);
      if (was[0] !== now[0]) {
        movedFirst++;
        // Whatever moves, moves to the new node: nothing shuffles among the old ones.
        expect(now[0]).toBe('d');
      }
      // The relative order of the old nodes never changes.
      expect(now.filter((id) => id !== 'd')).toEqual(was);
      const wasSet = new Set(was.slice(0, 2));
      const nowSet = now.slice(0, 2);
      if (nowSet.some((id) => !wasSet.has(id))) {
        changedSets++;
        expect(nowSet).toContain('d');
      }
    }
    // About 1/4 of first copies and 1 - (3/4 · 2/3) = 1/2 of the two-copy homes gain the new node.
    expectNear(movedFirst / KEYS, 0.25);
    expectNear(changedSets / KEYS, 0.5);
  });

  it('loses only what the lost node held when a node goes away', () => {
    const all = ['a', 'b', 'c', 'd'].map((id) => node(id));
    const without = all.filter((n) => n.id !== 'c');
    for (const key of keys.slice(0, 2000)) {
      const was = rankNodes(key, all).map((n) => n.id);
      const now = rankNodes(key, without).map((n) => n.id);
      expect(now).toEqual(was.filter((id) => id !== 'c'));
    }
  });
});
