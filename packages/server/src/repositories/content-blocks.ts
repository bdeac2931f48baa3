import type { Knex } from 'knex';
import type { BlockTable } from '../services/hashing/blocks.ts';

interface ContentBlocksRow {
  content_id: string;
  block_size: number;
  hashes: Buffer;
}

/** Per-block SHA-256 digests of a content, one row per content (see services/hashing/blocks.ts). */
export class ContentBlocksRepository {
  constructor(private readonly db: Knex) {}

  async find(contentId: string): Promise<BlockTable | undefined> {
    const row = await this.db<ContentBlocksRow>('content_blocks').where({ content_id: contentId }).first();
    if (!row) return undefined;
    return { blockSize: Number(row.block_size), hashes: Buffer.from(row.hashes) };
  }

  /**
   * Stores (or replaces) a content's table. The digests come from bytes that matched the content's
   * SHA-1, so two writers racing for the same content write the same table.
   */
  async save(contentId: string, table: BlockTable): Promise<void> {
    await this.db('content_blocks')
      .insert({ content_id: contentId, block_size: table.blockSize, hashes: table.hashes })
      .onConflict('content_id')
      .merge(['block_size', 'hashes']);
  }
}
