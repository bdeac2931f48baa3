import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { ObjectNotFoundError, objectKey, type StorageNode } from '../../../storage/types.ts';
import { BLOCK_SIZE, BlockHasher, type BlockTable } from '../../hashing/blocks.ts';
import { type ManifestContent, readContents, readManifest } from './manifest.ts';
import { openNodes } from './nodes.ts';

export type ReplicaVerdict = 'ok' | 'missing' | 'corrupt' | 'unreachable';

export interface VerifyProblem {
  sha1: string;
  node: string;
  verdict: Exclude<ReplicaVerdict, 'ok'>;
  detail: string;
}

export interface VerifySummary {
  contents: number;
  bytes: number;
  /** Contents with every listed replica good, with some bad but one good, with none good. */
  ok: number;
  degraded: number;
  lost: number;
  replicas: Record<ReplicaVerdict, number>;
  problems: VerifyProblem[];
}

export interface ReplicaCheck {
  verdict: ReplicaVerdict;
  detail: string;
  /** The block table of bytes that verified (what a re-registered content needs). */
  table?: BlockTable;
}

/**
 * Reads one copy whole and checks its size and SHA-1 against the manifest: a backup is read
 * without a database (before a restore there is none), so the block tables the app's verified
 * read path checks against are not at hand; the SHA-1 and size are the content's identity, the
 * very thing those tables were made from. The block table comes out of the same pass.
 */
export async function checkReplica(
  node: StorageNode,
  content: Pick<ManifestContent, 'sha1' | 'size'>,
  onBytes = (_n: number) => {},
): Promise<ReplicaCheck> {
  const sha1 = createHash('sha1');
  const blocks = new BlockHasher(BLOCK_SIZE);
  let seen = 0;
  try {
    const stream = await node.get(objectKey(content.sha1));
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      seen += buf.length;
      onBytes(buf.length);
      if (seen > content.size) {
        stream.destroy();
        return { verdict: 'corrupt', detail: `longer than ${content.size} bytes` };
      }
      sha1.update(buf);
      blocks.update(buf);
    }
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return { verdict: 'missing', detail: 'no such object' };
    return { verdict: 'unreachable', detail: (error as Error).message };
  }
  if (seen !== content.size) return { verdict: 'corrupt', detail: `${seen} bytes, not ${content.size}` };
  const digest = sha1.digest('hex');
  if (digest !== content.sha1) return { verdict: 'corrupt', detail: `SHA-1 ${digest}` };
  return { verdict: 'ok', detail: '', table: blocks.table() };
}

/**
 * `dfs admin verify`: every replica the manifest lists is read whole and checked. Each one, not
 * just a first good copy: a restore needs one good copy, but the operator needs to know which
 * copies are gone before the last one goes too (and repair on a restored instance starts from
 * the replica states the snapshot recorded, which may be older than the damage).
 */
export async function verifyBackup(options: {
  dir: string;
  nodeUrls: string[];
  concurrency?: number;
  progress?: (line: string) => void;
}): Promise<VerifySummary> {
  const progress = options.progress ?? (() => {});
  const manifest = await readManifest(options.dir);
  const nodes = await openNodes(options.nodeUrls, progress);
  const summary: VerifySummary = {
    contents: 0,
    bytes: 0,
    ok: 0,
    degraded: 0,
    lost: 0,
    replicas: { ok: 0, missing: 0, corrupt: 0, unreachable: 0 },
    problems: [],
  };
  const started = Date.now();
  let bytesRead = 0;
  let lastReport = started;
  const report = (final = false) => {
    const now = Date.now();
    if (!final && now - lastReport < 1000) return;
    lastReport = now;
    const seconds = Math.max((now - started) / 1000, 0.001);
    progress(
      `${summary.contents}/${manifest.contents} contents, ${formatBytes(bytesRead)} read, ${formatBytes(bytesRead / seconds)}/s`,
    );
  };
  const limit = pLimit(options.concurrency ?? 4);
  const running = new Set<Promise<void>>();
  try {
    for await (const content of readContents(options.dir)) {
      const task = limit(async () => {
        let good = 0;
        for (const replica of content.replicas) {
          const node = nodes.byName.get(replica.node);
          const check: ReplicaCheck = node
            ? await checkReplica(node, content, (n) => {
                bytesRead += n;
              })
            : { verdict: 'unreachable', detail: 'the node is not in DFS_NODES or does not answer' };
          summary.replicas[check.verdict]++;
          if (check.verdict === 'ok') good++;
          else
            summary.problems.push({
              sha1: content.sha1,
              node: replica.node,
              verdict: check.verdict,
              detail: check.detail,
            });
        }
        summary.contents++;
        summary.bytes += content.size;
        if (good === content.replicas.length && good > 0) summary.ok++;
        else if (good > 0) summary.degraded++;
        else {
          summary.lost++;
          if (content.replicas.length === 0) {
            summary.problems.push({
              sha1: content.sha1,
              node: '-',
              verdict: 'missing',
              detail: 'no replica recorded',
            });
          }
        }
        report();
      });
      running.add(task);
      void task.finally(() => running.delete(task));
      // Never more than a few hundred contents in flight: the manifest is read as it is checked.
      if (running.size >= 256) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    await nodes.close();
  }
  report(true);
  return summary;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** The summary as the command prints it: counts first, then one line per bad replica. */
export function formatSummary(summary: VerifySummary): string {
  const lines = [
    `contents: ${summary.contents} (${formatBytes(summary.bytes)}): ${summary.ok} ok, ${summary.degraded} with a bad copy, ${summary.lost} without a good copy`,
    `replicas: ${summary.replicas.ok} ok, ${summary.replicas.missing} missing, ${summary.replicas.corrupt} corrupt, ${summary.replicas.unreachable} unreachable`,
    ...summary.problems.map((p) => `${p.verdict} ${p.sha1} on ${p.node}${p.detail ? ` (${p.detail})` : ''}`),
  ];
  return `${lines.join('\n')}\n`;
}
