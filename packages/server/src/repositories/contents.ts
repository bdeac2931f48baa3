import type { Knex } from 'knex';

export interface ContentRow {
  id: string;
  sha1: string;
  /** The whole-file SHA-256 of contents stored before roots; '' for newer ones. */
  sha256: string;
  /** The root of the 1 MiB block table (services/hashing/blocks.ts); null until worked out for older rows. */
  root: string | null;
  size: number;
  state: 'ready' | 'deleting';
  created_at: number;
  unreferenced_since: number | null;
}

export interface ReplicaRow {
  content_id: string;
  node_id: string;
  state: 'ok' | 'missing' | 'corrupt';
  created_at: number;
  verified_at: number | null;
}

/** Which nodes count for what, as the repair job sees the cluster at one moment. */
export interface RepairScan {
  /** Nodes whose `ok` replicas count toward the wanted copies (live, or down within the grace period). */
  countingIds: string[];
  /** Every configured node; a replica elsewhere sits on a node that left the config. */
  memberIds: string[];
  /** Configured nodes being emptied. */
  drainingIds: string[];
  wanted: number;
  /** Keyset cursor: contents with a larger id. */
  after: string;
  limit: number;
}

export interface ReplicaToVerify {
  content_id: string;
  node_id: string;
  sha1: string;
  size: number;
}

export interface ContentPresence {
  id: string;
  state: ContentRow['state'];
  size: number;
  /** A replica row for the node exists (ok, missing or corrupt). */
  onNode: boolean;
}

export interface ReplicaStateCounts {
  /** Bytes of the healthy (`ok`) replicas: what dfs itself keeps on the node. */
  okBytes: number;
  ok: number;
  missing: number;
  corrupt: number;
}

export class ContentsRepository {
  constructor(private readonly db: Knex) {}

  async findBySha1(sha1: string): Promise<ContentRow | undefined> {
    return this.db<ContentRow>('contents').where({ sha1 }).first();
  }

  async findById(id: string): Promise<ContentRow | undefined> {
    return this.db<ContentRow>('contents').where({ id }).first();
  }

  async findByIds(ids: string[]): Promise<ContentRow[]> {
    const out: ContentRow[] = [];
    for (let i = 0; i < ids.length; i += 500)
      out.push(...(await this.db<ContentRow>('contents').whereIn('id', ids.slice(i, i + 500))));
    return out;
  }

  /** `markReferenced` for many contents at once. */
  async markReferencedMany(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 500)
      await this.db('contents')
        .whereIn('id', ids.slice(i, i + 500))
        .whereNotNull('unreferenced_since')
        .update({ unreferenced_since: null });
  }

  /** Throws a unique violation when another writer registered the same sha1 first. */
  async insert(row: ContentRow): Promise<void> {
    await this.db('contents').insert(row);
  }

  async setRoot(id: string, root: string): Promise<void> {
    await this.db('contents').where({ id }).whereNull('root').update({ root });
  }

  async addReplicas(contentId: string, nodeIds: string[], now: number): Promise<void> {
    if (nodeIds.length === 0) return;
    await this.db('replicas')
      .insert(nodeIds.map((node_id) => ({ content_id: contentId, node_id, state: 'ok', created_at: now })))
      .onConflict(['content_id', 'node_id'])
      .merge({ state: 'ok' });
  }

  async replicasOf(contentId: string): Promise<Array<ReplicaRow & { node_name: string }>> {
    return this.db('replicas')
      .join('nodes', 'nodes.id', 'replicas.node_id')
      .where({ content_id: contentId })
      .select('replicas.*', 'nodes.name as node_name');
  }

  async setReplicaState(contentId: string, nodeId: string, state: ReplicaRow['state'], now: number) {
    await this.db('replicas')
      .where({ content_id: contentId, node_id: nodeId })
      .update({ state, verified_at: now });
  }

  async removeReplica(contentId: string, nodeId: string): Promise<void> {
    await this.db('replicas').where({ content_id: contentId, node_id: nodeId }).delete();
  }

  async markReferenced(contentId: string): Promise<void> {
    await this.db('contents')
      .where({ id: contentId })
      .whereNotNull('unreferenced_since')
      .update({ unreferenced_since: null });
  }

  /** Marks or clears the "no live reference" clock: a file or a file's version holds a content. */
  async refreshReference(contentId: string, now: number): Promise<void> {
    const live =
      (await this.db('user_files').where({ content_id: contentId }).first('id')) ??
      (await this.db('file_versions').where({ content_id: contentId }).first('id'));
    await this.db('contents')
      .where({ id: contentId })
      .update({ unreferenced_since: live ? null : this.db.raw('COALESCE(unreferenced_since, ?)', [now]) });
  }

  /**
   * Contents whose last reference went away before `before`: the collector's work list. A content
   * a backup may list is left out (see `keptByBackup`); `backupsSince` is the oldest `taken_at` of
   * a backup that still keeps what it lists.
   */
  async listCollectable(
    before: number,
    limit: number,
    backupsSince = Number.MAX_SAFE_INTEGER,
  ): Promise<ContentRow[]> {
    return this.db<ContentRow>('contents')
      .whereNotNull('unreferenced_since')
      .andWhere('unreferenced_since', '<=', before)
      .whereNotExists(this.keptByBackup(backupsSince))
      .limit(limit);
  }

  /**
   * The backups that may list the outer `contents` row: taken while it existed and before it lost
   * its last reference (a backup lists every content referenced in its snapshot, and the snapshot
   * is never older than `taken_at`). A backup still running keeps them too, whatever its age. Per
   * content this reads the few rows of `backups`, never a row per content and backup.
   */
  private keptByBackup(backupsSince: number) {
    return this.db('backups')
      .select(this.db.raw('1'))
      .whereIn('backups.status', ['running', 'complete'])
      .andWhere((w) => w.where('backups.status', 'running').orWhere('backups.taken_at', '>=', backupsSince))
      .andWhereRaw('backups.taken_at >= contents.created_at')
      .andWhereRaw('backups.taken_at <= contents.unreferenced_since');
  }

  /** Claims a content for deletion only if it is still unreferenced; returns false if it was revived. */
  async claimForDeletion(id: string, backupsSince = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    const updated = await this.db('contents')
      .where({ id })
      .whereNotNull('unreferenced_since')
      .whereNotExists(this.keptByBackup(backupsSince))
      .whereNotExists(this.db('user_files').where('user_files.content_id', id).select('id'))
      .whereNotExists(this.db('file_versions').where('file_versions.content_id', id).select('id'))
      .whereNotExists(
        this.db('challenges').where('challenges.content_id', id).whereNull('used_at').select('id'),
      )
      .update({ state: 'deleting' });
    return updated === 1;
  }

  async delete(id: string): Promise<void> {
    await this.db('contents').where({ id }).delete();
  }

  /**
   * Ready contents that need the repair job: fewer `ok` replicas on counting nodes than wanted, or
   * any replica that is bad (missing, corrupt), on a node that left the config, or on a draining node.
   */
  async listNeedingRepair(scan: RepairScan): Promise<ContentRow[]> {
    const db = this.db;
    const counted = db('replicas as r')
      .count('*')
      .whereRaw('r.content_id = contents.id')
      .andWhere('r.state', 'ok')
      .whereIn('r.node_id', scan.countingIds);
    const leaving = db('replicas as r')
      .select(db.raw('1'))
      .whereRaw('r.content_id = contents.id')
      .andWhere((w) =>
        w
          .whereNot('r.state', 'ok')
          .orWhereNotIn('r.node_id', scan.memberIds)
          .orWhereIn('r.node_id', scan.drainingIds),
      );
    return db<ContentRow>('contents')
      .where('state', 'ready')
      .andWhere('id', '>', scan.after)
      .andWhere((w) => w.whereRaw('(?) < ?', [counted, scan.wanted]).orWhereExists(leaving))
      .orderBy('id')
      .limit(scan.limit);
  }

  /** Ready contents with fewer `ok` replicas on the given (healthy) nodes than wanted. */
  async countUnderReplicatedOn(nodeIds: string[], wanted: number): Promise<number> {
    const counted = this.db('replicas as r')
      .count('*')
      .whereRaw('r.content_id = contents.id')
      .andWhere('r.state', 'ok')
      .whereIn('r.node_id', nodeIds);
    const row = await this.db('contents')
      .where('state', 'ready')
      .andWhereRaw('(?) < ?', [counted, wanted])
      .count({ n: '*' })
      .first();
    return Number(row?.n ?? 0);
  }

  /**
   * Records a verified copy on a node, only while the content is still `ready`: the row lock keeps
   * the collector from claiming it in between, so a copy never outlives its content unnoticed.
   * Returns false when the content is gone or being deleted (the caller removes its copy).
   */
  async recordReplica(contentId: string, nodeId: string, now: number): Promise<boolean> {
    const mysql = this.db.client.config.client === 'mysql2';
    return this.db.transaction(async (trx) => {
      const query = trx<ContentRow>('contents').where({ id: contentId }).first('state');
      const content = await (mysql ? query.forUpdate() : query);
      if (content?.state !== 'ready') return false;
      await trx('replicas')
        .insert({ content_id: contentId, node_id: nodeId, state: 'ok', created_at: now, verified_at: now })
        .onConflict(['content_id', 'node_id'])
        .merge({ state: 'ok', verified_at: now });
      return true;
    });
  }

  /** Marks the replica of the content with this sha1 on a node (a read found it missing or bad). */
  async markReplicaBySha1(
    sha1: string,
    nodeId: string,
    state: ReplicaRow['state'],
    now: number,
  ): Promise<void> {
    await this.db('replicas')
      .where({ node_id: nodeId })
      .whereIn('content_id', this.db('contents').where({ sha1 }).select('id'))
      .update({ state, verified_at: now });
  }

  /**
   * `ok` replicas on the given nodes last verified (or written) at or before `before`, in key order
   * after the cursor: the scrub job's work list.
   */
  async listReplicasToVerify(options: {
    nodeIds: string[];
    before: number;
    after: { contentId: string; nodeId: string };
    limit: number;
  }): Promise<ReplicaToVerify[]> {
    const { contentId, nodeId } = options.after;
    const rows = await this.db('replicas')
      .join('contents', 'contents.id', 'replicas.content_id')
      .where('replicas.state', 'ok')
      .andWhere('contents.state', 'ready')
      .whereIn('replicas.node_id', options.nodeIds)
      .andWhereRaw('COALESCE(replicas.verified_at, replicas.created_at) <= ?', [options.before])
      .andWhere((w) =>
        w
          .where('replicas.content_id', '>', contentId)
          .orWhere((x) =>
            x.where('replicas.content_id', contentId).andWhere('replicas.node_id', '>', nodeId),
          ),
      )
      .orderBy('replicas.content_id')
      .orderBy('replicas.node_id')
      .limit(options.limit)
      .select<ReplicaToVerify[]>('replicas.content_id', 'replicas.node_id', 'contents.sha1', 'contents.size');
    return rows.map((row) => ({ ...row, size: Number(row.size) }));
  }

  /**
   * For each of the given SHA-1s that has a content row: its id, state, size, and whether a
   * replica row (in any state) puts it on the node. The reconcile job's look-up for listed objects.
   */
  async presenceOn(nodeId: string, sha1s: string[]): Promise<Map<string, ContentPresence>> {
    const out = new Map<string, ContentPresence>();
    if (sha1s.length === 0) return out;
    const rows = await this.db('contents')
      .leftJoin('replicas', (join) =>
        join.on('replicas.content_id', '=', 'contents.id').andOnVal('replicas.node_id', '=', nodeId),
      )
      .whereIn('contents.sha1', sha1s)
      .select<Array<Pick<ContentRow, 'id' | 'sha1' | 'state' | 'size'> & { replica_node: string | null }>>(
        'contents.id',
        'contents.sha1',
        'contents.state',
        'contents.size',
        'replicas.node_id as replica_node',
      );
    for (const row of rows) {
      out.set(row.sha1, {
        id: row.id,
        state: row.state,
        size: Number(row.size),
        onNode: row.replica_node !== null,
      });
    }
    return out;
  }

  async markVerified(contentId: string, nodeId: string, now: number): Promise<void> {
    await this.db('replicas')
      .where({ content_id: contentId, node_id: nodeId, state: 'ok' })
      .update({ verified_at: now });
  }

  /** Replica rows per node and state, for the nodes page. */
  /** Healthy replicas on one node and their bytes: what a drain still has to move. */
  async heldBy(nodeId: string): Promise<{ objects: number; bytes: number }> {
    const row = await this.db('replicas')
      .join('contents', 'contents.id', 'replicas.content_id')
      .where({ 'replicas.node_id': nodeId, 'replicas.state': 'ok' })
      .first<{ n: number | string | null; bytes: number | string | null }>(
        this.db.raw('count(*) as n'),
        this.db.raw('sum(contents.size) as bytes'),
      );
    return { objects: Number(row?.n ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  async replicaStatesByNode(): Promise<Map<string, ReplicaStateCounts>> {
    const rows = await this.db('replicas')
      .join('contents', 'contents.id', 'replicas.content_id')
      .groupBy('replicas.node_id', 'replicas.state')
      .select<Array<{ node_id: string; state: string; n: number | string; bytes: number | string | null }>>(
        'replicas.node_id as node_id',
        'replicas.state as state',
        this.db.raw('count(*) as n'),
        this.db.raw('sum(contents.size) as bytes'),
      );
    const out = new Map<string, ReplicaStateCounts>();
    for (const row of rows) {
      const counts = out.get(row.node_id) ?? { ok: 0, missing: 0, corrupt: 0, okBytes: 0 };
      if (row.state === 'ok' || row.state === 'missing' || row.state === 'corrupt') {
        counts[row.state] += Number(row.n);
      }
      if (row.state === 'ok') counts.okBytes += Number(row.bytes ?? 0);
      out.set(row.node_id, counts);
    }
    return out;
  }
}
