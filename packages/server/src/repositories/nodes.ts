import type { Knex } from 'knex';

export interface NodeRow {
  id: string;
  name: string;
  kind: string;
  status: 'up' | 'down';
  draining: boolean | number;
  configured: boolean | number;
  last_heartbeat_at: number | null;
  down_since: number | null;
  used_bytes: number | null;
  free_bytes: number | null;
  total_bytes: number | null;
  created_at: number;
  /** Set while draining: when it began and what the node held then. */
  drain_started_at?: number | null;
  drain_objects?: number | null;
  drain_bytes?: number | null;
}

export class NodesRepository {
  constructor(private readonly db: Knex) {}

  /** Registers a configured node by its (password-free) name and returns its row. */
  async ensure(name: string, kind: string, id: string, now: number): Promise<NodeRow> {
    const existing = await this.db<NodeRow>('nodes').where({ name }).first();
    if (existing) {
      if (!existing.configured)
        await this.db('nodes').where({ id: existing.id }).update({ configured: true });
      return { ...existing, configured: true };
    }
    const row: NodeRow = {
      id,
      name,
      kind,
      status: 'down',
      draining: false,
      configured: true,
      last_heartbeat_at: null,
      down_since: now,
      used_bytes: null,
      free_bytes: null,
      total_bytes: null,
      created_at: now,
    };
    await this.db('nodes').insert(row).onConflict('name').ignore();
    return (await this.db<NodeRow>('nodes').where({ name }).first()) ?? row;
  }

  /** Nodes that left the config stay known (their replicas must be repaired) but unconfigured. */
  async markUnconfiguredExcept(names: string[]): Promise<void> {
    await this.db('nodes').whereNotIn('name', names).update({ configured: false, status: 'down' });
  }

  async get(id: string): Promise<NodeRow | undefined> {
    return this.db<NodeRow>('nodes').where({ id }).first();
  }

  async list(): Promise<NodeRow[]> {
    return this.db<NodeRow>('nodes').orderBy('created_at').orderBy('name');
  }

  async recordBeat(
    id: string,
    now: number,
    usage: { usedBytes: number | null; freeBytes: number | null; totalBytes: number | null },
  ): Promise<void> {
    await this.db('nodes').where({ id }).update({
      status: 'up',
      last_heartbeat_at: now,
      down_since: null,
      used_bytes: usage.usedBytes,
      free_bytes: usage.freeBytes,
      total_bytes: usage.totalBytes,
    });
  }

  async markDown(id: string, now: number): Promise<void> {
    await this.db('nodes').where({ id, status: 'up' }).update({ status: 'down', down_since: now });
  }

  async setDraining(id: string, draining: boolean): Promise<void> {
    await this.db('nodes').where({ id }).update({ draining });
  }

  /**
   * Records what a drain starts with, once: a drain already under way (another instance, or before a
   * restart) keeps its start. Undraining clears it.
   */
  async markDrainStart(id: string, now: number, held: { objects: number; bytes: number }): Promise<void> {
    await this.db('nodes')
      .where({ id })
      .whereNull('drain_started_at')
      .update({ drain_started_at: now, drain_objects: held.objects, drain_bytes: held.bytes });
  }

  async clearDrainStart(id: string): Promise<void> {
    await this.db('nodes')
      .where({ id })
      .update({ drain_started_at: null, drain_objects: null, drain_bytes: null });
  }
}
