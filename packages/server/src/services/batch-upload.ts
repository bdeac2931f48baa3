import { Readable } from 'node:stream';
import type { FileEntry } from '@dfs/shared';
import { HttpError } from '../errors.ts';
import type { ContentRow } from '../repositories/contents.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ContentStore } from './content-store.ts';
import type { FileService } from './files.ts';
import { type Digests, digestsOf } from './hashing/content.ts';
import type { UserLimits } from './limits.ts';
import { assertValidName } from './names.ts';
import type { Metrics } from './operations/metrics.ts';
import { AccessService } from './sharing/access.ts';
import type { UploadParts } from './upload-parts.ts';

export interface BatchItem {
  name: string;
  parentId?: string;
  /** The client's SHA-1 of the bytes; the server's own must equal it. */
  sha1?: string;
  /** The source file's modification time (epoch ms). */
  mtime?: number;
  bytes: Buffer;
}

/** Contents stored at once while a batch is ingested (each a small write to R nodes). */
const STORE_PARALLELISM = 4;

/**
 * Many small files from one request: every file is hashed by the server and checked against its
 * declared SHA-1 before any byte is stored; the contents go to the nodes (known ones are not
 * copied again), then one transaction checks the quota for all of them and adds every file row.
 * A bad file fails the whole batch with its index, and no file of it is registered (contents
 * stored meanwhile stay unreferenced and are collected like any other).
 */
export class BatchUpload {
  constructor(
    private readonly repos: Repositories,
    private readonly parts: UploadParts,
    private readonly contents: ContentStore,
    private readonly files: FileService,
    private readonly userLimits: UserLimits,
    private readonly minFreeBytes: number,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * `userId` uploads; the files join the tree (and quota) of the folders' owner: the user's own,
   * or a folder shared with them as editor. One batch goes to one owner's files.
   */
  async store(uploaderId: string, items: BatchItem[]): Promise<FileEntry[]> {
    // The request's bodies are all in by now.
    this.metrics?.uploadsStarted.inc(items.length);
    this.metrics?.bytesReceived.inc(items.reduce((sum, item) => sum + item.bytes.length, 0));
    const access = new AccessService(this.repos);
    let userId: string | undefined;
    const parents = new Map<string, string>();
    const sha1s: string[] = [];
    const digests: Digests[] = [];
    for (const [index, item] of items.entries()) {
      try {
        assertValidName(item.name);
      } catch (error) {
        throw withIndex(error, index);
      }
      const key = item.parentId ?? '';
      if (!parents.has(key)) {
        try {
          const { ownerId } = await access.parent(uploaderId, item.parentId);
          if (userId !== undefined && ownerId !== userId)
            throw new HttpError(
              'bad_request',
              "one batch goes to one person's files: send files for a shared folder in a batch of their own",
            );
          userId = ownerId;
          parents.set(key, await this.files.resolveParent(ownerId, item.parentId));
        } catch (error) {
          throw withIndex(error, index);
        }
      }
      const itemDigests = digestsOf(item.bytes);
      const actual = itemDigests.sha1;
      if (item.sha1 !== undefined && item.sha1.toLowerCase() !== actual) {
        // No file of the batch is made.
        this.metrics?.uploadsFailed.inc({ reason: 'verification' }, items.length);
        throw new HttpError('hash_mismatch', `file ${index} ("${item.name}") does not hash to its sha1`, {
          index,
          expected: item.sha1.toLowerCase(),
          actual,
        });
      }
      sha1s.push(actual);
      digests.push(itemDigests);
    }
    if (userId === undefined) userId = uploaderId;
    const ownerId = userId;
    const total = items.reduce((sum, item) => sum + item.bytes.length, 0);
    // Refused before a byte is stored when the account is already past its bounds.
    await this.userLimits.assertRoom(userId, { bytes: total, entries: items.length }, this.repos);

    const stored = new Map<string, ContentRow>();
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const index = next++;
        const sha1 = sha1s[index] as string;
        if (stored.has(sha1)) continue;
        const bytes = (items[index] as BatchItem).bytes;
        this.parts.choose(sha1, bytes.length, this.minFreeBytes);
        const content = await this.contents.ingest({
          declaredSha1: sha1,
          size: bytes.length,
          open: () => Readable.from([bytes]),
          digests: digests[index] as Digests,
        });
        stored.set(sha1, content);
      }
    };
    await Promise.all(Array.from({ length: Math.min(STORE_PARALLELISM, items.length) }, worker));

    const files = await this.repos.transaction(async (tx) => {
      await this.userLimits.assertRoom(ownerId, { bytes: total, entries: items.length }, tx);
      const out: FileEntry[] = [];
      for (const [index, item] of items.entries()) {
        const content = stored.get(sha1s[index] as string) as ContentRow;
        out.push(
          await this.files.addFile(
            {
              userId: ownerId,
              parentId: parents.get(item.parentId ?? '') as string,
              name: item.name,
              contentId: content.id,
              sha1: content.sha1,
              size: Number(content.size),
              ...(item.mtime === undefined ? {} : { mtime: item.mtime }),
            },
            tx,
          ),
        );
      }
      return out;
    });
    this.metrics?.uploadsCompleted.inc({ kind: 'stored' }, files.length);
    return files;
  }
}

/** Tells the client which file of the batch an error is about. */
function withIndex(error: unknown, index: number): unknown {
  if (error instanceof HttpError) {
    return new HttpError(error.code, `file ${index}: ${error.message}`, { ...error.details, index });
  }
  return error;
}
