import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

/** `draining` is an up node being emptied (no new writes); a down node is `down` whatever else. */
export const NodeStatus = Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('draining')]);
export type NodeStatus = Static<typeof NodeStatus>;

/**
 * A drain under way: what the node held when it began, what has moved to other nodes since (each
 * copy verified before it counts), the average rate and the time left at that rate (null until
 * something has moved). Kept in the database: a restart or another instance shows the same drain.
 */
export const DrainProgress = Type.Object({
  startedAt: IsoDate,
  totalObjects: Type.Integer({ minimum: 0 }),
  totalBytes: Type.Integer({ minimum: 0 }),
  movedObjects: Type.Integer({ minimum: 0 }),
  movedBytes: Type.Integer({ minimum: 0 }),
  remainingObjects: Type.Integer({ minimum: 0 }),
  remainingBytes: Type.Integer({ minimum: 0 }),
  bytesPerSecond: Type.Integer({ minimum: 0 }),
  etaSeconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
});
export type DrainProgress = Static<typeof DrainProgress>;

export const StorageNodeInfo = Type.Object({
  id: Id,
  name: Type.String(),
  kind: Type.String(),
  status: NodeStatus,
  lastHeartbeatAt: Type.Union([IsoDate, Type.Null()]),
  usedBytes: Type.Union([Type.Integer(), Type.Null()]),
  freeBytes: Type.Union([Type.Integer(), Type.Null()]),
  /** Healthy (`ok`) replicas on the node. */
  contents: Type.Integer(),
  /**
   * dfs's own bytes on the node: the sizes of its healthy replicas. `usedBytes` is the whole disk
   * (or bucket) as the node reports it, other data included.
   */
  storedBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  totalBytes: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  /** Since when the node has been down; null while it is up. */
  downSince: Type.Optional(Type.Union([IsoDate, Type.Null()])),
  /** Being emptied, by an admin (`POST /api/nodes/:id/drain`) or by DFS_DRAIN_NODES. */
  draining: Type.Optional(Type.Boolean()),
  /** False for a node no longer in DFS_NODES: its copies are being replaced elsewhere. */
  configured: Type.Optional(Type.Boolean()),
  /** Replicas a read or the scrub found gone or damaged, waiting for repair. */
  missing: Type.Optional(Type.Integer()),
  corrupt: Type.Optional(Type.Integer()),
  /** Set while the node drains. */
  drain: Type.Optional(Type.Union([DrainProgress, Type.Null()])),
  /**
   * Whether the node has every write on its disk before dfs acknowledges it: false for an SFTP
   * node without `fsync@openssh.com` that its URL accepts anyway (`fsync=0`).
   */
  syncsWrites: Type.Optional(Type.Boolean()),
  /** Why the node is down, as this instance's last heartbeat found it (null while up). */
  problem: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type StorageNodeInfo = Static<typeof StorageNodeInfo>;

export const NodeList = Type.Object({
  items: Type.Array(StorageNodeInfo),
  /** Contents with fewer healthy copies on live nodes than wanted. */
  underReplicated: Type.Optional(Type.Integer()),
  /** Copies each content should have now: DFS_REPLICAS, capped by the writable nodes. */
  wantedReplicas: Type.Optional(Type.Integer()),
});
export type NodeList = Static<typeof NodeList>;

export const NodeResponse = Type.Object({ node: StorageNodeInfo });
export type NodeResponse = Static<typeof NodeResponse>;
