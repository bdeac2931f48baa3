import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { NodeRow } from '../repositories/nodes.ts';
import { createNode, parseNodeUrl } from '../storage/node-url.ts';
import { type ByteRange, objectKey, type StorageNode } from '../storage/types.ts';
import { newId } from './ids.ts';
import { rankNodes } from './placement.ts';

export interface ClusterOptions {
  nodeUrls: string[];
  replicas: number;
  heartbeatMs: number;
  now: () => number;
  log: FastifyBaseLogger;
}

interface Member {
  id: string;
  driver: StorageNode;
  status: 'up' | 'down';
  draining: boolean;
  freeBytes: number | null;
  missedBeats: number;
}

/** Beats a node may miss before it is marked down: one lost packet is not an outage. */
const MISSES_BEFORE_DOWN = 2;

/**
 * The storage nodes as one service: their drivers, liveness (heartbeat), placement and reads that
 * fall over from one replica to the next. Node state is mirrored to the `nodes` table for the API.
 */
export class StorageCluster {
  private readonly members = new Map<string, Member>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly repos: Repositories,
    private readonly options: ClusterOptions,
  ) {}

  async start(): Promise<void> {
    const names: string[] = [];
    for (const url of this.options.nodeUrls) {
      const driver = createNode(parseNodeUrl(url));
      const row = await this.repos.nodes.ensure(driver.name, driver.kind, newId(), this.options.now());
      names.push(driver.name);
      this.members.set(row.id, {
        id: row.id,
        driver,
        status: 'down',
        draining: Boolean(row.draining),
        freeBytes: row.free_bytes === null ? null : Number(row.free_bytes),
        missedBeats: MISSES_BEFORE_DOWN,
      });
    }
    await this.repos.nodes.markUnconfiguredExcept(names);
    await this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await Promise.allSettled([...this.members.values()].map((m) => m.driver.close()));
  }

  /** Pings every node once; runs are never overlapped. */
  heartbeat(): Promise<void> {
    this.beating ??= this.beatAll().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatAll(): Promise<void> {
    await Promise.all([...this.members.values()].map((member) => this.beat(member)));
  }

  private async beat(member: Member): Promise<void> {
    const now = this.options.now();
    try {
      await withTimeout(
        (async () => {
          await member.driver.connect();
          await member.driver.ping();
          const usage = await member.driver.usage();
          member.freeBytes = usage.freeBytes;
          await this.repos.nodes.recordBeat(member.id, now, usage);
        })(),
        Math.max(1000, this.options.heartbeatMs * 0.8),
        `${member.driver.name} did not answer the heartbeat`,
      );
      if (member.status === 'down') this.options.log.info({ node: member.driver.name }, 'storage node up');
      member.status = 'up';
      member.missedBeats = 0;
    } catch (error) {
      member.missedBeats += 1;
      if (member.missedBeats >= MISSES_BEFORE_DOWN) {
        if (member.status === 'up')
          this.options.log.warn({ node: member.driver.name, err: error }, 'storage node down');
        member.status = 'down';
        await this.repos.nodes.markDown(member.id, now).catch(() => undefined);
      }
    }
  }

  /** Records a failure seen by a request, so the next heartbeat decides sooner. */
  reportFailure(nodeId: string): void {
    const member = this.members.get(nodeId);
    if (member) member.missedBeats = Math.max(member.missedBeats, MISSES_BEFORE_DOWN - 1);
  }

  liveNodeIds(): string[] {
    return [...this.members.values()].filter((m) => m.status === 'up').map((m) => m.id);
  }

  liveCount(): number {
    return this.writableMembers().length;
  }

  private writableMembers(): Member[] {
    return [...this.members.values()].filter((m) => m.status === 'up' && !m.draining);
  }

  /** Live nodes in placement order for a content: the first R are its home. */
  placement(sha1: string, size: number): Array<{ id: string; driver: StorageNode }> {
    return rankNodes(sha1, this.writableMembers(), size);
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

  /**
   * Opens the content's bytes from the first replica that answers, live nodes in placement order
   * first, then the others (a node marked down may be back before its next beat).
   */
  async open(sha1: string, replicaNodeIds: string[], range?: ByteRange): Promise<Readable> {
    const order = [...replicaNodeIds].sort(
      (a, b) => Number(this.isUp(b)) - Number(this.isUp(a)) || this.rank(sha1, a) - this.rank(sha1, b),
    );
    let lastError: unknown;
    for (const nodeId of order) {
      const driver = this.driver(nodeId);
      if (!driver) continue;
      try {
        return await driver.get(objectKey(sha1), range);
      } catch (error) {
        lastError = error;
        this.reportFailure(nodeId);
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

  private rank(sha1: string, nodeId: string): number {
    const order = rankNodes(sha1, [...this.members.values()]);
    const index = order.findIndex((m) => m.id === nodeId);
    return index < 0 ? order.length : index;
  }

  async describe(): Promise<Array<NodeRow & { live: boolean }>> {
    const rows = await this.repos.nodes.list();
    return rows.map((row) => ({ ...row, live: this.isUp(row.id) }));
  }
}

export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
