import {
  ACTIVE_STATES,
  FINAL_STATES,
  FolderIndex,
  fileSourceFromBlob,
  fingerprint,
  type NameTaken,
  type NameTakenChoice,
  type QueueTotals,
  type ResumeEntry,
  TransferRate,
  totalsOf,
  UploadQueue,
  type UploadSnapshot,
} from '@dfs/client';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { api } from '../api/index.ts';
import { invalidateFolder, invalidateVersions } from '../api/query.ts';
import { type BatchRecord, batchStore } from '../composables/batch-store.ts';
import type { PickedBatch, PickedFile } from '../composables/collect-files.ts';
import { errorText } from '../composables/errors.ts';
import {
  crc32cOfBlobInWorkers,
  hashInWorkers,
  proofOfBlobInWorkers,
  sha1OfBlobInWorkers,
} from '../composables/hash-pool.ts';
import { resumeStore } from '../composables/resume-store.ts';
import { useAuthStore } from './auth.ts';

export interface UploadRow extends UploadSnapshot {
  /** Where the file goes, relative to the folder it was dropped on ("photos/2024/a.jpg"). */
  path: string;
  /** Chunks the server already held when this run started (resumed uploads). */
  resumedChunks: number;
  /** Time spent hashing in this tab; null when the SHA-1 came from the resume store. */
  hashMs: number | null;
}

export interface ResumeMatch {
  fingerprint: string;
  name: string;
  size: number;
  entry: ResumeEntry;
}

interface ResumeOffer {
  matches: ResumeMatch[];
  decide: (choice: 'continue' | 'restart' | 'cancel') => void;
}

/** "Replace or keep both?" for one upload whose name the target folder already holds. */
export interface NameQuestion {
  /** The upload's name and where it goes, relative to the folder it was dropped on. */
  name: string;
  path: string;
  size: number;
  /** The file that holds the name. */
  existing: NameTaken['existing'];
  /** The batch has other files: offer "do this for all remaining conflicts". */
  offerAll: boolean;
  decide: (choice: NameTakenChoice, forAll: boolean) => void;
}

/** One added batch's answer to its name conflicts, once "for all" was ticked. */
interface ConflictPolicy {
  forAll: NameTakenChoice | null;
}

interface PendingQuestion {
  question: NameQuestion;
  policy: ConflictPolicy;
  resolve: (choice: NameTakenChoice) => void;
}

/** A batch of this tab, and its uploads. */
interface RunningBatch {
  record: BatchRecord;
  ids: Set<string>;
  done: Set<string>;
  saveTimer: ReturnType<typeof setTimeout> | null;
}

export interface AddBatchOptions {
  /** The unfinished batch (from the notice) this one continues: no resume question, its record goes. */
  continues?: BatchRecord;
}

/** Renders of the upload panel at most every this many ms. */
const MIN_FLUSH_MS = 100;

export const useUploadStore = defineStore('uploads', () => {
  const queue = new UploadQueue({
    transport: api,
    hashFile: hashInWorkers,
    sha1OfBlob: sha1OfBlobInWorkers,
    crc32cOfBlob: crc32cOfBlobInWorkers,
    proofOfBlob: proofOfBlobInWorkers,
    resumeStore,
    concurrency: 2,
    hashConcurrency: 1,
    // Bounds both requests and chunk buffers in memory across all files.
    requestConcurrency: 6,
    parallelism: 4,
  });

  const rows = shallowRef<UploadRow[]>([]);
  const totals = shallowRef<QueueTotals>(queue.totals());
  /** Folder batches still creating their folder tree. */
  const preparing = ref(0);
  const collapsed = ref(false);
  /** The upload panel's height on screen (0 when hidden): pages keep their content above it. */
  const panelHeight = ref(0);
  /** Folders (null = root) that received files since the last invalidation. */
  const changedFolders = new Set<string | null>();
  let invalidateTimer: ReturnType<typeof setTimeout> | null = null;
  /** Unfinished uploads remembered in IndexedDB that no file in this tab matches yet. */
  const pending = ref<ResumeMatch[]>([]);
  const resumeOffer = shallowRef<ResumeOffer | null>(null);
  /** The name conflict on screen; the others wait their turn in `questions`. */
  const nameQuestion = shallowRef<NameQuestion | null>(null);
  const questions: PendingQuestion[] = [];
  const errors = ref<string[]>([]);
  /** Where a drop anywhere on the page goes: the folder the file browser shows. */
  const dropTarget = ref<{ id: string | null; name: string | null }>({ id: null, name: null });
  /** Batch and folder uploads of an earlier page that did not finish (IndexedDB). */
  const unfinishedBatches = ref<BatchRecord[]>([]);
  const batches = new Map<string, RunningBatch>();
  const batchOf = new Map<string, RunningBatch>();
  const auth = useAuthStore();

  const meta = new Map<
    string,
    { path: string; resumedChunks: number; hashStart: number | null; hashMs: number | null }
  >();
  let frame = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastFlush = 0;
  /** Rows by upload id; one is rebuilt only when its upload reported a change, so Vue skips the rest. */
  const rowCache = new Map<string, UploadRow>();
  const dirty = new Set<string>();
  /** Bytes sent per second across every file (a folder's small files have no speed of their own). */
  const rate = new TransferRate();

  const hasWork = computed(() => totals.value.active + totals.value.queued > 0 || preparing.value > 0);
  const visible = computed(
    () => rows.value.length > 0 || preparing.value > 0 || unfinishedBatches.value.length > 0,
  );

  function toRow(snap: UploadSnapshot): UploadRow {
    const m = meta.get(snap.id);
    return {
      ...snap,
      path: m?.path ?? snap.name,
      resumedChunks: m?.resumedChunks ?? 0,
      hashMs: m?.hashMs ?? null,
    };
  }

  function flush(): void {
    frame = 0;
    lastFlush = performance.now();
    const list = queue.list();
    const next: UploadRow[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const u = list[i]!;
      let row = rowCache.get(u.id);
      if (!row || dirty.has(u.id)) {
        row = toRow(u.snapshot());
        rowCache.set(u.id, row);
      }
      next[i] = row;
    }
    dirty.clear();
    if (rowCache.size > list.length) {
      const ids = new Set(list.map((u) => u.id));
      for (const id of rowCache.keys()) if (!ids.has(id)) rowCache.delete(id);
    }
    rows.value = next;
    totals.value = totalsOf(next, { rate: rate.sample(next, performance.now()) });
  }

  /**
   * Coalesces progress events (dozens per second per file, thousands for a folder of small files)
   * into one render per frame, and at most ten a second: a render re-reads every row.
   */
  function schedule(id?: string): void {
    if (id !== undefined) dirty.add(id);
    if (frame || timer) return;
    const raf = (fn: () => void) =>
      typeof requestAnimationFrame === 'function' ? requestAnimationFrame(fn) : 0;
    const wait = MIN_FLUSH_MS - (performance.now() - lastFlush);
    if (wait > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        schedule();
      }, wait);
      return;
    }
    frame = raf(flush);
    if (!frame) flush();
  }

  queue.on('added', (u) => schedule(u.id));
  queue.on('removed', () => schedule());
  queue.on('state', (snap) => schedule(snap.id));
  queue.on('progress', (snap) => schedule(snap.id));
  queue.on('state', (snap, previous) => {
    const m = meta.get(snap.id);
    if (!m) return;
    if (snap.state === 'uploading' && previous === 'checking') m.resumedChunks = snap.chunksDone;
    if (snap.state === 'hashing') m.hashStart = performance.now();
    else if (previous === 'hashing' && m.hashStart !== null) {
      m.hashMs = (m.hashMs ?? 0) + (performance.now() - m.hashStart);
      m.hashStart = null;
    }
  });
  queue.on('state', (snap) => {
    const b = batchOf.get(snap.id);
    if (!b) return;
    if (snap.state === 'done') b.done.add(snap.id);
    if (FINAL_STATES.has(snap.state)) settleBatch(b);
  });
  queue.on('removed', (id) => {
    const b = batchOf.get(id);
    if (!b) return;
    b.ids.delete(id);
    batchOf.delete(id);
    settleBatch(b);
  });
  queue.on('done', (file, snap) => {
    const fp = queue.get(snap.id)?.fingerprint;
    pending.value = pending.value.filter((p) => p.fingerprint !== fp);
    markChanged(file.parentId);
    // A replace made the file's old content a version.
    invalidateVersions(file.id);
  });

  // Speed and ETA are moving averages: without a fresh render they would freeze on a stall.
  setInterval(() => {
    if (!hasWork.value) return;
    for (const u of queue.list()) if (ACTIVE_STATES.has(u.state)) dirty.add(u.id);
    schedule();
  }, 1000);

  /**
   * A file landed in `parentId`: its listing is stale. Batched, so a folder of 1,000 small files
   * refetches the listing a few times, not 1,000.
   */
  function markChanged(parentId: string | null): void {
    changedFolders.add(parentId);
    if (invalidateTimer !== null) return;
    invalidateTimer = setTimeout(() => {
      invalidateTimer = null;
      for (const id of changedFolders) invalidateFolder(id);
      changedFolders.clear();
    }, 400);
  }

  /**
   * A batch whose every file is done (or was canceled by the user) is forgotten; otherwise its
   * count of arrived files is saved, at most once a second (a folder of small files finishes
   * dozens a second).
   */
  function settleBatch(b: RunningBatch): void {
    b.record.done = b.done.size;
    const over = [...b.ids].every((id) => {
      const u = queue.get(id);
      return !u || FINAL_STATES.has(u.state);
    });
    if (over) {
      if (b.saveTimer) clearTimeout(b.saveTimer);
      b.saveTimer = null;
      batches.delete(b.record.id);
      for (const id of b.ids) batchOf.delete(id);
      void batchStore.delete(b.record.id).catch(() => {});
      return;
    }
    b.saveTimer ??= setTimeout(() => {
      b.saveTimer = null;
      if (batches.has(b.record.id)) void batchStore.save(b.record).catch(() => {});
    }, 1000);
  }

  function sameRoots(a: string[], b: string[]): boolean {
    return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
  }

  async function forgetBatch(record: BatchRecord): Promise<void> {
    unfinishedBatches.value = unfinishedBatches.value.filter((r) => r.id !== record.id);
    await batchStore.delete(record.id).catch(() => {});
  }

  async function refreshPending(): Promise<void> {
    const userId = auth.user?.id;
    if (userId) {
      try {
        const list = await batchStore.list(userId);
        unfinishedBatches.value = list.filter((r) => !batches.has(r.id));
      } catch {
        unfinishedBatches.value = [];
      }
    }
    try {
      const list = await resumeStore.list();
      const running = new Set(queue.list().map((u) => u.fingerprint));
      pending.value = list
        .filter((x) => !running.has(x.fingerprint))
        .map(({ fingerprint: fp, entry }) => ({
          fingerprint: fp,
          name: entry.name,
          size: entry.size,
          entry,
        }));
    } catch {
      pending.value = [];
    }
  }

  async function forgetPending(match: ResumeMatch): Promise<void> {
    await resumeStore.delete(match.fingerprint);
    if (match.entry.uploadId) await api.abortUpload(match.entry.uploadId).catch(() => {});
    pending.value = pending.value.filter((p) => p.fingerprint !== match.fingerprint);
  }

  async function findResumable(files: PickedFile[]): Promise<ResumeMatch[]> {
    const out: ResumeMatch[] = [];
    const running = new Set(queue.list().map((u) => (u.state === 'canceled' ? '' : u.fingerprint)));
    // One read of the store, not one IndexedDB transaction per file of a dropped folder.
    const remembered = await resumeStore.list().catch(() => []);
    if (remembered.length === 0) return out;
    const known = new Map(remembered.map((x) => [x.fingerprint, x.entry]));
    for (const { file } of files) {
      const fp = fingerprint(fileSourceFromBlob(file));
      if (running.has(fp)) continue;
      const entry = known.get(fp);
      if (entry && entry.size === file.size)
        out.push({ fingerprint: fp, name: file.name, size: file.size, entry });
    }
    return out;
  }

  function askResume(matches: ResumeMatch[]): Promise<'continue' | 'restart' | 'cancel'> {
    return new Promise((resolve) => {
      resumeOffer.value = {
        matches,
        decide: (choice) => {
          resumeOffer.value = null;
          resolve(choice);
        },
      };
    });
  }

  function showNextQuestion(): void {
    nameQuestion.value = questions[0]?.question ?? null;
  }

  /**
   * The `onNameTaken` of one batch: questions wait in line (two uploads run at once), one on
   * screen at a time; once "for all" is ticked, the batch's later conflicts, and those already
   * waiting, take that answer without asking.
   */
  function conflictAsker(policy: ConflictPolicy, batchSize: number) {
    return (taken: NameTaken): Promise<NameTakenChoice> => {
      if (policy.forAll) return Promise.resolve(policy.forAll);
      return new Promise<NameTakenChoice>((resolve) => {
        const pending: PendingQuestion = {
          policy,
          resolve,
          question: {
            name: taken.name,
            path: meta.get(taken.id)?.path ?? taken.name,
            size: taken.size,
            existing: taken.existing,
            offerAll: batchSize > 1,
            decide: (choice, forAll) => {
              if (forAll) policy.forAll = choice;
              for (let i = questions.length - 1; i >= 0; i--) {
                const q = questions[i]!;
                if (q === pending || (forAll && q.policy === policy)) {
                  questions.splice(i, 1);
                  q.resolve(choice);
                }
              }
              showNextQuestion();
            },
          },
        };
        // A paused or canceled upload's question goes away (its upload stops anyway).
        taken.signal.addEventListener(
          'abort',
          () => {
            const i = questions.indexOf(pending);
            if (i < 0) return;
            questions.splice(i, 1);
            resolve('skip');
            showNextQuestion();
          },
          { once: true },
        );
        questions.push(pending);
        showNextQuestion();
      });
    };
  }

  /** Creates the batch's folder tree under `parentId`; folders that already exist are reused (merged into). */
  async function createFolders(folders: string[][], parentId: string | null): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const chain of folders) {
      const key = chain.join('/');
      const parentKey = chain.slice(0, -1).join('/');
      const parent = chain.length === 1 ? parentId : (ids.get(parentKey) ?? null);
      const name = chain[chain.length - 1]!;
      ids.set(key, (await api.createFolder(name, parent, { existing: 'reuse' })).file.id);
    }
    return ids;
  }

  /**
   * Uploads a picked or dropped batch (files and whole folders) into `parentId`. A file already
   * in its target folder under the same name with the same content is skipped, not stored again
   * as `name (1)`: sending a folder again after an interruption sends only what is missing.
   * Other content under a taken name asks "Replace or keep both?" (`nameQuestion`) before it is sent.
   */
  async function addBatch(
    batch: PickedBatch,
    parentId: string | null,
    options: AddBatchOptions = {},
  ): Promise<void> {
    if (batch.files.length === 0 && batch.folders.length === 0) return;
    collapsed.value = false;
    const matches = await findResumable(batch.files);
    if (matches.length > 0) {
      const choice = options.continues ? 'continue' : await askResume(matches);
      if (choice === 'cancel') return;
      if (choice === 'restart') for (const m of matches) await forgetPending(m);
    }
    preparing.value++;
    let folderIds: Map<string, string>;
    try {
      folderIds = await createFolders(batch.folders, parentId);
    } catch (err) {
      errors.value = [...errors.value, errorText(err)];
      return;
    } finally {
      preparing.value--;
    }
    if (batch.folders.length > 0) markChanged(parentId);
    // What the target folders hold, listed once per folder for this batch.
    const index = new FolderIndex(
      async (id) => (await api.listAllFiles(id === null ? {} : { parentId: id })).items,
    );
    const ids: string[] = [];
    // The index the uploads look their names up in is the server's listing, fetched for this
    // batch, not the page's cache: the cache may hold one sort's first page only, or be stale.
    const onNameTaken = conflictAsker({ forAll: null }, batch.files.length);
    for (const { file, dirs } of batch.files) {
      const target = dirs.length > 0 ? (folderIds.get(dirs.join('/')) ?? parentId) : parentId;
      const upload = queue.add(fileSourceFromBlob(file), {
        parentId: target,
        skipIdentical: index,
        onNameTaken,
      });
      ids.push(upload.id);
      meta.set(upload.id, {
        path: [...dirs, file.name].join('/'),
        resumedChunks: 0,
        hashStart: null,
        hashMs: null,
      });
    }
    await rememberBatch(batch, parentId, ids, options.continues);
    pending.value = pending.value.filter((p) => !matches.some((m) => m.fingerprint === p.fingerprint));
    flush();
  }

  /**
   * Several files or a folder: remembered until every file is done, so a reload or a closed tab
   * in the middle shows up as an unfinished upload to continue. An earlier unfinished record of
   * the same files into the same folder is replaced.
   */
  async function rememberBatch(
    batch: PickedBatch,
    parentId: string | null,
    ids: string[],
    continues: BatchRecord | undefined,
  ): Promise<void> {
    const userId = auth.user?.id;
    if (!userId || (batch.files.length < 2 && batch.folders.length === 0)) return;
    const roots = [...new Set(batch.files.map((f) => f.dirs[0] ?? f.file.name))];
    for (const chain of batch.folders) if (!roots.includes(chain[0]!)) roots.push(chain[0]!);
    const stale = unfinishedBatches.value.filter(
      (r) => r.id === continues?.id || (r.parentId === parentId && sameRoots(r.roots, roots)),
    );
    for (const r of stale) await forgetBatch(r);
    const record: BatchRecord = {
      id: `b${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
      userId,
      parentId,
      parentName: continues?.parentName ?? (dropTarget.value.id === parentId ? dropTarget.value.name : null),
      roots,
      folders: batch.folders.length > 0,
      files: batch.files.length,
      bytes: batch.files.reduce((n, f) => n + f.file.size, 0),
      done: 0,
      startedAt: Date.now(),
      savedAt: Date.now(),
    };
    const running: RunningBatch = { record, ids: new Set(ids), done: new Set(), saveTimer: null };
    batches.set(record.id, running);
    for (const id of ids) batchOf.set(id, running);
    await batchStore.save(record).catch(() => {});
    // Files that settled while the record was being written.
    for (const id of ids) if (queue.get(id)?.state === 'done') running.done.add(id);
    settleBatch(running);
  }

  function pause(id: string): void {
    queue.get(id)?.pause();
  }
  function resume(id: string): void {
    queue.get(id)?.resume();
  }
  function retry(id: string): void {
    queue.get(id)?.retry();
  }
  async function cancel(id: string): Promise<void> {
    await queue.get(id)?.cancel();
    flush();
  }
  async function remove(id: string): Promise<void> {
    await queue.remove(id);
    meta.delete(id);
    flush();
  }
  function pauseAll(): void {
    queue.pauseAll();
  }
  function resumeAll(): void {
    queue.resumeAll();
    queue.retryFailed();
  }
  async function cancelAll(): Promise<void> {
    await queue.cancelAll();
    flush();
  }
  function clearFinished(): void {
    queue.clearFinished();
    for (const id of [...meta.keys()]) if (!queue.get(id)) meta.delete(id);
    flush();
  }
  function dismissError(i: number): void {
    errors.value = errors.value.filter((_, j) => j !== i);
  }

  return {
    rows,
    totals,
    preparing,
    collapsed,
    panelHeight,
    visible,
    hasWork,
    pending,
    resumeOffer,
    nameQuestion,
    errors,
    dropTarget,
    unfinishedBatches,
    forgetBatch,
    addBatch,
    refreshPending,
    forgetPending,
    markChanged,
    pause,
    resume,
    retry,
    cancel,
    remove,
    pauseAll,
    resumeAll,
    cancelAll,
    clearFinished,
    dismissError,
  };
});
