import type { Knex } from 'knex';

export interface DavPropertyRow {
  file_id: string;
  ns: string;
  name: string;
  value: string;
}

/** What the table holds beside a property: whose it is and its size, so bounds are one read. */
interface StoredPropertyRow extends DavPropertyRow {
  user_id: string;
  bytes: number;
}

const COLUMNS = ['file_id', 'ns', 'name', 'value'] as const;
/** Ids per `IN (…)` list, well under every database's bound on parameters. */
const BATCH = 500;

export class DavPropertiesRepository {
  constructor(private readonly db: Knex) {}

  async list(fileId: string): Promise<DavPropertyRow[]> {
    return this.db<DavPropertyRow>('dav_properties')
      .select(...COLUMNS)
      .where({ file_id: fileId })
      .orderBy(['ns', 'name']);
  }

  /** The properties of many entries at once (a folder's members), by entry id. */
  async listMany(fileIds: string[]): Promise<Map<string, DavPropertyRow[]>> {
    const out = new Map<string, DavPropertyRow[]>();
    for (let i = 0; i < fileIds.length; i += BATCH) {
      const rows = await this.db<DavPropertyRow>('dav_properties')
        .select(...COLUMNS)
        .whereIn('file_id', fileIds.slice(i, i + BATCH))
        .orderBy(['file_id', 'ns', 'name']);
      for (const row of rows) {
        const list = out.get(row.file_id);
        if (list) list.push(row);
        else out.set(row.file_id, [row]);
      }
    }
    return out;
  }

  /** How many properties an entry has and their bytes. */
  async entryUsage(fileId: string): Promise<{ count: number; bytes: number }> {
    const row = (await this.db('dav_properties')
      .where({ file_id: fileId })
      .count({ count: '*' })
      .sum({ bytes: 'bytes' })
      .first()) as { count: number | string; bytes: number | string | null } | undefined;
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /** Bytes of properties over all of the user's entries. */
  async userBytes(userId: string): Promise<number> {
    const row = (await this.db('dav_properties')
      .where({ user_id: userId })
      .sum({ bytes: 'bytes' })
      .first()) as { bytes: number | string | null } | undefined;
    return Number(row?.bytes ?? 0);
  }

  /** Bytes of properties on the given entries (what copying them would add). */
  async bytesOf(fileIds: string[]): Promise<number> {
    let total = 0;
    for (let i = 0; i < fileIds.length; i += BATCH) {
      const row = (await this.db('dav_properties')
        .whereIn('file_id', fileIds.slice(i, i + BATCH))
        .sum({ bytes: 'bytes' })
        .first()) as { bytes: number | string | null } | undefined;
      total += Number(row?.bytes ?? 0);
    }
    return total;
  }

  async set(userId: string, row: DavPropertyRow, bytes: number): Promise<void> {
    const stored: StoredPropertyRow = { ...row, user_id: userId, bytes };
    await this.db('dav_properties')
      .insert(stored)
      .onConflict(['file_id', 'ns', 'name'])
      .merge(['value', 'bytes']);
  }

  async remove(fileId: string, ns: string, name: string): Promise<void> {
    await this.db('dav_properties').where({ file_id: fileId, ns, name }).delete();
  }

  /** A copy's properties are the original's. */
  async copy(fromId: string, toId: string): Promise<void> {
    const rows = await this.db<StoredPropertyRow>('dav_properties').where({ file_id: fromId });
    if (rows.length > 0) await this.db('dav_properties').insert(rows.map((r) => ({ ...r, file_id: toId })));
  }
}
