import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';
import { NodeStatus } from './nodes.ts';

/** How far back the dashboard looks: hourly points for a day or a week, daily ones for 30 days. */
export const StatsRange = Type.Union([Type.Literal('24h'), Type.Literal('7d'), Type.Literal('30d')]);
export type StatsRange = Static<typeof StatsRange>;

export const StatsQuery = Type.Object({ range: Type.Optional(StatsRange) }, { additionalProperties: false });
export type StatsQuery = Static<typeof StatsQuery>;

/** Per point: what happened in it (all app instances added up). */
const Counts = Type.Array(Type.Integer({ minimum: 0 }));
/** Per point: the last value sampled in it; null where nothing was sampled (the server was off). */
const Levels = Type.Array(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]));

export const StatsNodeSeries = Type.Object({
  id: Id,
  name: Type.String(),
  /** dfs's own bytes on the node (its healthy replicas). */
  storedBytes: Levels,
  /** The node's disk (or bucket) as it reports it, other data included. */
  usedBytes: Levels,
});
export type StatsNodeSeries = Static<typeof StatsNodeSeries>;

/** Each array has one value per entry of `times`. */
export const StatsSeries = Type.Object({
  uploadsStored: Counts,
  /** Uploads that needed no bytes: the content was already stored (dedupe). */
  uploadsInstant: Counts,
  uploadsFailed: Counts,
  downloads: Counts,
  bytesIn: Counts,
  bytesOut: Counts,
  /** Responses with a 5xx status. */
  errors5xx: Counts,
  /** Sizes of every user's files (trash included) and kept versions: what they would take without dedupe. */
  logicalBytes: Levels,
  /** Sizes of the distinct contents: what is stored, once per replica. */
  uniqueBytes: Levels,
  replicasOk: Levels,
  replicasMissing: Levels,
  replicasCorrupt: Levels,
  activeUsersHour: Levels,
  activeUsersDay: Levels,
  nodes: Type.Array(StatsNodeSeries),
});
export type StatsSeries = Static<typeof StatsSeries>;

export const StatsSnapshotNode = Type.Object({
  id: Id,
  name: Type.String(),
  status: NodeStatus,
  storedBytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  usedBytes: Type.Union([Type.Integer(), Type.Null()]),
  freeBytes: Type.Union([Type.Integer(), Type.Null()]),
  totalBytes: Type.Union([Type.Integer(), Type.Null()]),
});
export type StatsSnapshotNode = Static<typeof StatsSnapshotNode>;

/**
 * Now: the nodes as their last heartbeat reported them, the rest as the last sample found it
 * (counting replicas and contents is a scan, done by the sampler rather than on every view).
 */
export const StatsSnapshot = Type.Object({
  at: IsoDate,
  /** When any instance last sampled; null before the first sample. */
  lastSampleAt: Type.Union([IsoDate, Type.Null()]),
  nodes: Type.Array(StatsSnapshotNode),
  replicas: Type.Object({
    ok: Type.Integer({ minimum: 0 }),
    missing: Type.Integer({ minimum: 0 }),
    corrupt: Type.Integer({ minimum: 0 }),
  }),
  dedupe: Type.Object({
    logicalBytes: Type.Integer({ minimum: 0 }),
    uniqueBytes: Type.Integer({ minimum: 0 }),
    savedBytes: Type.Integer({ minimum: 0 }),
  }),
  activeUsers: Type.Object({ hour: Type.Integer({ minimum: 0 }), day: Type.Integer({ minimum: 0 }) }),
});
export type StatsSnapshot = Static<typeof StatsSnapshot>;

export const StatsResponse = Type.Object({
  range: StatsRange,
  step: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
  /** Each point's start (UTC hours, or UTC days for 30d), oldest first. */
  times: Type.Array(IsoDate),
  series: StatsSeries,
  snapshot: StatsSnapshot,
});
export type StatsResponse = Static<typeof StatsResponse>;
