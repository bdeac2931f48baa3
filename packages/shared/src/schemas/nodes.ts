import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate } from './common.ts';

export const NodeStatus = Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('draining')]);
export type NodeStatus = Static<typeof NodeStatus>;

export const StorageNodeInfo = Type.Object({
  id: Id,
  name: Type.String(),
  kind: Type.String(),
  status: NodeStatus,
  lastHeartbeatAt: Type.Union([IsoDate, Type.Null()]),
  usedBytes: Type.Union([Type.Integer(), Type.Null()]),
  freeBytes: Type.Union([Type.Integer(), Type.Null()]),
  contents: Type.Integer(),
});
export type StorageNodeInfo = Static<typeof StorageNodeInfo>;

export const NodeList = Type.Object({
  items: Type.Array(StorageNodeInfo),
  underReplicated: Type.Optional(Type.Integer()),
});
export type NodeList = Static<typeof NodeList>;
