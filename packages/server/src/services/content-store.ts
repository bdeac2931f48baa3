import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { isUniqueViolation } from '../db/knex.ts';
import { HttpError } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import { type ByteRange, objectKey, type PresignOptions } from '../storage/types.ts';
import type { Offload, StorageCluster } from './cluster.ts';
import { fanOut } from './fan-out.ts';
import { type BlockTable, fitsSize } from './hashing/blocks.ts';
import { DigestHasher, type Digests } from './hashing/content.ts';
import { newId } from './ids.ts';

export interface IngestRequest {
  declaredSha1: string;
  size: number;
  /** Opens the bytes from the start; called again only to fill a replica that failed. */
  open: () => Readable;
  /**
   * The server's own digests of these bytes, when it already computed them from the same buffer
   * (a body held in memory): the bytes are then not hashed a second time on their way to the nodes.
   */
  digests?: Digests;
}

/**
 * Turns verified bytes into a content row with replicas, and reads them back. The server never
 * trusts a hash it did not compute: the one ordered pass over the bytes computes the SHA-1 and the
 * per-block SHA-256 table (what reads verify against; its root names the bytes) while streaming
 * them to the nodes, and an object is published on a node only after the SHA-1 matched
 * (PutOptions.beforeCommit). Rows commit only after the bytes are on the nodes.
 */
export class ContentStore {
  constructor(
    private readonly repos: Repositories,
    private readonly cluster: StorageCluster,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
  ) {}

  async ingest(request: IngestRequest): Promise<ContentRow> {
    const existing = await this.repos.contents.findBySha1(request.declaredSha1);
    if (existing?.state === 'ready') {
      // Known content: the bytes still have to prove they are what they claim, but need no copy.
      const digests = request.digests ?? (await hashStream(request.open()));
      this.check(request, digests);
      await this.assertSameBytes(existing, digests);
      await this.backfillBlocks(existing, digests.blocks);
      return existing;
    }
    if (existing) throw new HttpError('storage_unavailable', 'this content is being removed; retry shortly');

    const { digests, nodeIds } = await this.store(request);
    return this.register(digests, nodeIds);
  }

  /**
   * Registers bytes whose digests the server computed itself as they passed (an upload's part
   * files): known content keeps its stored copies and the parts are dropped; new content is
   * published on the nodes by `publish` and registered with the nodes it returns.
   */
  async acceptVerified(
    digests: Digests,
    publish: (key: string) => Promise<string[]>,
    discard: () => Promise<void>,
  ): Promise<ContentRow> {
    const existing = await this.repos.contents.findBySha1(digests.sha1);
    if (existing?.state === 'ready') {
      try {
        await this.assertSameBytes(existing, digests);
      } finally {
        await discard();
      }
      await this.backfillBlocks(existing, digests.blocks);
      return existing;
    }
    if (existing) throw new HttpError('storage_unavailable', 'this content is being removed; retry shortly');
    const nodeIds = await publish(objectKey(digests.sha1));
    return this.register(digests, nodeIds);
  }

  private check(request: IngestRequest, digests: Digests): void {
    if (digests.sha1 !== request.declaredSha1 || digests.size !== request.size) {
      throw new HttpError('hash_mismatch', 'the uploaded bytes do not hash to the declared sha1', {
        expected: request.declaredSha1,
        actual: digests.sha1,
      });
    }
  }

  /**
   * Same SHA-1, different bytes is a collision: never merged into the stored content. The bytes
   * are compared by their block tables' roots; a content stored before roots has its root worked
   * out once (from its table, or from a verified read of its bytes) and kept.
   */
  private async assertSameBytes(existing: ContentRow, digests: Digests): Promise<void> {
    const collision = () =>
      new HttpError('content_collision', 'content with this sha1 but different bytes is already stored');
    if (Number(existing.size) !== digests.size) throw collision();
    if (existing.root) {
      if (existing.root !== digests.root) throw collision();
      return;
    }
    const root = await this.cluster.rootOf(existing).catch(() => {
      throw new HttpError(
        'storage_unavailable',
        'the stored copy of this content cannot be read to compare; retry shortly',
      );
    });
    if (root !== digests.root) throw collision();
    await this.repos.contents.setRoot(existing.id, root);
  }

  private async store(request: IngestRequest): Promise<{ digests: Digests; nodeIds: string[] }> {
    const candidates = this.cluster.placement(request.declaredSha1, request.size);
    const want = Math.min(this.cluster.wantedReplicas(), candidates.length);
    if (want === 0) throw new HttpError('storage_unavailable', 'no storage node is up');
    const key = objectKey(request.declaredSha1);

    const hasher = new DigestHasher();
    let size = 0;
    const source = request.open();
    const known = request.digests;
    const { branches, done } = fanOut(source, want, (chunk) => {
      size += chunk.length;
      if (!known) hasher.update(chunk);
    });
    let digests: Digests | undefined;
    const verified = done.then(() => {
      digests = known ?? hasher.digests();
      if (digests.size !== size)
        throw new Error(`the source gave ${size} bytes, its digests say ${digests.size}`);
      this.check(request, digests);
    });
    verified.catch(() => undefined);
    const first = candidates.slice(0, want);
    const results = await Promise.allSettled(
      first.map((node, i) =>
        node.driver.put(key, branches[i] as Readable, request.size, { beforeCommit: () => verified }),
      ),
    );
    try {
      await verified; // a mismatch or a source failure ends here, with nothing published
    } catch (error) {
      // When every node failed mid-write, fan-out stops the source: that is an outage, not a bug.
      if (!(error instanceof HttpError) && results.every((result) => result.status === 'rejected')) {
        for (const node of first) this.cluster.reportFailure(node.id);
        throw new HttpError('storage_unavailable', 'every storage node failed while storing the content');
      }
      throw error;
    }
    const stored: string[] = [];
    results.forEach((result, i) => {
      const node = first[i];
      if (!node) return;
      if (result.status === 'fulfilled') stored.push(node.id);
      else {
        this.cluster.reportFailure(node.id);
        this.log.warn(
          { node: node.driver.name, err: result.reason },
          'replica write failed; trying another node',
        );
      }
    });
    // A node that failed mid-write is replaced by the next candidate, from a fresh read.
    for (const node of candidates.slice(want)) {
      if (stored.length >= want) break;
      try {
        await node.driver.put(key, request.open(), request.size);
        stored.push(node.id);
      } catch (error) {
        this.cluster.reportFailure(node.id);
        this.log.warn({ node: node.driver.name, err: error }, 'replacement replica write failed');
      }
    }
    if (stored.length === 0 || !digests) {
      throw new HttpError('storage_unavailable', 'no storage node accepted the content');
    }
    return { digests, nodeIds: stored };
  }

  private async register(digests: Digests, nodeIds: string[]): Promise<ContentRow> {
    const now = this.now();
    const row: ContentRow = {
      id: newId(),
      sha1: digests.sha1,
      // Contents named by their SHA-256 before roots existed keep it; new ones need none.
      sha256: '',
      root: digests.root,
      size: digests.size,
      state: 'ready',
      created_at: now,
      unreferenced_since: now,
    };
    try {
      await this.repos.transaction(async (tx) => {
        await tx.contents.insert(row);
        await tx.contentBlocks.save(row.id, digests.blocks);
        await tx.contents.addReplicas(row.id, nodeIds, now);
      });
      return row;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Another upload of the same bytes won the race: a dedupe hit, not a failure. Our copies
      // sit under the same content-addressed keys, so they count as replicas of the winner.
      const winner = await this.repos.contents.findBySha1(digests.sha1);
      if (!winner) throw error;
      await this.assertSameBytes(winner, digests);
      await this.repos.contents.addReplicas(winner.id, nodeIds, now);
      await this.backfillBlocks(winner, digests.blocks);
      return winner;
    }
  }

  /**
   * Content stored before block tables existed gets one from any pass that hashed its bytes in full
   * and matched them against its SHA-1 and root: here, an upload of the same bytes.
   */
  private async backfillBlocks(content: ContentRow, blocks: BlockTable): Promise<void> {
    try {
      const stored = await this.repos.contentBlocks.find(content.id);
      if (!fitsSize(stored, Number(content.size))) await this.repos.contentBlocks.save(content.id, blocks);
    } catch (err) {
      // Reads compute a missing table themselves; a failure here costs time, not correctness.
      this.log.warn({ err, sha1: content.sha1 }, 'could not store block hashes');
    }
  }

  /**
   * Healthy copies first; copies marked `corrupt` after them, because each block is verified
   * and a damaged copy still holds good blocks another copy may have lost.
   */
  async open(content: ContentRow, range?: ByteRange): Promise<Readable> {
    const replicas = await this.repos.contents.replicasOf(content.id);
    const nodes = (state: string) => replicas.filter((r) => r.state === state).map((r) => r.node_id);
    return this.cluster.open(content, nodes('ok'), range, nodes('corrupt'));
  }

  /** Where a download can be served from without the app (see StorageCluster.offload); null: stream it. */
  async offload(content: ContentRow, presign: PresignOptions): Promise<Offload | null> {
    const replicas = (await this.repos.contents.replicasOf(content.id)).filter((r) => r.state === 'ok');
    // A copy was verified when it was written (its bytes hashed on the way), and again by each scrub.
    const verifiedAt = new Map(replicas.map((r) => [r.node_id, Number(r.verified_at ?? r.created_at)]));
    return this.cluster.offload(
      content,
      replicas.map((r) => r.node_id),
      presign,
      verifiedAt,
    );
  }

  async readRange(content: ContentRow, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const stream = await this.open(content, { start: offset, end: offset + length - 1 });
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }
}

async function hashStream(source: Readable): Promise<Digests> {
  const hasher = new DigestHasher();
  for await (const chunk of source) hasher.update(chunk as Buffer);
  return hasher.digests();
}
