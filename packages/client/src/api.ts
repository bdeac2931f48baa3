import {
  type AdminListQuery,
  type AdminUserList,
  type AdminUserResponse,
  type AlertList,
  type AppPasswordList,
  type AppPasswordScope,
  type Archive,
  type AuditPage,
  type AuditQuery,
  type ChangePasswordBody,
  type CompleteUploadBody,
  type CompleteUploadResponse,
  type ContentInfo,
  type CreateArchiveBody,
  type CreatedAppPassword,
  type CreateFolderBody,
  type CreateShareBody,
  type CreateUploadBody,
  type CreateUploadResponse,
  type DroppedFile,
  type FileBatchResponse,
  type FileList,
  type FilePath,
  type FileResponse,
  type FileVersionList,
  type FolderSummary,
  type HistoryPage,
  type HistoryQuery,
  type ListFilesQuery,
  MAX_PAGE_SIZE,
  type NodeList,
  type NodeResponse,
  type OnConflict,
  type PatchFileBody,
  type PublicLink,
  type RestoreBody,
  type RestoredVersion,
  type RestoreResult,
  type RestoreStarted,
  type SessionList,
  type Share,
  type ShareGrant,
  type ShareList,
  type SignedOutSessions,
  type SigninResponse,
  type StatsRange,
  type StatsResponse,
  type TotpSetup,
  type TotpStatus,
  type UploadSession,
  type UserJob,
  type UserResponse,
} from '@dfs/shared';
import { ApiError, isAbortError, NetworkError } from './errors.ts';
import type { paths } from './generated/api-types.ts';
import { appendFile } from './upload/held-bytes.ts';
import { sleep } from './upload/retry.ts';
import { crc32cDigestHeader } from './util/bytes.ts';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** The OpenAPI document's path templates, e.g. `/api/files/{id}`. */
type ApiPath = keyof paths;
/** The methods the document defines for a path (the generated types mark the others `never`). */
type MethodOf<P extends ApiPath> = {
  [M in Method]: NonNullable<paths[P][M]> extends never ? never : M;
}[Method];
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : never;
/** The JSON body of an operation's 200 or 201 answer, as the server's schemas declare it. */
type OkJson<P extends ApiPath, M extends MethodOf<P>> =
  NonNullable<paths[P][M]> extends { responses: infer R }
    ? JsonOf<R[200 & keyof R]> | JsonOf<R[201 & keyof R]>
    : never;

/** `/api/files/{id}` with `{ id }` → `/api/files/<id, URL-encoded>`. */
function fill(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(String(value));
  });
}

export interface DfsApiOptions {
  /** Server origin, e.g. `https://dfs.example.com` (a trailing `/` or `/api` is tolerated); `''` = same origin. */
  baseUrl?: string;
  /** Bearer token (CLI, tests, workers). Without it the browser's session cookie is used. */
  token?: string | null;
  /** `fetch` credentials mode; default `'include'` so cookies travel in the browser. */
  credentials?: RequestCredentials;
  /** A custom fetch (tests, instrumentation). Defaults to the global one. */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /**
   * Send chunks with XMLHttpRequest when it exists and a progress callback is given, so the
   * engine sees in-flight upload progress (fetch has none). Default true.
   */
  useXhrForProgress?: boolean;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

/** A chunk's bytes: in memory, or a slice of the file's Blob that the browser reads as it sends. */
export type ChunkBody = Uint8Array | Blob;

/**
 * A chunk's checksum, as its PUT carries it (API.md): its CRC-32C, unsigned (`Content-Digest:
 * crc32c=:…:`, what the upload engine sends), or its MD5 in base64 (`Content-MD5`, RFC 1864; a
 * bare string passed as the checksum is one too).
 */
export type ChunkChecksum = { crc32c: number } | { md5Base64: string };

function checksumHeaders(checksum: ChunkChecksum | string | null | undefined): Record<string, string> {
  if (!checksum) return {};
  if (typeof checksum === 'string') return { 'content-md5': checksum };
  if ('crc32c' in checksum) return { 'content-digest': crc32cDigestHeader(checksum.crc32c) };
  return { 'content-md5': checksum.md5Base64 };
}

export interface PutChunkOptions extends RequestOptions {
  /** Bytes of this chunk sent so far (only where the transport reports it, i.e. XHR). */
  onProgress?: (loaded: number) => void;
}

export interface CompleteUploadOptions extends RequestOptions {
  /** The file's SHA-1: required to complete a speculative upload (one created without it). */
  sha1?: string;
}

export interface UploadSimpleOptions extends RequestOptions {
  /** Name on the server (default: the Blob's `name`, else `file`). */
  name?: string;
  parentId?: string | null;
  /** Lowercase hex SHA-1 of the bytes: the server refuses them (422 hash_mismatch) if they differ. */
  sha1?: string;
  /** The file's modification time (epoch ms): the entry's `mtime`. */
  mtime?: number;
  /** When the name is taken in the folder: `rename` (the server's default), `replace` or `fail`. */
  onConflict?: OnConflict;
}

export interface BatchFile {
  blob: Blob;
  name: string;
  parentId?: string | null;
  sha1?: string;
  /** The file's modification time (epoch ms). */
  mtime?: number;
}

export interface DropFileOptions extends RequestOptions {
  /** The name the uploader typed, as the folder's owner will read it in their history. */
  uploader?: string;
  /** The link's password, when it has one (sent in `X-Share-Password`). */
  password?: string;
  /** Bytes of the file sent so far (through XHR where it exists). */
  onProgress?: (loaded: number) => void;
}

export interface DownloadOptions extends RequestOptions {
  /** A `Range` header value, e.g. `bytes=0-1023`. */
  range?: string;
  ifNoneMatch?: string;
}

/**
 * What `POST /api/restore` (and an alert's undo) answers: the counts when it finished at once
 * (200), or the job to follow when it is large (202); `isRestoreStarted` tells them apart.
 */
export type RestoreAnswer = RestoreResult | RestoreStarted;

export function isRestoreStarted(answer: RestoreAnswer): answer is RestoreStarted {
  return typeof (answer as Partial<RestoreStarted>).jobId === 'string';
}

export interface WaitForJobOptions extends RequestOptions {
  /** Called with each poll's answer, the last (done or failed) included. */
  onProgress?: (job: UserJob) => void;
  /** Between polls; default 500 ms. */
  intervalMs?: number;
}

type Query = Record<string, string | number | boolean | null | undefined>;

interface CallInit extends RequestOptions {
  /** Values for the `{name}` parts of an operation's path template. */
  params?: Record<string, string | number>;
  method?: string;
  query?: Query;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Accept these non-2xx statuses as a result instead of throwing. */
  okStatuses?: number[];
}

/**
 * Typed client for the dfs HTTP API (see API.md). Works in browsers, web workers and Node 20.
 * Every non-2xx answer becomes an `ApiError`; a request without an answer a `NetworkError`;
 * an aborted request rethrows the AbortSignal's reason (`isAbortError` is true for it).
 */
export class DfsApi {
  readonly baseUrl: string;
  token: string | null;
  readonly #credentials: RequestCredentials;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;
  readonly #useXhr: boolean;

  constructor(options: DfsApiOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '').replace(/\/api$/, '');
    this.token = options.token ?? null;
    this.#credentials = options.credentials ?? 'include';
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#headers = { ...options.headers };
    this.#useXhr = options.useXhrForProgress ?? true;
  }

  /** Absolute (or same-origin) URL of an API path, e.g. `url('/api/files')`. */
  url(path: string, query?: Query): string {
    let u = `${this.baseUrl}${path}`;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const qs = params.toString();
      if (qs) u += `?${qs}`;
    }
    return u;
  }

  #authHeaders(): Record<string, string> {
    const h: Record<string, string> = { ...this.#headers };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  /** Low-level request: returns the Response for 2xx (or `okStatuses`), throws otherwise. */
  async request(path: string, init: CallInit = {}): Promise<Response> {
    const headers = { ...this.#authHeaders(), ...init.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let res: Response;
    try {
      res = await this.#fetch(this.url(path, init.query), {
        method: init.method ?? 'GET',
        headers,
        body: body ?? null,
        credentials: this.#credentials,
        signal: init.signal ?? null,
      });
    } catch (err) {
      if (isAbortError(err) || init.signal?.aborted) throw init.signal?.reason ?? err;
      const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
      const detail = cause?.code ?? cause?.message;
      const what = `${(err as Error)?.message ?? err}${detail ? ` (${detail})` : ''}`;
      throw new NetworkError(`${init.method ?? 'GET'} ${this.url(path)} failed: ${what}`, { cause: err });
    }
    if (res.ok || init.okStatuses?.includes(res.status)) return res;
    throw await ApiError.fromResponse(res);
  }

  async #json<T>(path: string, init: CallInit = {}): Promise<T> {
    const res = await this.request(path, init);
    if (res.status === 204) return undefined as T;
    try {
      return (await res.json()) as T;
    } catch (err) {
      if (isAbortError(err) || init.signal?.aborted) throw init.signal?.reason ?? err;
      throw new NetworkError(`${path}: the response body was cut off or not JSON`, { cause: err });
    }
  }

  async #void(path: string, init: CallInit = {}): Promise<void> {
    const res = await this.request(path, init);
    await res.body?.cancel().catch(() => {});
  }

  /**
   * Calls one operation of the OpenAPI document by its path template and method: a path or method
   * the server does not define does not compile, and the answer has the type the server's
   * schemas give it (generated into ./generated/api-types.ts by `pnpm api:generate`).
   */
  #op<P extends ApiPath, M extends MethodOf<P>>(
    method: M,
    template: P,
    init: CallInit = {},
  ): Promise<OkJson<P, M>> {
    return this.#json(fill(template, init.params), { ...init, method: method.toUpperCase() });
  }

  /** As #op, for operations whose answer has no body the caller needs (204). */
  #opVoid<P extends ApiPath, M extends MethodOf<P>>(
    method: M,
    template: P,
    init: CallInit = {},
  ): Promise<void> {
    return this.#void(fill(template, init.params), { ...init, method: method.toUpperCase() });
  }

  /** A checked path for the raw `request` (downloads, HEAD): the template must be the document's. */
  #path<P extends ApiPath>(template: P, params: Record<string, string | number>): string {
    return fill(template, params);
  }

  // ---- accounts ----
  signup(username: string, password: string, opts?: RequestOptions): Promise<UserResponse> {
    return this.#op('post', '/api/auth/signup', { ...opts, json: { username, password } });
  }
  /**
   * Signs in; the browser gets the session cookie, the returned token works as a Bearer token.
   * With two-factor sign-in on, the password alone is `ApiError` `totp_required`: sign in again
   * with `code` (a current TOTP or a recovery code).
   */
  signin(
    username: string,
    password: string,
    opts?: RequestOptions & { code?: string },
  ): Promise<SigninResponse> {
    const { code, ...rest } = opts ?? {};
    return this.#op('post', '/api/auth/signin', {
      ...rest,
      json: code === undefined ? { username, password } : { username, password, code },
    });
  }
  signout(opts?: RequestOptions): Promise<void> {
    return this.#opVoid('post', '/api/auth/signout', opts);
  }
  me(opts?: RequestOptions): Promise<UserResponse> {
    return this.#op('get', '/api/auth/me', opts);
  }
  /** Your other sessions are signed out; this one and app passwords stay. */
  changePassword(body: ChangePasswordBody, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('post', '/api/auth/password', { ...opts, json: body });
  }

  // ---- files and folders ----
  /**
   * One page: the server answers at most MAX_PAGE_SIZE entries (200 without a `limit`). With
   * `at` (ISO time), the folder as it was then, read-only.
   */
  listFiles(query: ListFilesQuery = {}, opts?: RequestOptions): Promise<FileList> {
    return this.#op('get', '/api/files', { ...opts, query: { ...query } });
  }
  /** Pages of a folder listing (or search) in order, from `query.offset`, until the last. */
  filePages(query: ListFilesQuery = {}, opts?: RequestOptions): AsyncGenerator<FileList> {
    return pages((page) => this.listFiles({ ...query, ...page }, opts), query);
  }
  /** A whole folder listing (or search), however many pages it takes. */
  listAllFiles(query: ListFilesQuery = {}, opts?: RequestOptions): Promise<FileList> {
    return collect(this.filePages(query, opts));
  }
  getFile(id: string, opts?: RequestOptions): Promise<FileResponse> {
    return this.#op('get', '/api/files/{id}', { ...opts, params: { id } });
  }
  /**
   * Makes a folder. `existing: 'reuse'` answers with the folder of that name already there
   * (instead of a 409 name_conflict), which makes re-dropping a folder tree merge into it.
   */
  createFolder(
    name: string,
    parentId?: string | null,
    opts: RequestOptions & { existing?: 'fail' | 'reuse' } = {},
  ): Promise<FileResponse> {
    const { existing, ...rest } = opts;
    const json: CreateFolderBody = {
      name,
      ...(parentId !== undefined ? { parentId } : {}),
      ...(existing ? { existing } : {}),
    };
    return this.#op('post', '/api/folders', { ...rest, json });
  }
  /** The folders from the root down to `id`, `id` last: breadcrumbs in one request. */
  /** A folder's files, subfolders and bytes, all levels down (a file: itself). */
  fileSummary(id: string, opts?: RequestOptions): Promise<FolderSummary> {
    return this.#op('get', '/api/files/{id}/summary', { ...opts, params: { id } });
  }
  filePath(id: string, opts?: RequestOptions): Promise<FilePath> {
    return this.#op('get', '/api/files/{id}/path', { ...opts, params: { id } });
  }
  /** Rename and/or move. */
  updateFile(id: string, patch: PatchFileBody, opts?: RequestOptions): Promise<FileResponse> {
    return this.#op('patch', '/api/files/{id}', { ...opts, params: { id }, json: patch });
  }
  /** Moves a file or folder (with its contents) to the trash. */
  deleteFile(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/files/{id}', { ...opts, params: { id } });
  }
  /**
   * The one-request multipart upload (small files): `POST /api/files` with the text fields first
   * (`parentId`, `sha1`, `mtime`) and then the `file` part, so the server knows them before the bytes.
   */
  uploadSimple(file: Blob, options: UploadSimpleOptions = {}): Promise<FileResponse> {
    const form = new FormData();
    if (options.parentId) form.set('parentId', options.parentId);
    if (options.sha1) form.set('sha1', options.sha1.toLowerCase());
    if (options.mtime !== undefined) form.set('mtime', new Date(options.mtime).toISOString());
    if (options.onConflict) form.set('onConflict', options.onConflict);
    const name = options.name ?? (file as Blob & { name?: string }).name ?? 'file';
    appendFile(form, 'file', file, name);
    return this.#op('post', '/api/files', { signal: options.signal, body: form });
  }

  // ---- versions ----
  /** A file's contents, newest first: the current one (`id: "current"`), then the kept versions. */
  listVersions(id: string, opts?: RequestOptions): Promise<FileVersionList> {
    return this.#op('get', '/api/files/{id}/versions', { ...opts, params: { id } });
  }
  /** URL of a version's bytes (for `<a href>` with cookie auth); `inline` to open it in the browser. */
  versionContentUrl(id: string, versionId: string, options: { inline?: boolean } = {}): string {
    return this.url(
      this.#path('/api/files/{id}/versions/{versionId}/content', { id, versionId }),
      options.inline ? { inline: 1 } : undefined,
    );
  }
  /** Makes a version's content the file's again; the replaced content becomes a version. */
  restoreVersion(id: string, versionId: string, opts?: RequestOptions): Promise<RestoredVersion> {
    return this.#op('post', '/api/files/{id}/versions/{versionId}/restore', {
      ...opts,
      params: { id, versionId },
    });
  }
  /** Deletes a kept version (not the current content). */
  deleteVersion(id: string, versionId: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/files/{id}/versions/{versionId}', {
      ...opts,
      params: { id, versionId },
    });
  }

  // ---- history, point-in-time restore, alerts ----
  /**
   * One page of the changes to your tree, newest first (`folderId`: that folder's whole subtree,
   * else the whole account). Pass the answer's `nextCursor` as `cursor` for the older page.
   */
  history(query: HistoryQuery = {}, opts?: RequestOptions): Promise<HistoryPage> {
    return this.#op('get', '/api/history', { ...opts, query: { ...query } });
  }
  /**
   * Puts a folder's subtree (`folderId: null`: the whole account) back as it was at `at`; entries
   * made since go to the trash, nothing is purged. A large restore answers a job to follow
   * (`waitForJob`).
   */
  restore(body: RestoreBody, opts?: RequestOptions): Promise<RestoreAnswer> {
    // #op types 200/201 answers only; this one's 202 is part of the answer.
    return this.#json(this.#path('/api/restore', {}), { ...opts, method: 'POST', json: body });
  }
  /** A job of yours (a large restore): its state, progress and, once done, its result. */
  job(id: string, opts?: RequestOptions): Promise<UserJob> {
    return this.#op('get', '/api/jobs/{id}', { ...opts, params: { id } });
  }
  /**
   * Polls a job until it is done or failed and returns its last state (a failed job is returned,
   * not thrown: its `error` says why). Aborting the signal stops the polling, not the job.
   */
  async waitForJob(id: string, options: WaitForJobOptions = {}): Promise<UserJob> {
    const { onProgress, intervalMs = 500, signal } = options;
    for (;;) {
      const job = await this.job(id, { signal });
      onProgress?.(job);
      if (job.state !== 'running') return job;
      await sleep(intervalMs, signal);
    }
  }
  /** What looks wrong with your files: many changed at once by one actor (`mass_change`). */
  alerts(opts?: RequestOptions): Promise<AlertList> {
    return this.#op('get', '/api/alerts', opts);
  }
  /** Restores the alert's folder to just before its burst of changes (answers as `restore`). */
  undoAlert(id: string, opts?: RequestOptions): Promise<RestoreAnswer> {
    return this.#json(this.#path('/api/alerts/{id}/undo', { id }), { ...opts, method: 'POST' });
  }
  /** Dismisses an alert: nothing is changed in your files. */
  dismissAlert(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/alerts/{id}', { ...opts, params: { id } });
  }

  // ---- trash ----
  /** One page of the trash (200 entries without a `limit`, at most MAX_PAGE_SIZE). */
  listTrash(query: ListFilesQuery = {}, opts?: RequestOptions): Promise<FileList> {
    return this.#op('get', '/api/trash', { ...opts, query: { ...query } });
  }
  /** The whole trash, however many pages it takes. */
  listAllTrash(query: ListFilesQuery = {}, opts?: RequestOptions): Promise<FileList> {
    return collect(pages((page) => this.listTrash({ ...query, ...page }, opts), query));
  }
  /** Restores a trashed entry; the server answers `{file}` (or 204 → undefined). */
  restoreFromTrash(id: string, opts?: RequestOptions): Promise<FileResponse | undefined> {
    return this.#op('post', '/api/trash/{id}/restore', { ...opts, params: { id } });
  }
  /** Deletes everything in the trash forever; answers how many entries the user had trashed. */
  emptyTrash(opts?: RequestOptions): Promise<{ purged: number }> {
    return this.#op('delete', '/api/trash', opts);
  }
  /** Deletes a trashed entry forever. */
  purgeFromTrash(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/trash/{id}', { ...opts, params: { id } });
  }

  // ---- content ----
  /** URL of an image file's thumbnail (a small WebP; 404 for other files). */
  thumbnailUrl(id: string): string {
    return this.url(this.#path('/api/files/{id}/thumbnail', { id }));
  }
  /**
   * URL of a file's bytes (for `<a href>` / `<img src>` with cookie auth); with `at` (ISO time),
   * the content the file had then.
   */
  contentUrl(id: string, options: { inline?: boolean; at?: string } = {}): string {
    return this.url(this.#path('/api/files/{id}/content', { id }), {
      inline: options.inline ? 1 : undefined,
      at: options.at,
    });
  }
  /** Starts a download; returns the Response (200, 206, or 304 with `ifNoneMatch`) to stream `body` from. */
  download(id: string, options: DownloadOptions & { inline?: boolean; at?: string } = {}): Promise<Response> {
    return this.request(this.#path('/api/files/{id}/content', { id }), {
      signal: options.signal,
      query: { inline: options.inline ? 1 : undefined, at: options.at },
      headers: downloadHeaders(options),
      okStatuses: [304],
    });
  }
  /** HEAD of a file's content: size, ETag, type without the bytes. */
  headContent(id: string, opts?: RequestOptions): Promise<Response> {
    return this.request(this.#path('/api/files/{id}/content', { id }), { ...opts, method: 'HEAD' });
  }
  /** The content row behind a hash (only when the caller owns a file with it). */
  getContent(sha1: string, opts?: RequestOptions): Promise<ContentInfo> {
    return this.#op('get', '/api/contents/{sha1}', { ...opts, params: { sha1 } });
  }

  // ---- two-factor sign-in (TOTP) ----
  totpStatus(opts?: RequestOptions): Promise<TotpStatus> {
    return this.#op('get', '/api/auth/totp', opts);
  }
  /**
   * A new secret and recovery codes (shown this once); active after `confirmTotp`. The account
   * password again: a session alone does not set up a second factor.
   */
  setupTotp(password: string, opts?: RequestOptions): Promise<TotpSetup> {
    return this.#op('post', '/api/auth/totp', { ...opts, json: { password } });
  }
  confirmTotp(code: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('post', '/api/auth/totp/confirm', { ...opts, json: { code } });
  }
  /** Turns two-factor sign-in off; `code` is a current TOTP or a recovery code. */
  disableTotp(code: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/auth/totp', { ...opts, json: { code } });
  }

  // ---- app passwords ----
  /**
   * A new app password; `secret` is shown in this answer only. `files` (the default) never
   * administers; `admin` is for administrators' own scripts.
   */
  createAppPassword(
    name: string,
    opts?: RequestOptions & { scope?: AppPasswordScope },
  ): Promise<CreatedAppPassword> {
    const { scope, ...rest } = opts ?? {};
    return this.#op('post', '/api/auth/app-passwords', {
      ...rest,
      json: scope === undefined ? { name } : { name, scope },
    });
  }
  listAppPasswords(opts?: RequestOptions): Promise<AppPasswordList> {
    return this.#op('get', '/api/auth/app-passwords', opts);
  }
  revokeAppPassword(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/auth/app-passwords/{id}', { ...opts, params: { id } });
  }

  // ---- sessions ----
  /** Your signed-in browsers and devices, newest first; `current` marks this one. */
  listSessions(opts?: RequestOptions): Promise<SessionList> {
    return this.#op('get', '/api/auth/sessions', opts);
  }
  /** Signs one session out: its next request is refused. */
  revokeSession(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/auth/sessions/{id}', { ...opts, params: { id } });
  }
  /** Signs out every session but this one. */
  revokeOtherSessions(opts?: RequestOptions): Promise<SignedOutSessions> {
    return this.#op('delete', '/api/auth/sessions', opts);
  }

  // ---- audit log (admin) ----
  /** Admin: audit events, newest first; pass the answer's `nextCursor` as `cursor` for older ones. */
  auditEvents(query: AuditQuery = {}, opts?: RequestOptions): Promise<AuditPage> {
    return this.#op('get', '/api/admin/audit', { ...opts, query: { ...query } });
  }
  /** Admin: where to download every event the filters match, as JSON lines. */
  auditExportUrl(query: Omit<AuditQuery, 'limit' | 'cursor'> = {}): string {
    return this.url('/api/admin/audit/export', { ...query });
  }

  // ---- chunked uploads ----
  createUpload(body: CreateUploadBody, opts?: RequestOptions): Promise<CreateUploadResponse> {
    return this.#op('post', '/api/uploads', { ...opts, json: body });
  }
  getUpload(uploadId: string, opts?: RequestOptions): Promise<UploadSession> {
    return this.#op('get', '/api/uploads/{uploadId}', { ...opts, params: { uploadId } });
  }
  /**
   * PUT one chunk's bytes, with its checksum (the server requires one: a CRC-32C in
   * `Content-Digest`, or an MD5 in `Content-MD5`). A Blob (a slice of the file picked) is sent
   * as it is, without being read here.
   */
  async putChunk(
    uploadId: string,
    index: number,
    body: ChunkBody,
    checksum?: ChunkChecksum | string | null,
    opts: PutChunkOptions = {},
  ): Promise<void> {
    const path = this.#path('/api/uploads/{uploadId}/chunks/{index}', { uploadId, index });
    await this.#putChunk(path, body, { ...checksumHeaders(checksum) }, opts);
  }
  /**
   * Many small files in one request (`POST /api/files/batch`): each file's `parentId` and `sha1`
   * fields go before its part. All or nothing: an error names the failing file's `index`.
   */
  uploadBatch(files: BatchFile[], opts: RequestOptions = {}): Promise<FileBatchResponse> {
    const form = new FormData();
    for (const f of files) {
      if (f.parentId) form.append('parentId', f.parentId);
      if (f.sha1) form.append('sha1', f.sha1.toLowerCase());
      if (f.mtime !== undefined) form.append('mtime', new Date(f.mtime).toISOString());
      appendFile(form, 'file', f.blob, f.name);
    }
    return this.#op('post', '/api/files/batch', { signal: opts.signal, body: form });
  }
  /** Completes an upload; `sha1` goes in the JSON body (required for a speculative upload). */
  completeUpload(uploadId: string, opts: CompleteUploadOptions = {}): Promise<CompleteUploadResponse> {
    const { sha1, ...rest } = opts;
    const json: CompleteUploadBody | undefined = sha1 ? { sha1: sha1.toLowerCase() } : undefined;
    return this.#op('post', '/api/uploads/{uploadId}/complete', { ...rest, params: { uploadId }, json });
  }
  /** Aborts an upload session; staged bytes are freed. */
  abortUpload(uploadId: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/uploads/{uploadId}', { ...opts, params: { uploadId } });
  }

  // ---- archives ----
  /**
   * Asks for a ZIP of files and folders; the answer's `url` (made absolute here) downloads it
   * with a plain navigation, streamed by the server as it reads the nodes.
   */
  async createArchive(body: CreateArchiveBody, opts?: RequestOptions): Promise<Archive> {
    const archive = await this.#op('post', '/api/archives', { ...opts, json: body });
    return { ...archive, url: this.url(archive.url) };
  }

  // ---- shares ----
  createShare(fileId: string, body: CreateShareBody = {}, opts?: RequestOptions): Promise<{ share: Share }> {
    return this.#op('post', '/api/files/{id}/shares', { ...opts, params: { id: fileId }, json: body });
  }
  listShares(opts?: RequestOptions): Promise<ShareList> {
    return this.#op('get', '/api/shares', opts);
  }
  revokeShare(token: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/shares/{token}', { ...opts, params: { token } });
  }

  // ---- shares with users and groups ----
  /** Who an entry of yours is shared with. */
  listMembers(fileId: string, opts?: RequestOptions) {
    return this.#op('get', '/api/files/{id}/members', { ...opts, params: { id: fileId } });
  }
  /** Shares an entry of yours with a user (`username`) or a group (`group`) as viewer or editor. */
  addMember(
    fileId: string,
    body: ({ username: string } | { group: string }) & { role: 'viewer' | 'editor' },
    opts?: RequestOptions,
  ) {
    return this.#op('post', '/api/files/{id}/members', { ...opts, params: { id: fileId }, json: body });
  }
  setMemberRole(fileId: string, memberId: string, role: 'viewer' | 'editor', opts?: RequestOptions) {
    return this.#op('patch', '/api/files/{id}/members/{memberId}', {
      ...opts,
      params: { id: fileId, memberId },
      json: { role },
    });
  }
  removeMember(fileId: string, memberId: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/files/{id}/members/{memberId}', {
      ...opts,
      params: { id: fileId, memberId },
    });
  }
  /** What other users share with you (directly or through a group). */
  sharedWithMe(opts?: RequestOptions) {
    return this.#op('get', '/api/shared-with-me', opts);
  }
  /** Stops seeing a share (a group's share stays for the group's other members). */
  leaveShare(fileId: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/shared-with-me/{fileId}', { ...opts, params: { fileId } });
  }
  /** Usernames and group names starting with `q`: whom you can share with. */
  directory(q: string, opts?: RequestOptions & { limit?: number }) {
    const { limit, ...rest } = opts ?? {};
    return this.#op('get', '/api/directory', { ...rest, query: { q, limit } });
  }
  listGroups(opts?: RequestOptions) {
    return this.#op('get', '/api/admin/groups', opts);
  }
  createGroup(name: string, opts?: RequestOptions) {
    return this.#op('post', '/api/admin/groups', { ...opts, json: { name } });
  }
  deleteGroup(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/admin/groups/{id}', { ...opts, params: { id } });
  }
  listGroupMembers(id: string, opts?: RequestOptions) {
    return this.#op('get', '/api/admin/groups/{id}/members', { ...opts, params: { id } });
  }
  addGroupMember(id: string, username: string, opts?: RequestOptions) {
    return this.#op('post', '/api/admin/groups/{id}/members', {
      ...opts,
      params: { id },
      json: { username },
    });
  }
  removeGroupMember(id: string, username: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/admin/groups/{id}/members/{username}', {
      ...opts,
      params: { id, username },
    });
  }
  /**
   * No auth needed: what a share link points at — a download link's file, or an upload request's
   * folder (`isUploadRequest` tells them apart).
   */
  getPublicShare(token: string, opts?: RequestOptions): Promise<PublicLink> {
    return this.#op('get', '/api/public/shares/{token}', { ...opts, params: { token } });
  }
  /**
   * One file into an upload request's folder (no auth: the link's token, and its password when it
   * has one). The uploader's name goes before the file, so a bad one is refused before the bytes.
   */
  dropFile(token: string, file: Blob, options: DropFileOptions = {}): Promise<DroppedFile> {
    const form = new FormData();
    if (options.uploader) form.set('name', options.uploader);
    appendFile(form, 'file', file, (file as Blob & { name?: string }).name ?? 'file');
    const path = this.#path('/api/public/shares/{token}/files', { token });
    const headers: Record<string, string> =
      options.password !== undefined ? { 'x-share-password': options.password } : {};
    if (options.onProgress && this.#useXhr && typeof XMLHttpRequest !== 'undefined') {
      return this.#xhrSend<DroppedFile>('POST', path, form, headers, options);
    }
    return this.#op('post', '/api/public/shares/{token}/files', {
      signal: options.signal,
      params: { token },
      body: form,
      headers,
    });
  }
  /**
   * The chunked upload protocol under an upload request's link (`/api/public/shares/:token/uploads`),
   * as an `UploadTransport`: the upload engine (`Upload`, `UploadQueue`) sends a big file through
   * the link with its retries and resume. `uploader` rides on the session's creation; the password
   * goes with every request. The server never answers "instant" there, and `complete` tells only
   * the name and size the file got: the `file` it resolves to carries no more than those.
   */
  dropUploads(token: string, options: Omit<DropFileOptions, 'onProgress' | 'signal'> = {}): UploadTransport {
    const headers: Record<string, string> =
      options.password !== undefined ? { 'x-share-password': options.password } : {};
    return {
      createUpload: (body, opts) =>
        this.#op('post', '/api/public/shares/{token}/uploads', {
          ...opts,
          params: { token },
          headers,
          json: {
            name: body.name,
            size: body.size,
            ...(body.sha1 ? { sha1: body.sha1 } : {}),
            ...(body.mtime ? { mtime: body.mtime } : {}),
            ...(options.uploader ? { uploader: options.uploader } : {}),
          },
        }),
      getUpload: (uploadId, opts) =>
        this.#op('get', '/api/public/shares/{token}/uploads/{uploadId}', {
          ...opts,
          params: { token, uploadId },
          headers,
        }),
      putChunk: async (uploadId, index, body, checksum, opts = {}) => {
        const path = this.#path('/api/public/shares/{token}/uploads/{uploadId}/chunks/{index}', {
          token,
          uploadId,
          index,
        });
        await this.#putChunk(path, body, { ...headers, ...checksumHeaders(checksum) }, opts);
      },
      completeUpload: async (uploadId, opts = {}) => {
        const { sha1, ...rest } = opts;
        const dropped = await this.#op('post', '/api/public/shares/{token}/uploads/{uploadId}/complete', {
          ...rest,
          params: { token, uploadId },
          headers,
          json: sha1 ? { sha1: sha1.toLowerCase() } : {},
        });
        return { status: 'complete', file: dropped as unknown as CompleteUploadResponse['file'] };
      },
      abortUpload: (uploadId, opts) =>
        this.#opVoid('delete', '/api/public/shares/{token}/uploads/{uploadId}', {
          ...opts,
          params: { token, uploadId },
          headers,
        }),
    };
  }
  publicShareContentUrl(token: string): string {
    return this.url(this.#path('/api/public/shares/{token}/content', { token }));
  }
  /**
   * A short-lived URL that downloads a share with a plain navigation (so a browser streams it to
   * disk itself, Range included). The password travels in `X-Share-Password`, never in a URL;
   * the grant in the returned URL stands in for it. An absolute-path URL is made absolute here.
   */
  async createShareGrant(token: string, password?: string, opts?: RequestOptions): Promise<ShareGrant> {
    const grant: ShareGrant = await this.#op('post', '/api/public/shares/{token}/grants', {
      ...opts,
      params: { token },
      headers: password !== undefined ? { 'x-share-password': password } : {},
    });
    return grant.url.startsWith('/') ? { ...grant, url: this.url(grant.url) } : grant;
  }

  // ---- admin / ops ----
  listUsers(query: AdminListQuery = {}, opts?: RequestOptions): Promise<AdminUserList> {
    return this.#op('get', '/api/admin/users', { ...opts, query: { ...query } });
  }
  /** `quotaBytes`: null follows the server's default, 0 lifts the quota, else bytes. */
  setUserQuota(id: string, quotaBytes: number | null, opts?: RequestOptions): Promise<AdminUserResponse> {
    return this.#op('patch', '/api/admin/users/{id}', { ...opts, params: { id }, json: { quotaBytes } });
  }
  /** Admin: sets a user's password and signs out every session of theirs. */
  resetUserPassword(id: string, newPassword: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('post', '/api/admin/users/{id}/password', {
      ...opts,
      params: { id },
      json: { newPassword },
    });
  }
  /** Admin: removes a user's two-factor sign-in (they lost their authenticator and codes). */
  resetUserTwoFactor(id: string, opts?: RequestOptions): Promise<void> {
    return this.#opVoid('delete', '/api/admin/users/{id}/two-factor', { ...opts, params: { id } });
  }
  /** Admin: turns an account off (its sessions end, its app passwords stop working) or on again. */
  setUserDisabled(id: string, disabled: boolean, opts?: RequestOptions): Promise<AdminUserResponse> {
    return disabled
      ? this.#op('post', '/api/admin/users/{id}/disable', { ...opts, params: { id } })
      : this.#op('post', '/api/admin/users/{id}/enable', { ...opts, params: { id } });
  }
  listNodes(opts?: RequestOptions): Promise<NodeList> {
    return this.#op('get', '/api/nodes', opts);
  }
  /** Stops new writes to a node and lets repair move its contents elsewhere. */
  drainNode(id: string, opts?: RequestOptions): Promise<NodeResponse> {
    return this.#op('post', '/api/nodes/{id}/drain', { ...opts, params: { id } });
  }
  undrainNode(id: string, opts?: RequestOptions): Promise<NodeResponse> {
    return this.#op('post', '/api/nodes/{id}/undrain', { ...opts, params: { id } });
  }
  /** Admin: the dashboard's series (hourly, or daily for 30d) and a snapshot of now. */
  adminStats(range: StatsRange = '24h', opts?: RequestOptions): Promise<StatsResponse> {
    return this.#op('get', '/api/admin/stats', { ...opts, query: { range } });
  }
  /** Admin: samples now instead of at the next minute. */
  sampleStats(opts?: RequestOptions): Promise<void> {
    return this.#opVoid('post', '/api/admin/stats/sample', opts);
  }
  healthz(opts?: RequestOptions): Promise<boolean> {
    return this.#probe(this.#path('/healthz', {}), opts);
  }
  readyz(opts?: RequestOptions): Promise<boolean> {
    return this.#probe(this.#path('/readyz', {}), opts);
  }

  /** A 503 is an answer (not ready), not a failure: only the status matters. */
  async #probe(path: string, opts?: RequestOptions): Promise<boolean> {
    const res = await this.request(path, { ...opts, okStatuses: [503] });
    await res.body?.cancel().catch(() => {});
    return res.ok;
  }

  async #putChunk(
    path: string,
    body: ChunkBody,
    headers: Record<string, string>,
    opts: PutChunkOptions,
  ): Promise<void> {
    const put = { ...headers, 'content-type': 'application/octet-stream' };
    const size = body instanceof Blob ? body.size : body.byteLength;
    if (opts.onProgress && this.#useXhr && typeof XMLHttpRequest !== 'undefined') {
      // A Blob, not the typed array: Chromium sends an ArrayBuffer body several times slower
      // than a Blob of the same bytes (10 x 1 MiB PUTs: ~2.0 s against ~0.6 s, measured in e2e).
      const blob = body instanceof Blob ? body : new Blob([body as Uint8Array<ArrayBuffer>]);
      return this.#xhrSend<void>('PUT', path, blob, put, { ...opts, total: size });
    }
    await this.#void(path, {
      signal: opts.signal,
      method: 'PUT',
      headers: put,
      body: body as Blob | Uint8Array<ArrayBuffer>,
    });
    opts.onProgress?.(size);
  }

  /** A request through XMLHttpRequest, for the upload progress fetch does not report. */
  #xhrSend<T>(
    method: 'PUT' | 'POST',
    path: string,
    body: Blob | FormData,
    headers: Record<string, string>,
    opts: PutChunkOptions & { total?: number },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const signal = opts.signal;
      if (signal?.aborted) return reject(signal.reason);
      const xhr = new XMLHttpRequest();
      xhr.open(method, this.url(path));
      xhr.withCredentials = this.#credentials === 'include';
      for (const [k, v] of Object.entries({ ...this.#authHeaders(), ...headers })) xhr.setRequestHeader(k, v);
      const onAbort = () => xhr.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      xhr.upload.onprogress = (ev) => opts.onProgress?.(ev.loaded);
      xhr.onload = () => {
        done();
        if (xhr.status >= 200 && xhr.status < 300) {
          if (opts.total !== undefined) opts.onProgress?.(opts.total);
          let answer: T = undefined as T;
          try {
            answer = (
              xhr.status === 204 || xhr.responseText === '' ? undefined : JSON.parse(xhr.responseText)
            ) as T;
          } catch {
            reject(new NetworkError(`${method} ${path}: the response body was not JSON`));
            return;
          }
          resolve(answer);
          return;
        }
        const res = new Response(xhr.status === 204 ? null : xhr.responseText, {
          status: xhr.status,
          statusText: xhr.statusText,
          headers: parseXhrHeaders(xhr.getAllResponseHeaders()),
        });
        ApiError.fromResponse(res).then(reject, reject);
      };
      xhr.onerror = () => {
        done();
        reject(new NetworkError(`${method} ${path} failed`));
      };
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => {
        done();
        reject(signal?.reason ?? new DOMException('This operation was aborted', 'AbortError'));
      };
      xhr.send(body);
    });
  }
}

/**
 * The slice of `DfsApi` the upload engine needs; tests and alternative transports implement it.
 * Without `uploadSimple` every file takes the chunked path.
 */
export type UploadTransport = Pick<
  DfsApi,
  'createUpload' | 'getUpload' | 'putChunk' | 'completeUpload' | 'abortUpload'
> &
  Partial<Pick<DfsApi, 'uploadSimple' | 'uploadBatch'>>;

function downloadHeaders(options: DownloadOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (options.range) h.range = options.range;
  if (options.ifNoneMatch) h['if-none-match'] = options.ifNoneMatch;
  return h;
}

function parseXhrHeaders(raw: string): Headers {
  const h = new Headers();
  for (const line of raw.trim().split(/[\r\n]+/)) {
    const i = line.indexOf(':');
    if (i > 0) h.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return h;
}

/**
 * Walks a paged listing with `limit`/`offset` (`query.limit` is the page size, MAX_PAGE_SIZE by
 * default) until a page comes back short or `total` is reached.
 */
async function* pages(
  fetchPage: (page: { limit: number; offset: number }) => Promise<FileList>,
  query: ListFilesQuery,
): AsyncGenerator<FileList> {
  const limit = Math.min(query.limit ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
  for (let offset = query.offset ?? 0; ; ) {
    const page = await fetchPage({ limit, offset });
    yield page;
    offset += page.items.length;
    if (page.items.length < limit || offset >= page.total) return;
  }
}

async function collect(source: AsyncIterable<FileList>): Promise<FileList> {
  const items: FileList['items'] = [];
  let total = 0;
  for await (const page of source) {
    items.push(...page.items);
    total = page.total;
  }
  return { items, total };
}
