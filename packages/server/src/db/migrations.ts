import type { Knex } from 'knex';
import { numericFileId } from '../util/file-ids.ts';

import { binaryCollation, createTable, ID, type Migration } from './migration-kit.ts';
import { sharing } from './migrations/028-sharing.ts';
import { identities } from './migrations/029-identities.ts';
import { passkeys } from './migrations/030-passkeys.ts';
import { sessionDetails } from './migrations/031-session-details.ts';
import { dropUploads } from './migrations/032-drop-uploads.ts';
import { usageCounters } from './migrations/033-usage-counters.ts';
import { nameGramsMigration } from './migrations/034-name-grams.ts';
import { dropUsageIndex } from './migrations/035-drop-usage-index.ts';
import { contentRoots } from './migrations/036-content-roots.ts';
import { auditLog } from './migrations/037-audit-log.ts';
import { backupsMigration } from './migrations/038-backups.ts';
import { statsSeries } from './migrations/039-stats-series.ts';

const initial: Migration = {
  name: '001_initial',
  async up(db) {
    const table = (name: string, build: (t: Knex.CreateTableBuilder) => void) => createTable(db, name, build);

    await table('users', (t) => {
      t.string('id', ID).primary();
      binaryCollation(db, t.string('username', 64).notNullable().unique());
      t.string('password_hash', 255).notNullable();
      t.boolean('is_admin').notNullable().defaultTo(false);
      t.bigInteger('created_at').notNullable();
    });

    await table('sessions', (t) => {
      t.string('id', ID).primary();
      t.string('token_hash', 64).notNullable().unique();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.bigInteger('created_at').notNullable();
      t.bigInteger('last_seen_at').notNullable();
      t.bigInteger('expires_at').notNullable().index();
    });

    await table('nodes', (t) => {
      t.string('id', ID).primary();
      t.string('name', 255).notNullable().unique();
      t.string('kind', 16).notNullable();
      t.string('status', 16).notNullable().defaultTo('down');
      t.boolean('draining').notNullable().defaultTo(false);
      t.boolean('configured').notNullable().defaultTo(true);
      t.bigInteger('last_heartbeat_at').nullable();
      t.bigInteger('down_since').nullable();
      t.bigInteger('used_bytes').nullable();
      t.bigInteger('free_bytes').nullable();
      t.bigInteger('total_bytes').nullable();
      t.bigInteger('created_at').notNullable();
    });

    await table('contents', (t) => {
      t.string('id', ID).primary();
      t.string('sha1', 40).notNullable().unique();
      t.string('sha256', 64).notNullable();
      t.bigInteger('size').notNullable();
      // ready: bytes verified on the nodes; deleting: the collector owns it now.
      t.string('state', 16).notNullable().defaultTo('ready');
      t.bigInteger('created_at').notNullable();
      // Set when the last live reference went away; the collector waits out the grace period.
      t.bigInteger('unreferenced_since').nullable().index();
    });

    await table('replicas', (t) => {
      t.string('content_id', ID).notNullable().references('contents.id').onDelete('CASCADE');
      t.string('node_id', ID).notNullable().references('nodes.id').onDelete('CASCADE');
      // ok | missing | corrupt
      t.string('state', 16).notNullable().defaultTo('ok');
      t.bigInteger('created_at').notNullable();
      t.bigInteger('verified_at').nullable();
      t.primary(['content_id', 'node_id']);
      t.index(['node_id', 'state']);
    });

    await table('user_files', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      // '' is the root: a NULL would make the unique index below ignore root entries.
      t.string('parent_id', ID).notNullable().defaultTo('');
      t.string('kind', 8).notNullable();
      binaryCollation(db, t.string('name', 255).notNullable());
      // The name while the entry is live, NULL in the trash: unique live names per folder
      // without blocking a trashed namesake (both databases treat NULLs as distinct).
      binaryCollation(db, t.string('live_name', 255).nullable());
      t.string('content_id', ID).nullable().references('contents.id');
      t.bigInteger('size').notNullable().defaultTo(0);
      t.string('mime', 255).nullable();
      t.string('status', 8).notNullable().defaultTo('active');
      // The entry the user put in the trash (itself, or the folder it went with).
      t.string('trash_root_id', ID).nullable();
      t.bigInteger('trashed_at').nullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('updated_at').notNullable();
      t.unique(['user_id', 'parent_id', 'live_name'], { indexName: 'user_files_live_name_unique' });
      // A folder lists folders first, then files, each sorted by one column: one index per sort
      // column lets both halves be read in index order (forwards or backwards), not filesorted.
      for (const column of ['name', 'size', 'created_at', 'updated_at']) {
        t.index(['user_id', 'parent_id', 'status', 'kind', column], `user_files_folder_${column}`);
      }
      t.index(['user_id', 'status', 'created_at'], 'user_files_recent');
      t.index(['user_id', 'trash_root_id'], 'user_files_trash');
      t.index(['content_id', 'status'], 'user_files_content');
    });

    await table('uploads', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      binaryCollation(db, t.string('name', 255).notNullable());
      t.string('parent_id', ID).notNullable().defaultTo('');
      t.bigInteger('size').notNullable();
      t.string('sha1', 40).notNullable();
      t.integer('chunk_size').notNullable();
      t.integer('chunk_count').notNullable();
      // open | completing | complete | failed
      t.string('status', 16).notNullable().defaultTo('open');
      t.string('file_id', ID).nullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('expires_at').notNullable().index();
      t.index(['user_id', 'sha1', 'size']);
    });

    await table('upload_chunks', (t) => {
      t.string('upload_id', ID).notNullable().references('uploads.id').onDelete('CASCADE');
      t.integer('idx').notNullable();
      t.integer('size').notNullable();
      t.string('md5', 32).notNullable();
      t.bigInteger('created_at').notNullable();
      t.primary(['upload_id', 'idx']);
    });

    await table('challenges', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('content_id', ID).notNullable().references('contents.id').onDelete('CASCADE');
      t.string('nonce', 64).notNullable();
      t.bigInteger('offset').notNullable();
      t.bigInteger('length').notNullable();
      t.bigInteger('expires_at').notNullable().index();
      t.bigInteger('used_at').nullable();
    });

    await table('shares', (t) => {
      t.string('token', 64).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('file_id', ID).notNullable().references('user_files.id').onDelete('CASCADE');
      t.string('password_hash', 255).nullable();
      t.bigInteger('expires_at').nullable();
      t.integer('max_downloads').nullable();
      t.integer('downloads').notNullable().defaultTo(0);
      t.bigInteger('revoked_at').nullable();
      t.bigInteger('created_at').notNullable();
      t.index(['user_id', 'created_at']);
    });

    // One row per background job: the instance that holds an unexpired lease runs it.
    await table('job_leases', (t) => {
      t.string('name', 64).primary();
      t.string('owner', 64).nullable();
      t.bigInteger('lease_until').notNullable().defaultTo(0);
      t.bigInteger('last_run_at').nullable();
    });
  },
  async down(db) {
    for (const name of [
      'job_leases',
      'shares',
      'challenges',
      'upload_chunks',
      'uploads',
      'user_files',
      'replicas',
      'contents',
      'nodes',
      'sessions',
      'users',
    ]) {
      await db.schema.dropTableIfExists(name);
    }
  },
};

/**
 * Per-user bounds: `quota_bytes` overrides DFS_DEFAULT_QUOTA_BYTES (NULL: the default applies),
 * `invites` holds single-use sign-up codes by hash, and `(user_id, size)` lets a user's usage
 * (a SUM and a COUNT over their entries) be read from the index alone.
 */
const userLimits: Migration = {
  name: '003_user_limits',
  async up(db) {
    const mysql = db.client.config.client === 'mysql2';
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('quota_bytes').nullable();
    });
    await db.schema.alterTable('user_files', (t) => {
      t.index(['user_id', 'size'], 'user_files_usage');
    });
    await db.schema.createTable('invites', (t) => {
      if (mysql) {
        t.engine('InnoDB');
        t.charset('utf8mb4');
        t.collate('utf8mb4_bin');
      }
      t.string('id', ID).primary();
      t.string('code_hash', 64).notNullable().unique();
      t.string('created_by', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.bigInteger('created_at').notNullable();
      t.bigInteger('expires_at').notNullable();
      t.bigInteger('used_at').nullable();
      t.string('used_by', ID).nullable().references('users.id').onDelete('SET NULL');
      t.index(['created_at']);
    });
  },
  async down(db) {
    await db.schema.dropTableIfExists('invites');
    await db.schema.alterTable('user_files', (t) => {
      t.dropIndex(['user_id', 'size'], 'user_files_usage');
    });
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('quota_bytes');
    });
  },
};

/**
 * Share links count whole copies delivered, not requests: `bytes_served` is the bytes reserved by
 * downloads through the link (a cut-off transfer gives back what it did not send), and
 * `downloads` is the copies those bytes amount to.
 */
const shareBytes: Migration = {
  name: '004_share_bytes',
  async up(db) {
    await db.schema.alterTable('shares', (t) => {
      t.bigInteger('bytes_served').notNullable().defaultTo(0);
    });
  },
  async down(db) {
    await db.schema.alterTable('shares', (t) => {
      t.dropColumn('bytes_served');
    });
  },
};

/**
 * Per-block SHA-256 digests of each content (services/hashing/blocks.ts), so a range read verifies
 * the blocks it serves. On MySQL the digests need a LONGBLOB: BLOB stops at 64 KiB (2048 blocks),
 * while a 64 GiB file has 65536 blocks, 2 MiB of digests.
 */
const contentBlocks: Migration = {
  name: '002_content_blocks',
  async up(db) {
    const mysql = db.client.config.client === 'mysql2';
    await db.schema.createTable('content_blocks', (t) => {
      if (mysql) {
        t.engine('InnoDB');
        t.charset('utf8mb4');
        t.collate('utf8mb4_bin');
      }
      t.string('content_id', ID).primary().references('contents.id').onDelete('CASCADE');
      t.integer('block_size').notNullable();
      if (mysql) t.specificType('hashes', 'LONGBLOB').notNullable();
      else t.binary('hashes').notNullable();
    });
  },
  async down(db) {
    await db.schema.dropTableIfExists('content_blocks');
  },
};

/**
 * Data path v2: chunks go to the upload's nodes as they arrive (part files), so an upload
 * records its nodes (`upload_nodes`; `node_epoch` counts replacements of the whole set), each
 * chunk's SHA-256 (a re-send must carry the same bytes) and whether it is stored or still being
 * written, and `complete` holds a lease instead of a process-local flag. A speculative upload has
 * no sha1 until `complete`. Chunks of v1 uploads sit in the app's local staging, not on nodes:
 * they are forgotten here, so clients re-send them (the sessions themselves survive).
 */
const uploadV2: Migration = {
  name: '005_upload_v2',
  async up(db) {
    const mysql = db.client.config.client === 'mysql2';
    await db('upload_chunks').delete();
    await db('uploads').where({ status: 'completing' }).update({ status: 'open' });
    await db.schema.alterTable('uploads', (t) => {
      t.string('sha1', 40).nullable().alter();
      t.integer('node_epoch').notNullable().defaultTo(0);
      t.bigInteger('lease_until').nullable();
    });
    await db.schema.alterTable('upload_chunks', (t) => {
      t.string('sha256', 64).notNullable().defaultTo('');
      // stored | writing
      t.string('state', 8).notNullable().defaultTo('stored');
      t.bigInteger('claimed_at').nullable();
    });
    await db.schema.createTable('upload_nodes', (t) => {
      if (mysql) {
        t.engine('InnoDB');
        t.charset('utf8mb4');
        t.collate('utf8mb4_bin');
      }
      t.string('upload_id', ID).notNullable().references('uploads.id').onDelete('CASCADE');
      t.string('node_id', ID).notNullable();
      t.integer('epoch').notNullable();
      // active | dropped
      t.string('state', 8).notNullable().defaultTo('active');
      t.primary(['upload_id', 'node_id']);
    });
  },
  async down(db) {
    await db.schema.dropTableIfExists('upload_nodes');
    await db.schema.alterTable('upload_chunks', (t) => {
      t.dropColumn('sha256');
      t.dropColumn('state');
      t.dropColumn('claimed_at');
    });
    await db.schema.alterTable('uploads', (t) => {
      t.dropColumn('node_epoch');
      t.dropColumn('lease_until');
    });
  },
};

/**
 * What a drain had to move when it began, so its progress (moved, rate, ETA) survives restarts and
 * reads the same on every instance: what is left is counted from the replica rows.
 */
const drainProgress: Migration = {
  name: '006_drain_progress',
  async up(db) {
    await db.schema.alterTable('nodes', (t) => {
      t.bigInteger('drain_started_at').nullable();
      t.bigInteger('drain_objects').nullable();
      t.bigInteger('drain_bytes').nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('nodes', (t) => {
      t.dropColumn('drain_started_at');
      t.dropColumn('drain_objects');
      t.dropColumn('drain_bytes');
    });
  },
};

/**
 * When a user last changed something: with a read replica, that user's reads stay on the primary
 * until the replica has caught up past this moment (read-your-writes, across all their sessions).
 */
const userWrites: Migration = {
  name: '007_user_writes',
  async up(db) {
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('wrote_at').nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('wrote_at');
    });
  },
};

/**
 * A ZIP download asked for with `POST /api/archives`: the selection waits here, behind a
 * short-lived token, until the browser navigates to the archive's URL (any app instance may
 * answer it). Swept with the other expired rows.
 */
const archives: Migration = {
  name: '008_archives',
  async up(db) {
    await createTable(db, 'archives', (t) => {
      t.string('token_hash', 64).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('name', 255).notNullable();
      // JSON array of the selected ids, up to ARCHIVE_MAX_IDS of them.
      t.text('ids', 'mediumtext').notNullable();
      t.bigInteger('expires_at').notNullable().index();
      t.bigInteger('created_at').notNullable();
    });
  },
  async down(db) {
    await db.schema.dropTable('archives');
  },
};

/** App passwords (services/app-passwords.ts): only a SHA-256 of each random secret is kept. */
const appPasswords: Migration = {
  name: '009_app_passwords',
  async up(db) {
    await createTable(db, 'app_passwords', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('name', 100).notNullable();
      t.string('token_hash', 64).notNullable().unique();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('last_used_at').nullable();
      t.index(['user_id']);
    });
  },
  async down(db) {
    await db.schema.dropTable('app_passwords');
  },
};

/**
 * tus uploads (services/tus.ts) ride on an ordinary upload session (same id): this row adds the
 * byte offset the client has been acknowledged, and where the bytes past the last whole chunk
 * are kept meanwhile (a small part file on the upload's nodes).
 */
const tusUploads: Migration = {
  name: '010_tus_uploads',
  async up(db) {
    await createTable(db, 'tus_uploads', (t) => {
      t.string('id', ID).primary().references('uploads.id').onDelete('CASCADE');
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.bigInteger('offset').notNullable();
      t.string('tail_part', 80).nullable();
      t.text('metadata').notNullable();
      t.string('file_id', ID).nullable();
      t.bigInteger('created_at').notNullable();
    });
  },
  async down(db) {
    await db.schema.dropTable('tus_uploads');
  },
};

/** WebDAV dead properties (PROPPATCH): any namespaced property a client sets on a file or folder. */
const davProperties: Migration = {
  name: '011_dav_properties',
  async up(db) {
    await createTable(db, 'dav_properties', (t) => {
      t.string('file_id', ID).notNullable().references('user_files.id').onDelete('CASCADE');
      t.string('ns', 255).notNullable();
      t.string('name', 255).notNullable();
      // The property's content as XML (text and elements, namespaces declared where used).
      t.text('value', 'mediumtext').notNullable();
      t.primary(['file_id', 'ns', 'name']);
    });
  },
  async down(db) {
    await db.schema.dropTable('dav_properties');
  },
};

/**
 * WebDAV locks (class 2), by path: a LOCK may name a URL that has nothing yet, and every instance
 * must see every lock. Expired rows are ignored, then swept.
 */
const davLocks: Migration = {
  name: '012_dav_locks',
  async up(db) {
    await createTable(db, 'dav_locks', (t) => {
      t.string('token', 80).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      // The locked path, decoded, '/'-joined without a leading slash ('' is the root).
      t.string('path', 3072).notNullable();
      t.string('depth', 10).notNullable();
      t.string('scope', 10).notNullable();
      t.text('owner').notNullable();
      t.integer('timeout_s').notNullable();
      t.bigInteger('expires_at').notNullable();
      t.index(['user_id', 'expires_at']);
    });
  },
  async down(db) {
    await db.schema.dropTable('dav_locks');
  },
};

/**
 * One tus PATCH at a time per upload: two racing at one offset could each store part of the
 * bytes (one a whole chunk, the other the tail) and leave an upload no client could continue.
 * A PATCH holds this lease (renewed while its body streams) and a second one is refused.
 */
const tusPatchLease: Migration = {
  name: '013_tus_patch_lease',
  async up(db) {
    await db.schema.alterTable('tus_uploads', (t) => {
      t.string('patch_token', 40).nullable();
      t.bigInteger('patch_until').nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('tus_uploads', (t) => {
      t.dropColumn('patch_token');
      t.dropColumn('patch_until');
    });
  },
};

/**
 * Names compare exactly on MySQL too. `utf8mb4_bin` is a PAD SPACE collation: `notes.txt ` (a
 * trailing space) equals `notes.txt` there, so a WebDAV PUT of one replaced the other, while
 * SQLite keeps two files. The columns that hold names (and what is looked up by them) move to
 * the binary NO PAD collation of the server: `utf8mb4_nopad_bin` on MariaDB, `utf8mb4_0900_bin`
 * on MySQL 8. Every existing value stays, and NO PAD is finer than PAD SPACE, so no unique index
 * meets a new duplicate. Ids and tokens keep their collation (foreign keys pair them up).
 */
const noPadNames: Migration = {
  name: '014_no_pad_names',
  async up(db) {
    if (db.client.config.client !== 'mysql2') return;
    const found = (await db.raw(
      "SHOW COLLATION WHERE Collation IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')",
    )) as [Array<{ Collation: string }>];
    const names = found[0].map((r) => r.Collation);
    const collation = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'].find((c) => names.includes(c));
    if (!collation) throw new Error('the database server has no binary NO PAD collation for utf8mb4');
    await collateNames(db, collation);
  },
  async down(db) {
    if (db.client.config.client === 'mysql2') await collateNames(db, 'utf8mb4_bin');
  },
};

/** Gives each of NO_PAD_COLUMNS `collation`, its type and nullability unchanged. */
async function collateNames(db: Knex, collation: string): Promise<void> {
  for (const [table, column] of NO_PAD_COLUMNS) {
    const [rows] = (await db.raw(
      'SELECT COLUMN_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
      [table, column],
    )) as [Array<{ type: string; nullable: string }>];
    const current = rows[0];
    if (!current) continue;
    await db.raw(
      `ALTER TABLE ?? MODIFY ?? ${current.type} CHARACTER SET utf8mb4 COLLATE ${collation} ${current.nullable === 'YES' ? 'NULL' : 'NOT NULL'}`,
      [table, column],
    );
  }
}

/** The columns `noPadNames` moves: every name, path or namespace that a look-up compares. */
const NO_PAD_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['users', 'username'],
  ['nodes', 'name'],
  ['user_files', 'name'],
  ['user_files', 'live_name'],
  ['uploads', 'name'],
  ['archives', 'name'],
  ['app_passwords', 'name'],
  ['dav_properties', 'ns'],
  ['dav_properties', 'name'],
  ['dav_locks', 'path'],
];

/**
 * Dead properties are bounded per entry and per user (services/dav-limits.ts): each row says
 * whose it is and how many bytes it holds, so both sums are one indexed read.
 */
const davPropertySizes: Migration = {
  name: '015_dav_property_sizes',
  async up(db) {
    const mysql = db.client.config.client === 'mysql2';
    await db.schema.alterTable('dav_properties', (t) => {
      t.string('user_id', ID).notNullable().defaultTo('');
      t.bigInteger('bytes').notNullable().defaultTo(0);
      t.index(['user_id', 'bytes'], 'dav_properties_user_bytes');
    });
    const length = (column: string) => (mysql ? `LENGTH(${column})` : `LENGTH(CAST(${column} AS BLOB))`);
    await db.raw(
      `UPDATE dav_properties SET bytes = ${length('ns')} + ${length('name')} + ${length('value')}, user_id = COALESCE((SELECT user_files.user_id FROM user_files WHERE user_files.id = dav_properties.file_id), '')`,
    );
  },
  async down(db) {
    await db.schema.alterTable('dav_properties', (t) => {
      t.dropIndex(['user_id', 'bytes'], 'dav_properties_user_bytes');
      t.dropColumn('user_id');
      t.dropColumn('bytes');
    });
  },
};

/**
 * A file's modification time as its source had it (a client's `mtime`, WebDAV `X-OC-Mtime`), so
 * sync clients that compare times see what they sent; null means "the entry's `updated_at`".
 */
const fileMtime: Migration = {
  name: '016_file_mtime',
  async up(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.bigInteger('mtime').nullable();
      // The file list sorts by it ("Modified") in index order, like by any other column.
      t.index(['user_id', 'parent_id', 'status', 'kind', 'mtime'], 'user_files_folder_mtime');
    });
    // Files always have one from now on (the time they were stored when none was given).
    await db('user_files')
      .where({ kind: 'file' })
      .whereNull('mtime')
      .update({ mtime: db.ref('updated_at') });
    // An upload session (chunked or tus) keeps the time it was given until it completes.
    await db.schema.alterTable('uploads', (t) => {
      t.bigInteger('mtime').nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('uploads', (t) => {
      t.dropColumn('mtime');
    });
    await db.schema.alterTable('user_files', (t) => {
      t.dropIndex(['user_id', 'parent_id', 'status', 'kind', 'mtime'], 'user_files_folder_mtime');
      t.dropColumn('mtime');
    });
  },
};

/**
 * Login Flow v2 (routes/nextcloud.ts): a sign-in that an app started and a browser finishes,
 * possibly on another app instance. Only hashes of its two tokens are kept; the app password
 * made on approval waits here in clear only until the one poll that hands it over deletes the row.
 */
const loginFlows: Migration = {
  name: '017_login_flows',
  async up(db) {
    await createTable(db, 'login_flows', (t) => {
      t.string('id', ID).primary();
      t.string('poll_token_hash', 64).notNullable().unique();
      t.string('flow_token_hash', 64).notNullable().unique();
      t.string('client_name', 100).notNullable();
      t.string('state', 16).notNullable();
      t.bigInteger('created_at').notNullable();
      t.bigInteger('expires_at').notNullable();
      t.string('user_id', ID).nullable().references('users.id').onDelete('CASCADE');
      t.string('app_password_id', ID).nullable();
      t.string('app_password', 200).nullable();
      t.index(['expires_at']);
    });
  },
  async down(db) {
    await db.schema.dropTable('login_flows');
  },
};

/**
 * Folder ETags (docs/ARCHITECTURE.md, "Change counters"): every entry and every user's root
 * carry a counter that each write below them raises, so a sync client sees a change at every
 * folder above it without any listing being compared.
 */
const changeCounters: Migration = {
  name: '018_change_counters',
  async up(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.bigInteger('change_seq').notNullable().defaultTo(0);
    });
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('tree_seq').notNullable().defaultTo(0);
    });
  },
  async down(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.dropColumn('change_seq');
    });
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('tree_seq');
    });
  },
};

/**
 * Every folder's `tree_bytes` (and each user's), summed from the files: what the folders' sizes
 * must be, from scratch.
 */
async function sumFolderBytes(db: Knex): Promise<void> {
  const users: Array<{ id: string }> = await db('users').select('id');
  for (const { id: userId } of users) {
    await db('user_files').where('user_id', userId).update({ tree_bytes: 0 });
    type Row = {
      id: string;
      parent_id: string;
      kind: string;
      size: unknown;
      status: string;
      trash: string | null;
    };
    const rows: Row[] = await db('user_files')
      .where('user_id', userId)
      .select('id', 'parent_id', 'kind', 'size', 'status', 'trash_root_id as trash');
    const byId = new Map(rows.map((r) => [r.id, r]));
    const sums = new Map<string, number>();
    let live = 0;
    for (const file of rows) {
      if (file.kind !== 'file') continue;
      const size = Number(file.size);
      if (file.status === 'active') live += size;
      // Up through the folders in the same state as the file (live, or trashed in one action).
      for (let at = byId.get(file.parent_id); at; at = byId.get(at.parent_id)) {
        if (at.status !== file.status || at.trash !== file.trash) break;
        sums.set(at.id, (sums.get(at.id) ?? 0) + size);
      }
    }
    for (const [id, bytes] of sums) await db('user_files').where({ id }).update({ tree_bytes: bytes });
    await db('users').where({ id: userId }).update({ tree_bytes: live });
  }
}

/**
 * Recursive folder sizes (`oc:size`), kept like the change counters: a folder's `tree_bytes` is
 * the bytes of the files below it that share its state (live under a live folder, or trashed
 * with it), and a user's the bytes of their live files. Existing trees are summed once here.
 */
const folderBytes: Migration = {
  name: '019_folder_bytes',
  async up(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.bigInteger('tree_bytes').notNullable().defaultTo(0);
    });
    await db.schema.alterTable('users', (t) => {
      t.bigInteger('tree_bytes').notNullable().defaultTo(0);
    });
    await sumFolderBytes(db);
  },
  async down(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.dropColumn('tree_bytes');
    });
    await db.schema.alterTable('users', (t) => {
      t.dropColumn('tree_bytes');
    });
  },
};

/**
 * Nextcloud's chunked upload v2 (/remote.php/dav/uploads/<user>/<transfer id>): the client's name
 * for an upload, mapped onto a dfs upload session (whose tus row keeps the bytes' offset), and the
 * chunks it has sent, which a resuming client lists.
 */
const ncUploads: Migration = {
  name: '020_nc_uploads',
  async up(db) {
    await createTable(db, 'nc_uploads', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('transfer_id', 200).notNullable();
      // Null until the total length is known (a client may give it only with the first chunk).
      t.string('upload_id', ID).nullable().references('uploads.id').onDelete('CASCADE');
      t.bigInteger('total_length').nullable();
      t.text('destination').nullable();
      t.bigInteger('created_at').notNullable();
      t.unique(['user_id', 'transfer_id']);
      t.index(['created_at']);
    });
    await createTable(db, 'nc_upload_chunks', (t) => {
      t.string('nc_upload_id', ID).notNullable().references('nc_uploads.id').onDelete('CASCADE');
      t.string('name', 64).notNullable();
      t.bigInteger('offset').notNullable();
      t.bigInteger('size').notNullable();
      t.primary(['nc_upload_id', 'name']);
    });
  },
  async down(db) {
    await db.schema.dropTable('nc_upload_chunks');
    await db.schema.dropTable('nc_uploads');
  },
};

/**
 * File versions: a file's earlier contents, kept when new content replaces them (a row each: the
 * bytes are the content's, shared). A file now says when its content was put in place and by
 * whom, which a version keeps when it is replaced. Uploads may ask to replace a file of the same
 * name rather than take a new one.
 */
const fileVersions: Migration = {
  name: '021_file_versions',
  async up(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.bigInteger('content_at').nullable();
      t.text('content_by').nullable();
    });
    await createTable(db, 'file_versions', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('file_id', ID).notNullable().references('user_files.id').onDelete('CASCADE');
      t.string('content_id', ID).notNullable().references('contents.id');
      t.bigInteger('size').notNullable();
      t.bigInteger('mtime').nullable();
      // When this content became the file's, and when newer content replaced it.
      t.bigInteger('created_at').notNullable();
      t.bigInteger('replaced_at').notNullable();
      // Who made this content (JSON: the actor), when known.
      t.text('made_by').nullable();
      t.index(['file_id', 'replaced_at']);
      t.index(['user_id', 'replaced_at']);
      t.index(['content_id']);
    });
    await db.schema.alterTable('uploads', (t) => {
      t.string('on_conflict', 8).nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('uploads', (t) => {
      t.dropColumn('on_conflict');
    });
    await db.schema.dropTable('file_versions');
    await db.schema.alterTable('user_files', (t) => {
      t.dropColumn('content_at');
      t.dropColumn('content_by');
    });
  },
};

/**
 * Each entry keeps its `oc:fileid` (util/file-ids.ts), so a file can be found by it: Nextcloud's
 * versions URLs name a file by that number. Existing rows get theirs here.
 */
const ocFileIds: Migration = {
  name: '022_oc_fileids',
  async up(db) {
    if (!(await db.schema.hasColumn('user_files', 'oc_fileid'))) {
      await db.schema.alterTable('user_files', (t) => {
        t.bigInteger('oc_fileid').nullable();
      });
    }
    // One statement per 1,000 rows (MySQL commits DDL at once, so no transaction is assumed here).
    for (;;) {
      const ids: string[] = await db('user_files').whereNull('oc_fileid').limit(1000).pluck('id');
      if (ids.length === 0) break;
      const cases = ids.map(() => 'WHEN ? THEN ?').join(' ');
      await db('user_files')
        .whereIn('id', ids)
        .update({
          oc_fileid: db.raw(
            `CASE id ${cases} END`,
            ids.flatMap((id) => [id, numericFileId(id)]),
          ),
        });
    }
    await db.schema.alterTable('user_files', (t) => {
      t.index(['user_id', 'oc_fileid']);
    });
  },
  async down(db) {
    await db.schema.alterTable('user_files', (t) => {
      t.dropIndex(['user_id', 'oc_fileid']);
      t.dropColumn('oc_fileid');
    });
  },
};

/**
 * The history of every change to a user's tree: one event per action (created, replaced,
 * renamed, moved, trashed, restored, purged), in the order they were written, with where the
 * entry was before and after and what it held, and who acted.
 */
const historyEvents: Migration = {
  name: '023_history_events',
  async up(db) {
    await createTable(db, 'history_events', (t) => {
      t.bigIncrements('seq');
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.bigInteger('at').notNullable();
      t.string('action', 16).notNullable();
      // No foreign key: the history of an entry outlives it.
      t.string('file_id', ID).notNullable();
      t.string('kind', 8).notNullable();
      t.string('parent_id', ID).nullable();
      t.string('name', 255).nullable();
      t.text('path').nullable();
      t.string('old_parent_id', ID).nullable();
      t.string('old_name', 255).nullable();
      t.text('old_path').nullable();
      t.string('content_id', ID).nullable();
      t.string('old_content_id', ID).nullable();
      // The entry and the folders above it, before and after (`,id,id,`): a folder's history is
      // every event whose entry was below it.
      t.text('ancestors').notNullable();
      t.text('actor').notNullable();
      t.string('actor_type', 16).notNullable();
      t.string('app_password_id', ID).nullable();
      t.index(['user_id', 'seq']);
      t.index(['user_id', 'at']);
      t.index(['user_id', 'app_password_id', 'at']);
      t.index(['content_id']);
      t.index(['old_content_id']);
    });
  },
  async down(db) {
    await db.schema.dropTable('history_events');
  },
};

/**
 * Folder sizes again: an upload given a ` (n)` name raised its folders' sizes once per name it
 * found taken (the failed insert's raise stayed in the transaction), so they are summed anew.
 */
const folderBytesAgain: Migration = {
  name: '024_folder_bytes_again',
  up: sumFolderBytes,
  async down() {},
};

/**
 * What point-in-time restore and the mass-change guard need: the first event of an entry after a
 * time (by entry), an actor's recent changes, a user's long-running jobs (a restore's progress)
 * and the alerts raised for them.
 */
const restoreAndAlerts: Migration = {
  name: '025_restore_jobs_alerts',
  async up(db) {
    await db.schema.alterTable('history_events', (t) => {
      t.index(['file_id', 'seq']);
      t.index(['user_id', 'actor_type', 'at']);
    });
    await createTable(db, 'user_jobs', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('kind', 32).notNullable();
      t.string('state', 16).notNullable();
      t.integer('done').notNullable().defaultTo(0);
      t.integer('total').notNullable().defaultTo(0);
      t.text('result').nullable();
      t.text('error').nullable();
      t.bigInteger('created_at').notNullable();
      // Bumped while it runs: a job whose instance died stops being "running" after a while.
      t.bigInteger('updated_at').notNullable();
      t.index(['user_id', 'created_at']);
    });
    await createTable(db, 'alerts', (t) => {
      t.string('id', ID).primary();
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('kind', 32).notNullable();
      // The burst: its first change, its last one seen, and the moment just before it.
      t.bigInteger('at').notNullable();
      t.bigInteger('last_at').notNullable();
      t.bigInteger('restore_at').notNullable();
      t.text('actor').notNullable();
      t.string('actor_key', 300).notNullable();
      t.string('app_password_id', ID).nullable();
      t.integer('files').notNullable();
      t.string('folder_id', ID).nullable();
      t.bigInteger('dismissed_at').nullable();
      t.index(['user_id', 'actor_key', 'last_at']);
      // Two instances that see one burst at once raise one alert.
      t.unique(['user_id', 'actor_key', 'at']);
    });
  },
  async down(db) {
    await db.schema.dropTable('alerts');
    await db.schema.dropTable('user_jobs');
    await db.schema.alterTable('history_events', (t) => {
      t.dropIndex(['file_id', 'seq']);
      t.dropIndex(['user_id', 'actor_type', 'at']);
    });
  },
};

/**
 * Upload requests: a link of kind `upload` points at a folder, takes files into it and never
 * serves them. `max_bytes` bounds what the link may take in all; `bytes_received` is what it took.
 */
const uploadRequests: Migration = {
  name: '026_upload_requests',
  async up(db) {
    await db.schema.alterTable('shares', (t) => {
      t.string('kind', 16).notNullable().defaultTo('download');
      t.bigInteger('max_bytes').nullable();
      t.bigInteger('bytes_received').notNullable().defaultTo(0);
    });
  },
  async down(db) {
    await db.schema.alterTable('shares', (t) => {
      t.dropColumn('bytes_received');
      t.dropColumn('max_bytes');
      t.dropColumn('kind');
    });
  },
};

/**
 * Two-factor sign-in: a user's TOTP secret (encrypted; `enabled_at` NULL while the setup waits
 * for its first code), their recovery codes (hashed, spent once), and when a session last proved
 * the second factor (only such sessions mint app passwords).
 */
const twoFactor: Migration = {
  name: '027_two_factor',
  async up(db) {
    await createTable(db, 'user_totp', (t) => {
      t.string('user_id', ID).primary().references('users.id').onDelete('CASCADE');
      t.text('secret').notNullable();
      t.bigInteger('enabled_at').nullable();
      t.bigInteger('last_step').nullable();
      t.bigInteger('created_at').notNullable();
    });
    await createTable(db, 'totp_recovery_codes', (t) => {
      t.string('user_id', ID).notNullable().references('users.id').onDelete('CASCADE');
      t.string('code_hash', 64).notNullable();
      t.bigInteger('used_at').nullable();
      t.primary(['user_id', 'code_hash']);
    });
    await db.schema.alterTable('sessions', (t) => {
      t.bigInteger('second_factor_at').nullable();
    });
  },
  async down(db) {
    await db.schema.alterTable('sessions', (t) => {
      t.dropColumn('second_factor_at');
    });
    await db.schema.dropTable('totp_recovery_codes');
    await db.schema.dropTable('user_totp');
  },
};

const migrations: Migration[] = [
  initial,
  contentBlocks,
  userLimits,
  shareBytes,
  uploadV2,
  drainProgress,
  userWrites,
  archives,
  appPasswords,
  tusUploads,
  davProperties,
  davLocks,
  tusPatchLease,
  noPadNames,
  davPropertySizes,
  fileMtime,
  loginFlows,
  changeCounters,
  folderBytes,
  ncUploads,
  fileVersions,
  ocFileIds,
  historyEvents,
  folderBytesAgain,
  restoreAndAlerts,
  uploadRequests,
  twoFactor,
  // From here on, one module per migration (db/migrations/), so parallel work does not collide.
  sharing,
  identities,
  passkeys,
  sessionDetails,
  dropUploads,
  usageCounters,
  nameGramsMigration,
  dropUsageIndex,
  contentRoots,
  auditLog,
  backupsMigration,
  statsSeries,
];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => ({ up: m.up, down: m.down }),
};
