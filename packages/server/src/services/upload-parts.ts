import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { UploadRow } from '../repositories/uploads.ts';
import {
  ChecksumMismatchError,
  isNodeFull,
  NodeUnavailableError,
  ObjectNotFoundError,
  type PartWrite,
  type StorageNode,
} from '../storage/types.ts';
import type { StorageCluster } from './cluster.ts';
import { matchChunk } from './hashing/chunk.ts';
import type { ChunkBytes } from './hashing/upload-hashes.ts';

/** The nodes an upload writes to right now, and the generation of that set. */
export interface UploadTargets {
  epoch: number;
  nodeIds: string[];
}

interface Hold {
  nodeIds: string[];
  bytes: number;
  /** When an upload row took the promise over (a `seq`), or null. */
  recordedSeq: number | null;
  /** When the bytes were all on the nodes, or null. */
  writtenAt: number | null;
}

/** Free space held on some nodes for one upload; see `UploadParts.reserve`. */
export interface SpaceHold {
  nodeIds: string[];
  recorded(): void;
  written(): void;
  cancel(): void;
}

const noNode = () => new HttpError('storage_unavailable', 'no storage node is up; retry shortly');

/**
 * The bytes of unfinished uploads on their storage nodes: one part file per upload on each of its
 * R nodes, chunk i at i × chunkSize. A node that fails a write leaves the upload (the chunks stay
 * on the others, and repair restores the replica count after `complete`); when every node of the
 * upload is gone, a fresh set takes over and the chunks stored so far count as not received, so
 * the client sends them again.
 */
export class UploadParts {
  /** Space promised in this process and not (yet) visible in the database or the heartbeat's usage. */
  private readonly holds = new Set<Hold>();
  /** Orders holds against reservation reads (see `reserve`); the reads running now. */
  private seq = 0;
  private readonly reading = new Set<number>();

  constructor(
    private readonly repos: Repositories,
    private readonly cluster: StorageCluster,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Picks the R nodes of a new upload (the content's placement when its hash is known), each with
   * room for `size` bytes plus `reserve`. None up: 503; up but all full: 507. Space promised to
   * uploads still running counts as used only with `reserved` (see `reserve`).
   */
  choose(
    placementKey: string,
    size: number,
    reserve = 0,
    exclude: Set<string> = new Set(),
    reserved?: ReadonlyMap<string, number>,
  ): string[] {
    const ranked = this.cluster
      .placement(placementKey, size + reserve, reserved)
      .filter((n) => !exclude.has(n.id));
    const want = Math.min(this.cluster.wantedReplicas(), ranked.length);
    if (want === 0) {
      if (this.cluster.liveCount() === 0) throw noNode();
      this.log.warn({ size, reserve }, 'upload refused: no storage node has room');
      throw new HttpError(
        'insufficient_storage',
        'the storage nodes have no room for this upload right now; try again later or tell the administrator',
      );
    }
    return ranked.slice(0, want).map((n) => n.id);
  }

  /**
   * `choose` with the space promised to unfinished uploads counted as used: the declared sizes of
   * open uploads on record (less what the last heartbeat already saw written) and this process's
   * holds. The chosen nodes hold `size` bytes for the caller until it says where they went:
   * `recorded` (an upload row now carries the promise), `written` (the bytes are on the nodes:
   * held until a heartbeat has measured them) or `cancel` (nothing was kept). Concurrent uploads
   * that together would fill a node get `507` rather than all starting.
   */
  async reserve(placementKey: string, size: number, reserve: number): Promise<SpaceHold> {
    const readSeq = ++this.seq;
    this.reading.add(readSeq);
    let recorded: Map<string, number>;
    try {
      recorded = await this.repos.uploads.reservedByNode(this.now(), this.cluster.usageMeasuredAt());
    } finally {
      this.reading.delete(readSeq);
    }
    // Nothing is awaited from here until the hold is added: two requests in this process always
    // see each other's holds.
    this.purgeHolds();
    const measuredAt = this.cluster.usageMeasuredAt();
    const reserved = new Map(recorded);
    for (const hold of this.holds) {
      // Recorded before this read began: the read counted it already.
      if (hold.recordedSeq !== null && hold.recordedSeq < readSeq) continue;
      if (hold.writtenAt !== null && measuredAt > hold.writtenAt) continue;
      for (const id of hold.nodeIds) reserved.set(id, (reserved.get(id) ?? 0) + hold.bytes);
    }
    const nodeIds = this.choose(placementKey, size, reserve, new Set(), reserved);
    const hold: Hold = { nodeIds, bytes: size, recordedSeq: null, writtenAt: null };
    this.holds.add(hold);
    return {
      nodeIds,
      recorded: () => {
        hold.recordedSeq ??= ++this.seq;
      },
      written: () => {
        hold.writtenAt ??= this.now();
      },
      cancel: () => {
        this.holds.delete(hold);
      },
    };
  }

  /** Drops holds that every reservation read from now on accounts for by itself. */
  private purgeHolds(): void {
    const oldestRead = this.reading.size === 0 ? Number.POSITIVE_INFINITY : Math.min(...this.reading);
    const measuredAt = this.cluster.usageMeasuredAt();
    for (const hold of this.holds) {
      if (hold.recordedSeq !== null && hold.recordedSeq < oldestRead) this.holds.delete(hold);
      else if (hold.writtenAt !== null && measuredAt > hold.writtenAt) this.holds.delete(hold);
    }
  }

  async assign(upload: Pick<UploadRow, 'id' | 'sha1' | 'size' | 'node_epoch'>): Promise<string[]> {
    const nodeIds = this.choose(upload.sha1 ?? upload.id, Number(upload.size));
    await this.repos.uploads.addNodes(upload.id, Number(upload.node_epoch), nodeIds);
    return nodeIds;
  }

  /**
   * The upload's nodes at its current epoch that are up (an upload from before part files gets
   * its nodes now). For a write, nodes that are down leave the upload while others remain — they
   * would miss this chunk; when none is up, a fresh set takes over if the cluster has one, and
   * otherwise the set is kept for when its nodes return (503 meanwhile).
   */
  async targets(upload: UploadRow, forWrite = false): Promise<UploadTargets> {
    const epoch = (await this.repos.uploads.nodeEpoch(upload.id)) ?? Number(upload.node_epoch);
    const rows = await this.repos.uploads.nodes(upload.id);
    if (rows.length === 0) return { epoch, nodeIds: await this.assign({ ...upload, node_epoch: epoch }) };
    const active = rows
      .filter((r) => r.state === 'active' && Number(r.epoch) === epoch)
      .map((r) => r.node_id);
    const up = active.filter((id) => this.cluster.isUp(id) && this.cluster.driver(id));
    if (forWrite && up.length > 0) {
      for (const id of active) if (!up.includes(id)) await this.repos.uploads.dropNode(upload.id, id);
    }
    return { epoch, nodeIds: up };
  }

  /** Whether every node that is up checks a part's MD5 itself (S3), so the app need not. */
  nodesCheckMd5(): boolean {
    return this.allCheckMd5(this.cluster.liveNodeIds());
  }

  private allCheckMd5(nodeIds: string[]): boolean {
    return (
      nodeIds.length > 0 && nodeIds.every((id) => this.cluster.driver(id)?.capabilities().checksMd5 === true)
    );
  }

  /**
   * Writes one chunk durably to every node of the upload; resolves with the node-set epoch it was
   * written under and the nodes that hold it, once at least one does.
   *
   * `md5.checked` false: the MD5 is the client's claim, left to nodes that check it themselves;
   * if any of the nodes written to does not, it is checked here first. Bytes that differ from
   * their MD5 reject with `ChecksumMismatchError`, and no node leaves the upload for it.
   */
  async write(
    upload: UploadRow,
    offset: number,
    data: Buffer,
    md5?: { hex: string; checked: boolean },
  ): Promise<{ epoch: number; nodeIds: string[] }> {
    const write: PartWrite = {
      chunkSize: upload.chunk_size,
      ...(md5 ? { md5Base64: Buffer.from(md5.hex, 'hex').toString('base64') } : {}),
    };
    let checked = md5?.checked ?? true;
    let full: HttpError | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      full = undefined;
      const { epoch, nodeIds } = await this.targets(upload, true);
      if (!checked && nodeIds.length > 0 && !this.allCheckMd5(nodeIds)) {
        if (createHash('md5').update(data).digest('hex') !== md5?.hex) {
          throw new ChecksumMismatchError('the bytes differ from their MD5');
        }
        checked = true;
      }
      if (nodeIds.length > 0) {
        // Full nodes are replaced like failed ones while other nodes have room.
        const written: string[] = await this.writeTo(upload.id, nodeIds, offset, data, write).catch(
          (err: unknown) => {
            if (!(err instanceof HttpError && err.code === 'insufficient_storage')) throw err;
            full = err;
            return [];
          },
        );
        if (written.length > 0) {
          for (const nodeId of nodeIds) {
            if (!written.includes(nodeId)) await this.repos.uploads.dropNode(upload.id, nodeId);
          }
          return { epoch, nodeIds: written };
        }
      }
      if (!(await this.replace(upload, epoch, nodeIds))) break;
    }
    if (full) throw full;
    throw new HttpError('storage_unavailable', "the upload's storage nodes are unavailable; retry shortly", {
      retryAfter: 5,
    });
  }

  /** Writes `data` at `offset` of part `partId` on each node; returns the nodes that hold it. */
  async writeTo(
    partId: string,
    nodeIds: string[],
    offset: number,
    data: Buffer,
    write: PartWrite,
  ): Promise<string[]> {
    return this.onEach(nodeIds, (driver) => driver.writePart(partId, offset, data, write), {
      partId,
      failed: 'part write failed; the node leaves this upload',
    });
  }

  /**
   * Runs `fn` on every node at once; returns the nodes where it worked, reporting the others. A
   * node that refused the bytes for their checksum is no failing node: that rejects the whole call.
   * When every node failed for lack of room, the answer is 507: retrying will not help.
   */
  private async onEach(
    nodeIds: string[],
    fn: (driver: StorageNode) => Promise<void>,
    log: { partId: string; failed: string },
  ): Promise<string[]> {
    const results = await Promise.allSettled(
      nodeIds.map((nodeId) => {
        const driver = this.cluster.driver(nodeId);
        if (!driver) return Promise.reject(new NodeUnavailableError(`node ${nodeId} is not configured`));
        return fn(driver);
      }),
    );
    const refused = results.find(
      (r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof ChecksumMismatchError,
    );
    if (refused) throw refused.reason;
    const ok: string[] = [];
    results.forEach((result, i) => {
      const nodeId = nodeIds[i] as string;
      if (result.status === 'fulfilled') ok.push(nodeId);
      else {
        this.cluster.reportFailure(nodeId);
        this.log.warn(
          { node: this.cluster.driver(nodeId)?.name ?? nodeId, err: result.reason, partId: log.partId },
          log.failed,
        );
      }
    });
    if (results.length > 0 && results.every((r) => r.status === 'rejected' && isNodeFull(r.reason))) {
      throw new HttpError('insufficient_storage', 'the storage nodes have no room left for this file');
    }
    return ok;
  }

  /**
   * Moves the upload to nodes it has not used (its current ones all failed): false when the cluster
   * has none, so the set is kept for when its nodes come back.
   */
  private async replace(upload: UploadRow, epoch: number, failed: string[]): Promise<boolean> {
    const used = new Set(
      (await this.repos.uploads.nodes(upload.id)).filter((r) => r.state === 'active').map((r) => r.node_id),
    );
    for (const id of failed) used.add(id);
    let nodeIds: string[];
    try {
      nodeIds = this.choose(upload.sha1 ?? upload.id, Number(upload.size), 0, used);
    } catch {
      return false;
    }
    if (await this.repos.uploads.replaceNodes(upload.id, epoch, nodeIds)) {
      this.log.warn(
        { uploadId: upload.id, nodes: nodeIds.map((id) => this.cluster.driver(id)?.name ?? id) },
        'every node of an upload failed; its chunks go to new nodes and are asked for again',
      );
    }
    return true;
  }

  /**
   * Chunk bytes read back from the upload's nodes, checked against the identity recorded when the
   * chunk was acknowledged, with their block digests. `key` is where a part lives once an
   * interrupted `complete` published it.
   */
  async readChunk(
    upload: UploadRow,
    nodeIds: string[],
    chunk: { offset: number; size: number; sha256: string },
    key: string | null,
  ): Promise<ChunkBytes> {
    const range = { start: chunk.offset, end: chunk.offset + chunk.size - 1 };
    let blocks: Buffer | null = null;
    const data = await this.readFromFirst(
      upload.id,
      nodeIds,
      async (driver) => {
        try {
          return await driver.readPart(upload.id, range);
        } catch (err) {
          if (!(err instanceof ObjectNotFoundError) || !key) throw err;
          return driver.get(key, range);
        }
      },
      (data, driver) => {
        blocks = data.length === chunk.size ? matchChunk(data, chunk.sha256) : null;
        if (blocks) return true;
        this.log.error(
          { node: driver.name, uploadId: upload.id, offset: chunk.offset },
          'part bytes differ from the acknowledged chunk',
        );
        return false;
      },
    );
    return { data, blocks: blocks ?? undefined };
  }

  /** The first `length` bytes of part `partId` from the first of `nodeIds` that has them whole. */
  readPartPrefix(partId: string, nodeIds: string[], length: number): Promise<Buffer> {
    return this.readFromFirst(
      partId,
      nodeIds,
      (driver) => driver.readPart(partId, { start: 0, end: length - 1 }),
      (data) => data.length === length,
      { retryAfter: 5 },
    );
  }

  /** The bytes `read` gets from the first of `nodeIds` whose answer `accept`s; 503 when none does. */
  private async readFromFirst(
    partId: string,
    nodeIds: string[],
    read: (driver: StorageNode) => Promise<Readable>,
    accept: (data: Buffer, driver: StorageNode) => boolean,
    unavailable: { retryAfter?: number } = {},
  ): Promise<Buffer> {
    for (const nodeId of nodeIds) {
      const driver = this.cluster.driver(nodeId);
      if (!driver) continue;
      try {
        const parts: Buffer[] = [];
        for await (const part of await read(driver)) parts.push(part as Buffer);
        const data = Buffer.concat(parts);
        if (accept(data, driver)) return data;
      } catch (err) {
        this.log.warn({ node: driver.name, err, partId }, 'could not read a part back');
      }
    }
    throw new HttpError(
      'storage_unavailable',
      'the upload bytes could not be read back from any node; retry shortly',
      unavailable,
    );
  }

  /** Publishes the part as `key` on each node; returns the nodes that now hold the object. */
  async commit(partId: string, nodeIds: string[], key: string, size: number): Promise<string[]> {
    const ok = await this.onEach(
      nodeIds,
      // An empty file has no chunk, so no part file was ever written.
      (driver) => (size === 0 ? driver.put(key, Readable.from([]), 0) : driver.commitPart(partId, key, size)),
      { partId, failed: 'part commit failed' },
    );
    if (ok.length === 0)
      throw new HttpError('storage_unavailable', 'no storage node could publish the upload; retry shortly');
    return ok;
  }

  /** Best effort: removes the part from every node that may hold it (the sweeper catches the rest). */
  async discard(partId: string, nodeIds: string[]): Promise<void> {
    await Promise.all(
      nodeIds.map(async (nodeId) => {
        try {
          await this.cluster.driver(nodeId)?.deletePart(partId);
        } catch (err) {
          this.log.warn({ err, partId, nodeId }, 'could not delete a part yet; the sweeper retries');
        }
      }),
    );
  }

  /**
   * Deletes an aborted upload's part from every configured node, not only those recorded for it:
   * a first chunk written while the abort ran may have chosen its nodes after the abort read them.
   * Deleting a part a node does not have is a no-op.
   */
  async discardEverywhere(partId: string): Promise<void> {
    await this.discard(partId, this.cluster.view(0).memberIds);
  }

  async discardUpload(uploadId: string): Promise<void> {
    const rows = await this.repos.uploads.nodes(uploadId);
    await this.discard(
      uploadId,
      rows.map((r) => r.node_id),
    );
  }
}
