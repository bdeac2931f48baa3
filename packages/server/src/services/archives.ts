import type { Readable } from 'node:stream';
import type { Archive, CreateArchiveBody } from '@dfs/shared';
import filenamify from 'filenamify';
import { HttpError, notFound } from '../errors.ts';
import type { FileRow } from '../repositories/files.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ContentStore } from './content-store.ts';
import { newToken, sha256Hex } from './ids.ts';
import { AccessService } from './sharing/access.ts';
import { writeZip, type ZipEntry } from './zip-writer.ts';

/** How long an archive URL works: it only has to start the download. */
const ARCHIVE_URL_MS = 10 * 60_000;

interface FileZipEntry extends ZipEntry {
  contentId: string | null;
}

/**
 * ZIP downloads of a selection (files and whole folders): the selection is recorded behind a
 * short-lived token, and the archive is streamed from the nodes when its URL is fetched, with
 * every byte verified as downloads are.
 */
export class ArchiveService {
  private readonly access: AccessService;

  constructor(
    private readonly repos: Repositories,
    private readonly contents: ContentStore,
    private readonly now: () => number,
  ) {
    this.access = new AccessService(repos);
  }

  /**
   * Whose tree the selection is read from: the user's own, or (entries shared with the user, as
   * viewer or editor) their owner's. One archive reads one tree: a selection mixing the user's
   * own entries with shared ones, or shares of two owners, is refused. Asked again when the
   * archive is fetched, so a share revoked meanwhile answers 404.
   */
  private async ownerOf(userId: string, ids: string[]): Promise<string> {
    const own = new Set((await this.repos.files.activeByIds(userId, ids)).map((r) => r.id));
    const owners = new Set<string>();
    for (const id of ids) {
      if (own.has(id)) {
        owners.add(userId);
        continue;
      }
      const { ownerId } = await this.access.require(userId, id, 'read');
      // The user's own entry, trashed: left for the count below to report.
      if (ownerId !== userId) owners.add(ownerId);
    }
    if (owners.size > 1)
      throw new HttpError(
        'bad_request',
        'one archive holds either your own items or items shared with you by one person: download them separately',
      );
    return [...owners][0] ?? userId;
  }

  async create(userId: string, body: CreateArchiveBody): Promise<Archive & { token: string }> {
    const owner = await this.ownerOf(userId, body.ids);
    const found = await this.repos.files.activeByIds(owner, body.ids);
    if (found.length !== body.ids.length) {
      const gone = body.ids.length - found.length;
      throw notFound(
        `${gone} of the selected items no longer exist${gone === body.ids.length ? '' : '; refresh the list'}`,
      );
    }
    const only = found.length === 1 ? found[0] : undefined;
    const stem =
      body.name ??
      (only?.kind === 'folder' ? only.name : `dfs-${new Date(this.now()).toISOString().slice(0, 10)}`);
    const name = `${entryName(stem)}.zip`;
    const token = newToken();
    const expiresAt = this.now() + ARCHIVE_URL_MS;
    await this.repos.archives.insert({
      token_hash: sha256Hex(token),
      user_id: userId,
      name,
      ids: JSON.stringify(body.ids),
      expires_at: expiresAt,
      created_at: this.now(),
    });
    return { token, url: `/api/archives/${token}`, name, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The archive behind a token, for the user who asked for it (anyone else: 404). */
  async open(
    userId: string,
    token: string,
  ): Promise<{ name: string; stream: Readable; size: number | null }> {
    const row = await this.repos.archives.findLive(sha256Hex(token), this.now());
    if (!row || row.user_id !== userId) {
      throw new HttpError('not_found', 'this archive link has expired; download the selection again');
    }
    const ids = JSON.parse(row.ids) as string[];
    const entries = await this.entries(await this.ownerOf(userId, ids), ids);
    const { stream, size } = writeZip(entries, (entry) => this.read(entry as FileZipEntry));
    return { name: row.name, stream, size };
  }

  private async read(entry: FileZipEntry): Promise<Readable> {
    const content = entry.contentId ? await this.repos.contents.findById(entry.contentId) : undefined;
    if (!content) throw new HttpError('storage_unavailable', `${entry.path}: its content is gone`);
    return this.contents.open(content);
  }

  /**
   * The selection as archive entries, folders walked level by level. What was trashed since the
   * link was made is left out. Each name is made safe to extract (see entryName), and names that
   * then collide in one folder — top-level ones also when a search's results come from many
   * folders — get " (2)", " (3)"… as a desktop would.
   */
  private async entries(userId: string, ids: string[]): Promise<FileZipEntry[]> {
    const order = new Map(ids.map((id, i) => [id, i]));
    const top = (await this.repos.files.activeByIds(userId, ids)).sort(
      (a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0),
    );
    const out: FileZipEntry[] = [];
    const taken = new Map<string, Set<string>>();
    const place = (folder: string, name: string) => {
      const names = taken.get(folder) ?? new Set<string>();
      taken.set(folder, names);
      const safe = unique(entryName(name), names);
      return folder === '' ? safe : `${folder}/${safe}`;
    };
    let level: Array<{ row: FileRow; path: string }> = top.map((row) => ({
      row,
      path: place('', row.name),
    }));
    while (level.length > 0) {
      const folders = new Map<string, string>();
      for (const { row, path } of level) {
        out.push({
          path,
          kind: row.kind,
          size: row.kind === 'file' ? Number(row.size) : 0,
          mtime: new Date(Number(row.updated_at)),
          contentId: row.content_id,
        });
        if (row.kind === 'folder') folders.set(row.id, path);
      }
      if (folders.size === 0) break;
      const children = await this.repos.files.activeChildren(userId, [...folders.keys()]);
      level = children.map((row) => ({ row, path: place(folders.get(row.parent_id) ?? '', row.name) }));
    }
    // A folder with something in it needs no entry of its own; an empty one keeps it.
    const parents = new Set(out.map((e) => e.path.slice(0, Math.max(0, e.path.lastIndexOf('/')))));
    return out.filter((e) => e.kind === 'file' || !parents.has(e.path));
  }
}

/**
 * A name as one path segment that every extractor takes as a plain name. Names legal here
 * (`..\..\evil.txt`, `C:\Windows\x`, `\\server\share.txt`, `a:b`, `CON.txt`, `x.`) are paths,
 * drive letters, streams or devices to a Windows extractor, and yazl refuses some of them outright.
 * filenamify replaces what Windows reserves (`\ / : * ? " < > |`, control and bidi-format
 * characters, device names, trailing dots and spaces) with `_`; 255 keeps names as long as ours.
 */
function entryName(name: string): string {
  return filenamify(name, { replacement: '_', maxLength: 255 });
}

/**
 * `name`, or `name (2)`, `name (3)`… when the folder has it already. Compared without case: two
 * names that differ only in case are one file on Windows and macOS.
 */
function unique(name: string, taken: Set<string>): string {
  let candidate = name;
  for (let n = 2; taken.has(candidate.toLowerCase()); n++) {
    const dot = name.lastIndexOf('.');
    candidate = dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
  }
  taken.add(candidate.toLowerCase());
  return candidate;
}
