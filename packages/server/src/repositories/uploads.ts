import type { Knex } from 'knex';
import { isUniqueViolation } from '../db/knex.ts';

export interface UploadRow {
  id: string;
  user_id: string;
  name: string;
  parent_id: string;
  size: number;
  /** null: a speculative upload, whose hash `complete` names. */
  sha1: string | null;
  chunk_size: number;
  chunk_count: number;
  status: 'open' | 'completing' | 'complete' | 'failed';
  file_id: string | null;
  created_at: number;
  expires_at: number;
  /** Bumped whenever the upload's whole node set is replaced (its stored chunks are then lost). */
  node_epoch: number;
  /** While `completing`: until when the running `complete` holds it. */
  lease_until: number | null;
  /** The source file's modification time (epoch ms) for the file the upload makes. */
  mtime?: number | null;
  /** What completing does when the name is taken (null: `rename`). */
  on_conflict?: 'replace' | 'fail' | null;
  /** The upload request (share link) that opened the session; only that link may touch it. */
  share_token?: string | null;
  /** The name the uploader typed on the link's page, for the history of the file it makes. */
  uploader?: string | null;
}

export interface ChunkRow {
  upload_id: string;
  idx: number;
  size: number;
  md5: string;
  /** What a re-send must match: bytes once stored are never replaced by others. */
  sha256: string;
  state: 'stored' | 'writing';
  claimed_at: number | null;
  created_at: number;
}

export interface UploadNodeRow {
  upload_id: string;
  node_id: string;
  epoch: number;
  state: 'active' | 'dropped';
}

/** What may happen with a chunk about to be written. */
export type ChunkClaim =
  /** Write it (first writer, a stale writer's successor, or the same bytes in parallel). */
  | 'write'
  /** Already stored with these bytes: nothing to do. */
  | 'same'
  /** Already stored with other bytes. */
  | 'conflict'
  /** Other bytes are being written right now. */
  | 'busy';

export class UploadsRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: UploadRow): Promise<void> {
    await this.db('uploads').insert(row);
  }

  async find(userId: string, id: string): Promise<UploadRow | undefined> {
    return this.db<UploadRow>('uploads').where({ user_id: userId, id }).first();
  }

  /** A session only as the link that opened it sees it. */
  async findForShare(shareToken: string, id: string): Promise<UploadRow | undefined> {
    return this.db<UploadRow>('uploads').where({ share_token: shareToken, id }).first();
  }

  /**
   * The bytes a link's unfinished sessions hold of its limit (`except`: one session left out, by
   * id). With `lock`, inside a transaction, on MySQL a locking read: it sees sessions committed
   * since the transaction began and keeps new ones of this link out until the caller commits,
   * so two sessions cannot take the same bytes (SQLite runs one transaction at a time anyway).
   */
  async reservedForShare(
    shareToken: string,
    now: number,
    options: { except?: string; lock?: boolean } = {},
  ): Promise<number> {
    const query = this.db('uploads')
      .where({ share_token: shareToken })
      .andWhere((q) =>
        q
          .where({ status: 'completing' })
          .orWhere((q2) => q2.where({ status: 'open' }).andWhere('expires_at', '>', now)),
      )
      .select('size');
    if (options.except !== undefined) query.whereNot({ id: options.except });
    if (options.lock && this.db.client.config.client === 'mysql2') query.forUpdate();
    const rows = (await query) as Array<{ size: number | string }>;
    return rows.reduce((sum, row) => sum + Number(row.size), 0);
  }

  /**
   * The user's open session of the same content bound for the same folder (`parentId`: '' for the
   * root). Another folder may be another owner's tree: resuming would put the file there.
   */
  async findResumable(
    userId: string,
    sha1: string,
    size: number,
    now: number,
    parentId: string,
  ): Promise<UploadRow | undefined> {
    // A session opened through an upload request is its link's, not the owner's to take over.
    return this.db<UploadRow>('uploads')
      .where({ user_id: userId, sha1, size, status: 'open', parent_id: parentId })
      .whereNull('share_token')
      .andWhere('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .first();
  }

  /**
   * A user's own unfinished uploads. Those opened through their upload requests are counted per
   * link instead (countOpenForShare), so visitors cannot use up the owner's allowance.
   */
  async countOpen(userId: string, now: number): Promise<number> {
    const row = await this.db('uploads')
      .where({ user_id: userId })
      .whereNull('share_token')
      .whereIn('status', ['open', 'completing'])
      .andWhere('expires_at', '>', now)
      .count({ n: '*' })
      .first();
    return Number(row?.n ?? 0);
  }

  /** A link's unfinished sessions. */
  async openForShare(shareToken: string, now: number): Promise<UploadRow[]> {
    return this.db<UploadRow>('uploads')
      .where({ share_token: shareToken })
      .whereIn('status', ['open', 'completing'])
      .andWhere('expires_at', '>', now);
  }

  /** Moves an upload between states only from the expected one: the guard against double completes. */
  async transition(
    id: string,
    from: UploadRow['status'],
    to: UploadRow['status'],
    patch: Partial<UploadRow> = {},
  ) {
    const n = await this.db('uploads')
      .where({ id, status: from })
      .update({ status: to, ...patch });
    return n === 1;
  }

  /**
   * Takes the upload for a `complete`: from `open`, or from a `completing` whose holder let its
   * lease run out (it crashed). A live holder keeps renewing, so its work is never taken over.
   */
  async beginComplete(id: string, now: number, leaseUntil: number): Promise<boolean> {
    const n = await this.db('uploads')
      .where({ id })
      .andWhere((q) =>
        q
          .where({ status: 'open' })
          .orWhere((q2) => q2.where({ status: 'completing' }).andWhere('lease_until', '<', now)),
      )
      .update({ status: 'completing', lease_until: leaseUntil });
    return n === 1;
  }

  async renewLease(id: string, leaseUntil: number): Promise<void> {
    await this.db('uploads').where({ id, status: 'completing' }).update({ lease_until: leaseUntil });
  }

  async setOnConflict(id: string, onConflict: 'rename' | 'replace' | 'fail'): Promise<void> {
    await this.db('uploads')
      .where({ id })
      .update({ on_conflict: onConflict === 'rename' ? null : onConflict });
  }

  async setMtime(id: string, mtime: number): Promise<void> {
    await this.db('uploads').where({ id }).update({ mtime });
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    await this.db('uploads').where({ id }).update({ expires_at: expiresAt });
  }

  async delete(id: string): Promise<void> {
    await this.db('uploads').where({ id }).delete();
  }

  /** Deletes the upload unless a `complete` holds it; false when one does. */
  async deleteUnlessCompleting(id: string, now: number): Promise<boolean> {
    const n = await this.db('uploads')
      .where({ id })
      .andWhere((q) => q.whereNot({ status: 'completing' }).orWhere('lease_until', '<', now))
      .delete();
    return n === 1 || (await this.db('uploads').where({ id }).first('id')) === undefined;
  }

  /**
   * Decides whether chunk `row.idx` may be written with these bytes (`row.sha256`). A writer
   * silent for `staleBefore` is presumed dead and its claim is taken over; its node writes time
   * out well before that.
   */
  async claimChunk(
    row: Omit<ChunkRow, 'state' | 'claimed_at'>,
    now: number,
    staleBefore: number,
  ): Promise<ChunkClaim> {
    try {
      await this.db('upload_chunks').insert({ ...row, state: 'writing', claimed_at: now });
      return 'write';
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    const current = await this.db<ChunkRow>('upload_chunks')
      .where({ upload_id: row.upload_id, idx: row.idx })
      .first();
    if (!current) return this.claimChunk(row, now, staleBefore);
    if (current.state === 'stored') return current.sha256 === row.sha256 ? 'same' : 'conflict';
    if (current.sha256 === row.sha256) return 'write';
    if (Number(current.claimed_at ?? 0) >= staleBefore) return 'busy';
    const n = await this.db('upload_chunks')
      .where({ upload_id: row.upload_id, idx: row.idx, state: 'writing', sha256: current.sha256 })
      .update({ sha256: row.sha256, md5: row.md5, size: row.size, claimed_at: now });
    return n === 1 ? 'write' : 'busy';
  }

  /**
   * Marks a written chunk stored — only if its bytes are still the claimed ones and the upload's
   * node set is still the one it was written to (a replacement forgets every stored chunk).
   */
  async markStored(uploadId: string, idx: number, sha256: string, epoch: number): Promise<boolean> {
    const n = await this.db('upload_chunks')
      .where({ upload_id: uploadId, idx, sha256 })
      .whereExists((q) =>
        q.select(this.db.raw('1')).from('uploads').where({ id: uploadId, node_epoch: epoch }),
      )
      .update({ state: 'stored', claimed_at: null });
    return n === 1;
  }

  /** Gives up a claim after a failed write, so a retry does not wait for it to go stale. */
  async releaseClaim(uploadId: string, idx: number, sha256: string): Promise<void> {
    await this.db('upload_chunks').where({ upload_id: uploadId, idx, sha256, state: 'writing' }).delete();
  }

  /** The chunks that are stored (acknowledged), in index order. */
  async chunks(uploadId: string): Promise<ChunkRow[]> {
    return this.db<ChunkRow>('upload_chunks').where({ upload_id: uploadId, state: 'stored' }).orderBy('idx');
  }

  async nodes(uploadId: string): Promise<UploadNodeRow[]> {
    return this.db<UploadNodeRow>('upload_nodes').where({ upload_id: uploadId });
  }

  /** Records the nodes an upload writes to; a concurrent writer's identical rows are kept. */
  async addNodes(uploadId: string, epoch: number, nodeIds: string[]): Promise<void> {
    if (nodeIds.length === 0) return;
    await this.db('upload_nodes')
      .insert(nodeIds.map((node_id) => ({ upload_id: uploadId, node_id, epoch, state: 'active' })))
      .onConflict(['upload_id', 'node_id'])
      .ignore();
  }

  /** A node that failed a write leaves the upload; the chunks stay on the others. */
  async dropNode(uploadId: string, nodeId: string): Promise<void> {
    await this.db('upload_nodes')
      .where({ upload_id: uploadId, node_id: nodeId })
      .update({ state: 'dropped' });
  }

  /**
   * Every node of the upload failed: start over on `nodeIds`. The stored chunks were only on the
   * lost nodes, so they are forgotten and the client is told to send them again. False when
   * another request replaced the set first.
   */
  async replaceNodes(uploadId: string, fromEpoch: number, nodeIds: string[]): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const n = await trx('uploads')
        .where({ id: uploadId, node_epoch: fromEpoch })
        .update({ node_epoch: fromEpoch + 1 });
      if (n !== 1) return false;
      // Claims in flight stay: their writers check the epoch before they mark anything stored.
      await trx('upload_chunks').where({ upload_id: uploadId, state: 'stored' }).delete();
      await trx('upload_nodes').where({ upload_id: uploadId }).update({ state: 'dropped' });
      await trx('upload_nodes')
        .insert(
          nodeIds.map((node_id) => ({ upload_id: uploadId, node_id, epoch: fromEpoch + 1, state: 'active' })),
        )
        .onConflict(['upload_id', 'node_id'])
        .merge(['epoch', 'state']);
      return true;
    });
  }

  async nodeEpoch(uploadId: string): Promise<number | undefined> {
    const row = await this.db('uploads').where({ id: uploadId }).first('node_epoch');
    return row ? Number(row.node_epoch) : undefined;
  }

  async listExpired(now: number, limit: number): Promise<UploadRow[]> {
    return this.db<UploadRow>('uploads')
      .where('expires_at', '<=', now)
      .whereNot('status', 'complete')
      .limit(limit);
  }

  /** Completed uploads are kept only so a repeated `complete` answers the same; not forever. */
  async deleteCompletedBefore(before: number): Promise<number> {
    return this.db('uploads').where({ status: 'complete' }).andWhere('expires_at', '<=', before).delete();
  }

  /**
   * Bytes promised to each node and not on its disk yet: for every unfinished, unexpired upload,
   * its declared size, on each node it writes to, less the chunks stored before `measuredAt` (the
   * heartbeat's free space already counts those).
   */
  async reservedByNode(now: number, measuredAt: number): Promise<Map<string, number>> {
    const written = this.db('upload_chunks as c')
      .sum('c.size')
      .whereRaw('c.upload_id = u.id')
      .andWhere('c.state', 'stored')
      .andWhere('c.created_at', '<', measuredAt);
    const rows = (await this.db('uploads as u')
      .join('upload_nodes as n', 'n.upload_id', 'u.id')
      .whereIn('u.status', ['open', 'completing'])
      .andWhere('u.expires_at', '>', now)
      .andWhere('n.state', 'active')
      .groupBy('n.node_id')
      .select('n.node_id')
      .sum({ bytes: this.db.raw('u.size - coalesce((?), 0)', [written]) })) as {
      node_id: string;
      bytes: unknown;
    }[];
    return new Map(rows.map((r) => [r.node_id, Math.max(0, Number(r.bytes ?? 0))]));
  }

  /** Which of `ids` are uploads still on record. */
  async existingIds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    return new Set(await this.db('uploads').whereIn('id', ids).pluck('id'));
  }
}
