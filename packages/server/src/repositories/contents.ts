import type { Knex } from 'knex';

export interface ContentRow {
  id: string;
  sha1: string;
  sha256: string;
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

export class ContentsRepository {
  constructor(private readonly db: Knex) {}

  async findBySha1(sha1: string): Promise<ContentRow | undefined> {
    return this.db<ContentRow>('contents').where({ sha1 }).first();
  }

  async findById(id: string): Promise<ContentRow | undefined> {
    return this.db<ContentRow>('contents').where({ id }).first();
  }

  /** Throws a unique violation when another writer registered the same sha1 first. */
  async insert(row: ContentRow): Promise<void> {
    await this.db('contents').insert(row);
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

  /** Marks or clears the "no live reference" clock from the user_files side. */
  async refreshReference(contentId: string, now: number): Promise<void> {
    const live = await this.db('user_files').where({ content_id: contentId }).first('id');
    await this.db('contents')
      .where({ id: contentId })
      .update({ unreferenced_since: live ? null : this.db.raw('COALESCE(unreferenced_since, ?)', [now]) });
  }

  /** Contents whose last reference went away before `before`: the collector's work list. */
  async listCollectable(before: number, limit: number): Promise<ContentRow[]> {
    return this.db<ContentRow>('contents')
      .whereNotNull('unreferenced_since')
      .andWhere('unreferenced_since', '<=', before)
      .limit(limit);
  }

  /** Claims a content for deletion only if it is still unreferenced; returns false if it was revived. */
  async claimForDeletion(id: string): Promise<boolean> {
    const updated = await this.db('contents')
      .where({ id })
      .whereNotNull('unreferenced_since')
      .whereNotExists(this.db('user_files').where('user_files.content_id', id).select('id'))
      .whereNotExists(
        this.db('challenges').where('challenges.content_id', id).whereNull('used_at').select('id'),
      )
      .update({ state: 'deleting' });
    return updated === 1;
  }

  async delete(id: string): Promise<void> {
    await this.db('contents').where({ id }).delete();
  }

  /** Ready contents with fewer healthy replicas on live nodes than wanted. */
  async countUnderReplicated(wanted: number): Promise<number> {
    const row = await this.db('contents')
      .where('state', 'ready')
      .andWhereRaw(
        `(select count(*) from replicas join nodes on nodes.id = replicas.node_id
          where replicas.content_id = contents.id and replicas.state = 'ok' and nodes.status = 'up') < ?`,
        [wanted],
      )
      .count({ n: '*' })
      .first();
    return Number(row?.n ?? 0);
  }

  async countsByNode(): Promise<Map<string, number>> {
    const rows = await this.db('replicas')
      .where({ state: 'ok' })
      .groupBy('node_id')
      .select<Array<{ node_id: string; n: number | string }>>('node_id', this.db.raw('count(*) as n'));
    return new Map(rows.map((r) => [r.node_id, Number(r.n)]));
  }
}
