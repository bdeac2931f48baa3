import type { DrainProgress, NodeList, StorageNodeInfo } from '@dfs/shared';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { NodeRow } from '../repositories/nodes.ts';
import type { StorageCluster } from './cluster.ts';

/**
 * The storage nodes as the admin sees them (GET /api/nodes): liveness from this instance's
 * heartbeat, usage and replica counts from the database, and a drain's progress.
 */
export class NodeStatus {
  constructor(
    private readonly repos: Repositories,
    private readonly cluster: StorageCluster,
    private readonly now: () => number,
  ) {}

  /** Every known node (configured or not) with liveness, usage and replica counts. */
  async describe(): Promise<NodeList> {
    const view = this.cluster.view(0);
    const wanted = this.cluster.wantedReplicas();
    const [rows, states, underReplicated] = await Promise.all([
      this.repos.nodes.list(),
      this.repos.contents.replicaStatesByNode(),
      this.repos.contents.countUnderReplicatedOn(view.healthyIds, wanted),
    ]);
    return {
      items: await Promise.all(rows.map((row) => this.info(row, states.get(row.id)))),
      underReplicated,
      wantedReplicas: wanted,
    };
  }

  async describeNode(nodeId: string): Promise<StorageNodeInfo> {
    const [row, states] = await Promise.all([
      this.repos.nodes.get(nodeId),
      this.repos.contents.replicaStatesByNode(),
    ]);
    if (!row) throw new HttpError('not_found', 'no such storage node');
    return this.info(row, states.get(row.id));
  }

  private async info(
    row: NodeRow,
    counts: { ok: number; missing: number; corrupt: number; okBytes: number } | undefined,
  ): Promise<StorageNodeInfo> {
    const member = this.cluster.memberState(row.id);
    const live = member?.up === true;
    const draining = member ? member.draining : Boolean(row.draining);
    const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
    const num = (value: number | null) => (value === null ? null : Number(value));
    return {
      id: row.id,
      name: row.name,
      kind: row.kind,
      status: live ? (draining ? ('draining' as const) : ('up' as const)) : ('down' as const),
      lastHeartbeatAt: iso(row.last_heartbeat_at),
      downSince: live ? null : iso(member?.downSince ?? row.down_since),
      usedBytes: num(row.used_bytes),
      freeBytes: num(row.free_bytes),
      totalBytes: num(row.total_bytes),
      contents: counts?.ok ?? 0,
      storedBytes: counts?.okBytes ?? 0,
      missing: counts?.missing ?? 0,
      corrupt: counts?.corrupt ?? 0,
      draining,
      configured: member !== undefined,
      drain: draining ? await this.drainProgress(row) : null,
      // An S3 store's acknowledged writes are durable without an fsync.
      syncsWrites: row.kind === 's3' || (this.cluster.driver(row.id)?.capabilities().fsync ?? true),
      problem: member?.problem ?? null,
    };
  }

  /** A drain's progress: what moved since it began (from what the node still holds), rate and ETA. */
  private async drainProgress(row: NodeRow): Promise<DrainProgress | null> {
    if (row.drain_started_at == null) return null;
    const held = await this.repos.contents.heldBy(row.id);
    const totalObjects = Math.max(Number(row.drain_objects ?? 0), held.objects);
    const totalBytes = Math.max(Number(row.drain_bytes ?? 0), held.bytes);
    const movedBytes = totalBytes - held.bytes;
    const seconds = Math.max(0.001, (this.now() - Number(row.drain_started_at)) / 1000);
    const bytesPerSecond = Math.round(movedBytes / seconds);
    return {
      startedAt: new Date(Number(row.drain_started_at)).toISOString(),
      totalObjects,
      totalBytes,
      movedObjects: totalObjects - held.objects,
      movedBytes,
      remainingObjects: held.objects,
      remainingBytes: held.bytes,
      bytesPerSecond,
      etaSeconds: held.objects === 0 ? 0 : bytesPerSecond > 0 ? Math.ceil(held.bytes / bytesPerSecond) : null,
    };
  }
}
