import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import { parseNodeUrl, redactNodeUrl } from '../storage/node-spec.ts';
import { createNode } from '../storage/node-url.ts';
import {
  type ByteRange,
  type NodeUsage,
  ObjectNotFoundError,
  objectKey,
  type PresignOptions,
  type StorageNode,
} from '../storage/types.ts';
import { withTimeout } from '../util/timeout.ts';
import { BLOCK_SIZE, type BlockTable, blockRoot, fitsSize, rootOfTable } from './hashing/blocks.ts';
import { newId } from './ids.ts';
import { rankNodes } from './placement.ts';
import { hashFirstGoodReplica, openVerified, type ReplicaSource } from './verified-read.ts';

export interface ClusterOptions {
  nodeUrls: string[];
  replicas: number;
  heartbeatMs: number;
  /** Nodes to drain from the start (DFS_DRAIN_NODES): URLs as in `nodeUrls`, or node names. */
  drainNodes?: string[];
  /** DFS_ACCEL_REDIRECT: nodes whose directory nginx serves at an internal location. */
  accelLocations?: { location: string; node: string }[];
  now: () => number;
  log: FastifyBaseLogger;
  /** Told when a node that was up goes down (metrics count the transitions). */
  onDown?: (nodeName: string) => void;
}

interface Member {
  id: string;
  driver: StorageNode;
  status: 'up' | 'down';
  /** Drained by an admin (database flag) or by the config. */
  draining: boolean;
  /** Drained by DFS_DRAIN_NODES: the API cannot undo it. */
  configDrain: boolean;
  freeBytes: number | null;
  missedBeats: number;
  /** When the node was last seen going down; null while up. */
  downSince: number | null;
  /** The nginx location that serves this node's directory (X-Accel-Redirect); null: none. */
  accelLocation: string | null;
  /** When the heartbeat that measured `freeBytes` began; null before the first. */
  measuredAt: number | null;
  /** Why the last heartbeat failed; null after one that worked. */
  problem: string | null;
  /** The last successful heartbeat's round trip and the usage it reported (for metrics). */
  latencyMs: number | null;
  usedBytes: number | null;
}

/** How the cluster looks to the repair job at one moment. */
export interface ClusterView {
  /** DFS_REPLICAS. */
  replicas: number;
  /** Copies to keep now: DFS_REPLICAS capped by the writable nodes (0 when none is writable). */
  wanted: number;
  /** Every configured node. */
  memberIds: string[];
  drainingIds: string[];
  /** Nodes whose healthy replicas count: configured, not draining, up or down within the grace. */
  countingIds: string[];
  /** Nodes whose replicas can be trusted right now: configured, not draining, up. */
  healthyIds: string[];
}

/** A download served from elsewhere: an nginx-internal URI, or a presigned URL to redirect to. */
export type Offload = { kind: 'accel'; uri: string } | { kind: 'redirect'; url: string };

/**
 * nginx sends bytes without checking them, so a download goes to it only from a copy whose every
 * byte was verified this recently (at upload, by a repair's copy, or by the scrub, which re-hashes
 * such copies twice as often); any other copy is streamed by the app, block by block verified.
 */
export const ACCEL_VERIFIED_MS = 24 * 3600_000;

/** Beats a node may miss before it is marked down: one lost packet is not an outage. */
const MISSES_BEFORE_DOWN = 2;

/**
 * The storage nodes as one service: their drivers, liveness (heartbeat), placement and reads that
 * fall over from one replica to the next. The byte-level work of repair and scrub (copying and
 * re-hashing replicas) is in replica-copies.ts. Node state is mirrored to the `nodes` table for
 * the API and for other app instances.
 */
export class StorageCluster {
  private readonly members = new Map<string, Member>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private stopped = false;
  /** Block tables being computed for content stored before they existed, by content id. */
  private readonly hashing = new Map<string, Promise<BlockTable>>();

  constructor(
    private readonly repos: Repositories,
    private readonly options: ClusterOptions,
  ) {}

  get log(): FastifyBaseLogger {
    return this.options.log;
  }

  async start(): Promise<void> {
    const names: string[] = [];
    const drain = new Set(this.options.drainNodes ?? []);
    const matched = new Set<string>();
    const accel = this.options.accelLocations ?? [];
    const accelMatched = new Set<string>();
    for (const url of this.options.nodeUrls) {
      const driver = await createNode(parseNodeUrl(url));
      const row = await this.repos.nodes.ensure(driver.name, driver.kind, newId(), this.options.now());
      names.push(driver.name);
      const drainKeys = [url, driver.name, redactNodeUrl(url)].filter((key) => drain.has(key));
      for (const key of drainKeys) matched.add(key);
      const configDrain = drainKeys.length > 0;
      const keys = new Set([url, driver.name, redactNodeUrl(url)]);
      const served = accel.find((entry) => keys.has(entry.node));
      if (served) accelMatched.add(served.node);
      if (served && driver.kind === 's3') {
        throw new Error(
          `DFS_ACCEL_REDIRECT: ${driver.name} is an S3 node; its downloads are presigned redirects`,
        );
      }
      if (configDrain && !row.draining) await this.repos.nodes.setDraining(row.id, true);
      if (configDrain || row.draining) await this.noteDrainStart(row.id);
      this.members.set(row.id, {
        id: row.id,
        driver,
        status: 'down',
        draining: configDrain || Boolean(row.draining),
        configDrain,
        freeBytes: row.free_bytes === null ? null : Number(row.free_bytes),
        missedBeats: MISSES_BEFORE_DOWN,
        downSince: row.status === 'down' ? Number(row.down_since ?? this.options.now()) : null,
        accelLocation: served?.location ?? null,
        measuredAt: null,
        problem: null,
        latencyMs: null,
        usedBytes: row.used_bytes === null ? null : Number(row.used_bytes),
      });
    }
    const unserved = accel.filter((entry) => !accelMatched.has(entry.node));
    if (unserved.length > 0) {
      throw new Error(
        `DFS_ACCEL_REDIRECT: ${unserved.map((entry) => JSON.stringify(redactNodeUrl(entry.node))).join(', ')} ` +
          'is not one of DFS_NODES (give the URL as in DFS_NODES or the node name)',
      );
    }
    const unknown = [...drain].filter((entry) => !matched.has(entry));
    if (unknown.length > 0) {
      throw new Error(
        `DFS_DRAIN_NODES: ${unknown.map((entry) => JSON.stringify(redactNodeUrl(entry))).join(', ')} ` +
          'is not one of DFS_NODES (give the URL as in DFS_NODES or the node name)',
      );
    }
    await this.repos.nodes.markUnconfiguredExcept(names);
    await this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.beating;
    await Promise.allSettled([...this.members.values()].map((m) => m.driver.close()));
  }

  // ---- liveness -------------------------------------------------------------------------------

  /** Pings every node once; runs are never overlapped. */
  heartbeat(): Promise<void> {
    this.beating ??= this.beatAll().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatAll(): Promise<void> {
    if (this.stopped) return;
    await this.refreshDraining().catch((err) =>
      this.options.log.warn({ err }, 'could not read node flags from the database'),
    );
    await Promise.all([...this.members.values()].map((member) => this.beat(member)));
  }

  /** Another app instance may have drained or undrained a node through the API. */
  private async refreshDraining(): Promise<void> {
    for (const row of await this.repos.nodes.list()) {
      const member = this.members.get(row.id);
      if (member) member.draining = member.configDrain || Boolean(row.draining);
    }
  }

  private async beat(member: Member): Promise<void> {
    const now = this.options.now();
    // The round trip is measured on the monotonic clock: `now` may be a test's fake one.
    const started = performance.now();
    let usage: NodeUsage;
    try {
      // Only the node's answer is under the deadline: a late answer is dropped rather than
      // recorded after the node was already marked down.
      usage = await withTimeout(
        (async () => {
          await member.driver.connect();
          await member.driver.ping();
          return member.driver.usage();
        })(),
        Math.max(1000, this.options.heartbeatMs * 0.8),
        () => new Error(`${member.driver.name} did not answer the heartbeat`),
      );
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      // Said once per new problem, from the first beat on: a node refused at start is explained.
      if (problem !== member.problem) {
        this.options.log.warn({ node: member.driver.name, err: error }, 'storage node heartbeat failed');
      }
      member.problem = problem;
      member.missedBeats += 1;
      if (member.missedBeats >= MISSES_BEFORE_DOWN) {
        if (member.status === 'up') {
          this.options.log.warn({ node: member.driver.name, err: error }, 'storage node down');
          this.options.onDown?.(member.driver.name);
        }
        member.status = 'down';
        member.downSince ??= now;
        await this.repos.nodes.markDown(member.id, now).catch(() => undefined);
      }
      return;
    }
    member.freeBytes = usage.freeBytes;
    member.usedBytes = usage.usedBytes;
    member.latencyMs = performance.now() - started;
    member.measuredAt = now;
    member.problem = null;
    if (member.status === 'down') this.options.log.info({ node: member.driver.name }, 'storage node up');
    member.status = 'up';
    member.downSince = null;
    member.missedBeats = 0;
    await this.repos.nodes
      .recordBeat(member.id, now, usage)
      .catch((err) => this.options.log.warn({ err }, 'could not record a heartbeat'));
  }

  /** Records a failure seen by a request, so the next heartbeat decides sooner. */
  reportFailure(nodeId: string): void {
    const member = this.members.get(nodeId);
    if (member) member.missedBeats = Math.max(member.missedBeats, MISSES_BEFORE_DOWN - 1);
  }

  liveNodeIds(): string[] {
    return [...this.members.values()].filter((m) => m.status === 'up').map((m) => m.id);
  }

  /** Nodes that take new copies: up and not draining. */
  liveCount(): number {
    return this.writableMembers().length;
  }

  private writableMembers(): Member[] {
    return [...this.members.values()].filter((m) => m.status === 'up' && !m.draining);
  }

  /** Writable nodes in placement order for a content (full ones left out): the first R are its home. */
  /**
   * Writable nodes ranked for `sha1` that have room for `size` more bytes; `reserved` bytes per
   * node (promised to uploads still running) count as already used.
   */
  placement(
    sha1: string,
    size: number,
    reserved?: ReadonlyMap<string, number>,
  ): Array<{ id: string; driver: StorageNode }> {
    const members = this.writableMembers();
    if (!reserved || reserved.size === 0) return rankNodes(sha1, members, size);
    const candidates = members.map((member) => ({
      id: member.id,
      driver: member.driver,
      freeBytes:
        member.freeBytes === null ? null : Math.max(0, member.freeBytes - (reserved.get(member.id) ?? 0)),
    }));
    return rankNodes(sha1, candidates, size);
  }

  /**
   * The start of the oldest free-space measurement among the writable nodes: bytes written before
   * it are in every node's `freeBytes`, later ones perhaps not (0 before any measurement).
   */
  usageMeasuredAt(): number {
    const times = this.writableMembers().map((m) => m.measuredAt ?? 0);
    return times.length === 0 ? 0 : Math.min(...times);
  }

  wantedReplicas(): number {
    return Math.min(this.options.replicas, Math.max(1, this.liveCount()));
  }

  driver(nodeId: string): StorageNode | undefined {
    return this.members.get(nodeId)?.driver;
  }

  isUp(nodeId: string): boolean {
    return this.members.get(nodeId)?.status === 'up';
  }

  isDraining(nodeId: string): boolean {
    return this.members.get(nodeId)?.draining === true;
  }

  /** The cluster as repair sees it: a node down for less than `graceMs` still counts. */
  view(graceMs: number): ClusterView {
    const now = this.options.now();
    const members = [...this.members.values()];
    const serving = members.filter((m) => !m.draining);
    return {
      replicas: this.options.replicas,
      wanted: Math.min(this.options.replicas, this.writableMembers().length),
      memberIds: members.map((m) => m.id),
      drainingIds: members.filter((m) => m.draining).map((m) => m.id),
      countingIds: serving
        .filter((m) => m.status === 'up' || (m.downSince !== null && now - m.downSince < graceMs))
        .map((m) => m.id),
      healthyIds: serving.filter((m) => m.status === 'up').map((m) => m.id),
    };
  }

  // ---- draining -------------------------------------------------------------------------------

  /**
   * Starts or stops emptying a node: a draining node takes no new copies, its copies stop counting,
   * and the repair job moves them elsewhere and then deletes them from it.
   */
  async setDraining(nodeId: string, draining: boolean): Promise<void> {
    const row = await this.repos.nodes.get(nodeId);
    if (!row) throw new HttpError('not_found', 'no such storage node');
    const member = this.members.get(nodeId);
    if (!member) {
      throw new HttpError(
        'bad_request',
        'this node is no longer in DFS_NODES; repair already replaces its copies',
      );
    }
    if (!draining && member.configDrain) {
      throw new HttpError('bad_request', 'this node is drained by DFS_DRAIN_NODES; remove it there first');
    }
    if (draining && ![...this.members.values()].some((m) => m.id !== nodeId && !m.draining)) {
      throw new HttpError(
        'bad_request',
        'draining the last writable node would leave nowhere to store files',
      );
    }
    await this.repos.nodes.setDraining(nodeId, draining);
    if (draining) await this.noteDrainStart(nodeId);
    else await this.repos.nodes.clearDrainStart(nodeId);
    member.draining = draining;
    this.options.log.info(
      { node: member.driver.name, draining },
      draining ? 'draining node' : 'node undrained',
    );
  }

  private async noteDrainStart(nodeId: string): Promise<void> {
    await this.repos.nodes.markDrainStart(
      nodeId,
      this.options.now(),
      await this.repos.contents.heldBy(nodeId),
    );
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** Replica nodes in read order: live before down, serving before draining, then placement rank. */
  readOrder(sha1: string, replicaNodeIds: string[]): string[] {
    const ranked = rankNodes(sha1, [...this.members.values()]);
    const rank = (id: string) => {
      const index = ranked.findIndex((m) => m.id === id);
      return index < 0 ? ranked.length : index;
    };
    return [...new Set(replicaNodeIds)]
      .filter((id) => this.members.has(id))
      .sort(
        (a, b) =>
          Number(this.isUp(b)) - Number(this.isUp(a)) ||
          Number(this.isDraining(a)) - Number(this.isDraining(b)) ||
          rank(a) - rank(b),
      );
  }

  /**
   * Opens the content's bytes (or `range` of them) from the first replica that answers, live nodes
   * in placement order first, then the others (a node marked down may be back before its next beat).
   * Every byte is verified before it is sent (services/verified-read.ts): the read covers whole
   * blocks, each checked against its recorded SHA-256. The client never notices a failing replica:
   * - an object missing on a node is marked `missing` (repair restores it) and the next one is tried;
   * - a replica that fails mid-stream is replaced by the next one, from the block where it stopped
   *   (the objects are content-addressed and verified, so every copy has equal bytes);
   * - a block that fails its hash, or an object that ends early, marks the replica `corrupt` and
   *   another one serves that block. With no good copy of a block left the stream fails: damaged
   *   bytes are never sent, ranged or not, so a resumed download cannot stitch them into a file.
   * `damagedNodeIds`, replicas already marked `corrupt`, are read last: damage is usually a few
   * blocks, and the rest of such a copy still serves the blocks every other copy lost.
   */
  async open(
    content: { id: string; sha1: string; size: number },
    replicaNodeIds: string[],
    range?: ByteRange,
    damagedNodeIds: string[] = [],
  ): Promise<Readable> {
    const healthy = this.readOrder(content.sha1, replicaNodeIds);
    const damaged = this.readOrder(content.sha1, damagedNodeIds).filter((id) => !healthy.includes(id));
    const source = this.replicaSource(content.sha1, [...healthy, ...damaged]);
    const table = await this.blockTable(content, source);
    return openVerified(source, content, table, range);
  }

  /**
   * Where a download's bytes can come from without passing through the app: nginx reading a node's
   * directory (X-Accel-Redirect; first, as it keeps the client on the same origin), else a
   * presigned URL of an S3 replica; null when no live, serving replica offers either. Each
   * candidate is stat'ed first: nginx or the backend would answer a lost copy with their own 404,
   * where this fails over to the next replica and repair learns of the loss. nginx gets only
   * copies verified within ACCEL_VERIFIED_MS (`verifiedAt`: when each replica was last verified).
   */
  async offload(
    content: { sha1: string; size: number },
    replicaNodeIds: string[],
    presign: PresignOptions,
    verifiedAt: ReadonlyMap<string, number> = new Map(),
  ): Promise<Offload | null> {
    const recent = (nodeId: string) =>
      this.options.now() - (verifiedAt.get(nodeId) ?? Number.NEGATIVE_INFINITY) <= ACCEL_VERIFIED_MS;
    const key = objectKey(content.sha1);
    const order = this.readOrder(content.sha1, replicaNodeIds);
    for (const kind of ['accel', 'redirect'] as const) {
      for (const nodeId of order) {
        const member = this.members.get(nodeId);
        if (!member || !this.isUp(nodeId) || this.isDraining(nodeId)) continue;
        const { driver, accelLocation } = member;
        if (kind === 'accel' ? !accelLocation || !recent(nodeId) : !driver.presignGet) continue;
        try {
          const stat = await driver.stat(key);
          if (stat?.size !== Number(content.size)) {
            await this.markReplica(content.sha1, nodeId, 'missing');
            continue;
          }
          if (kind === 'accel') return { kind, uri: `${accelLocation}${key}` };
          const url = await driver.presignGet?.(key, presign);
          if (url) return { kind, url };
        } catch (err) {
          this.options.log.warn(
            { err, node: driver.name, kind },
            'could not offload a download; trying the next',
          );
          // A node that fails a stat is likely failing; a presign error is the backend's answer.
          if (kind === 'accel') this.reportFailure(nodeId);
        }
      }
    }
    return null;
  }

  /** Nodes whose directory nginx serves (DFS_ACCEL_REDIRECT): the scrub checks their copies more often. */
  accelNodeIds(): string[] {
    return [...this.members.values()].filter((m) => m.accelLocation !== null).map((m) => m.id);
  }

  /**
   * The replicas of one read, in order. One that went missing or whose node failed is not tried
   * again by that read; one with a damaged block still is, for its other blocks.
   */
  private replicaSource(sha1: string, order: string[]): ReplicaSource {
    const lost = new Set<number>();
    const marked = new Set<number>();
    return {
      openFirst: (range, usable) =>
        this.openFirst(sha1, order, range, (index) => !lost.has(index) && usable(index), lost),
      markCorrupt: async (index) => {
        if (marked.has(index)) return;
        marked.add(index);
        await this.markReplica(sha1, order[index], 'corrupt');
      },
      lost: (index, error) => {
        lost.add(index);
        if (error instanceof ObjectNotFoundError) void this.markReplica(sha1, order[index], 'missing');
        else this.reportFailure(order[index] ?? '');
      },
      nodeName: (index) => this.driver(order[index] ?? '')?.name,
      log: this.options.log,
    };
  }

  /**
   * The content's block table. Content stored before tables existed has none, and its bytes are
   * never sent unverified either: the table is first computed from a whole replica whose size and
   * SHA-1 match (damaged ones are marked on the way), stored, and the read then proceeds block by
   * block. That costs one extra full read before the first byte of the first such download; the
   * alternative, streaming and checking the SHA-1 only at the end, lets a client keep damaged bytes
   * (a cut transfer resumed with Range). The scrub and any re-upload of the bytes fill tables in too.
   * Concurrent reads of the same content share one computation.
   */
  private async blockTable(
    content: { id: string; sha1: string; size: number },
    source: ReplicaSource,
  ): Promise<BlockTable> {
    const size = Number(content.size);
    if (size === 0) return { blockSize: BLOCK_SIZE, hashes: Buffer.alloc(0) };
    const stored = await this.repos.contentBlocks.find(content.id);
    if (fitsSize(stored, size)) return stored;
    let pending = this.hashing.get(content.id);
    if (!pending) {
      pending = hashFirstGoodReplica(source, content, BLOCK_SIZE)
        .then(async (table) => {
          await this.saveBlocks(content, table);
          return table;
        })
        .finally(() => this.hashing.delete(content.id));
      this.hashing.set(content.id, pending);
    }
    return pending;
  }

  /**
   * The root of a content's 1 MiB block table (what a collision check compares): from its stored
   * table when that can give it, otherwise from a whole replica whose size and SHA-1 match (a
   * content stored before roots with a one-block table bigger than 1 MiB, or with no table).
   */
  async rootOf(content: { id: string; sha1: string; size: number }): Promise<string> {
    const size = Number(content.size);
    const stored = await this.repos.contentBlocks.find(content.id);
    const root = rootOfTable(stored ?? { blockSize: BLOCK_SIZE, hashes: Buffer.alloc(0) }, size);
    if (root) return root;
    const ok = (await this.repos.contents.replicasOf(content.id)).filter((r) => r.state === 'ok');
    const source = this.replicaSource(
      content.sha1,
      this.readOrder(
        content.sha1,
        ok.map((r) => r.node_id),
      ),
    );
    const table = await hashFirstGoodReplica(source, content, BLOCK_SIZE);
    if (!fitsSize(stored, size)) await this.saveBlocks(content, table);
    return blockRoot(table.hashes);
  }

  private async saveBlocks(content: { id: string; sha1: string }, table: BlockTable): Promise<void> {
    await this.repos.contentBlocks
      .save(content.id, table)
      .catch((err) => this.options.log.warn({ err, sha1: content.sha1 }, 'could not store block hashes'));
  }

  /**
   * The first replica in `order` that `usable` allows and that opens; one that does not is marked
   * missing (or its node reported) and added to `lost`.
   */
  private async openFirst(
    sha1: string,
    order: string[],
    range: ByteRange,
    usable: (index: number) => boolean,
    lost: Set<number>,
  ): Promise<{ stream: Readable; index: number }> {
    let lastError: unknown;
    for (let index = 0; index < order.length; index++) {
      if (!usable(index)) continue;
      const nodeId = order[index] as string;
      const driver = this.driver(nodeId);
      if (!driver) continue;
      try {
        return { stream: await driver.get(objectKey(sha1), range), index };
      } catch (error) {
        lastError = error;
        lost.add(index);
        if (error instanceof ObjectNotFoundError) await this.markReplica(sha1, nodeId, 'missing');
        else this.reportFailure(nodeId);
        this.options.log.warn(
          { node: driver.name, sha1, err: error },
          'replica read failed, trying the next',
        );
      }
    }
    throw new HttpError('storage_unavailable', 'no storage node holding this content answered', {
      cause: String(lastError ?? 'no replica'),
    });
  }

  /** Records a replica found gone or damaged (repair restores it); never throws. */
  async markReplica(sha1: string, nodeId: string | undefined, state: 'missing' | 'corrupt') {
    if (!nodeId) return;
    await this.repos.contents
      .markReplicaBySha1(sha1, nodeId, state, this.options.now())
      .catch((err) => this.options.log.warn({ err }, 'could not mark a replica'));
  }

  /** Every configured node as the last heartbeat saw it, by name (for metrics). */
  nodeSamples(): Array<{
    node: string;
    up: boolean;
    latencyMs: number | null;
    usedBytes: number | null;
    freeBytes: number | null;
  }> {
    return [...this.members.values()].map((m) => ({
      node: m.driver.name,
      up: m.status === 'up',
      latencyMs: m.latencyMs,
      usedBytes: m.usedBytes,
      freeBytes: m.freeBytes,
    }));
  }

  /** One node's liveness as this instance sees it; undefined for a node no longer configured. */
  memberState(
    nodeId: string,
  ): { up: boolean; draining: boolean; downSince: number | null; problem: string | null } | undefined {
    const member = this.members.get(nodeId);
    return (
      member && {
        up: member.status === 'up',
        draining: member.draining,
        downSince: member.downSince,
        problem: member.status === 'up' ? null : member.problem,
      }
    );
  }
}
