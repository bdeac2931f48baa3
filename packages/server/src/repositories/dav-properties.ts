import type { Knex } from 'knex';

export interface DavPropertyRow {
  file_id: string;
  ns: string;
  name: string;
  value: string;
}

export class DavPropertiesRepository {
  constructor(private readonly db: Knex) {}

  async list(fileId: string): Promise<DavPropertyRow[]> {
    return this.db<DavPropertyRow>('dav_properties').where({ file_id: fileId }).orderBy(['ns', 'name']);
  }

  async set(row: DavPropertyRow): Promise<void> {
    await this.db('dav_properties').insert(row).onConflict(['file_id', 'ns', 'name']).merge(['value']);
  }

  async remove(fileId: string, ns: string, name: string): Promise<void> {
    await this.db('dav_properties').where({ file_id: fileId, ns, name }).delete();
  }

  /** A copy's properties are the original's. */
  async copy(fromId: string, toId: string): Promise<void> {
    const rows = await this.list(fromId);
    if (rows.length > 0) await this.db('dav_properties').insert(rows.map((r) => ({ ...r, file_id: toId })));
  }
}
