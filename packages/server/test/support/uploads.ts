import type { TestApp } from './app.ts';
import { chunkChecksum, chunksOf, proofFor, sha1 } from './bytes.ts';

export const CHUNK = 64 * 1024;

/** A `POST /api/files` body: the text fields, then the file part. */
export function multipartForm(
  name: string,
  data: Buffer,
  parentId?: string,
  fields: Record<string, string> = {},
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----dfs-test-boundary';
  const parts: Buffer[] = [];
  for (const [field, value] of Object.entries({ ...(parentId ? { parentId } : {}), ...fields })) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n${value}\r\n`),
    );
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return {
    payload: Buffer.concat(parts),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

export type BatchItem = { name: string; data: Buffer; sha1?: string; parentId?: string };

/** `POST /api/files/batch`: many small files in one form, each with its own folder and SHA-1. */
export function postBatchForm(t: TestApp, headers: Record<string, string>, items: BatchItem[]) {
  const boundary = '----dfs-batch-boundary';
  const parts: Buffer[] = [];
  const field = (name: string, value: string) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  for (const item of items) {
    if (item.parentId) parts.push(field('parentId', item.parentId));
    if (item.sha1) parts.push(field('sha1', item.sha1));
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${item.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      item.data,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return t.app.inject({
    method: 'POST',
    url: '/api/files/batch',
    payload: Buffer.concat(parts),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...headers },
  });
}

/** `POST /api/files` with `multipartForm`'s body, as the user whose `headers` these are. */
export function postForm(
  t: TestApp,
  headers: Record<string, string>,
  name: string,
  data: Buffer,
  parentId?: string,
  fields: Record<string, string> = {},
) {
  const form = multipartForm(name, data, parentId, fields);
  return t.app.inject({
    method: 'POST',
    url: '/api/files',
    payload: form.payload,
    headers: { ...form.headers, ...headers },
  });
}

/** Drives the chunked upload contract end to end the way a client would. */
export function uploader(t: TestApp, headers: Record<string, string>) {
  const api = {
    create: (body: object) => t.app.inject({ method: 'POST', url: '/api/uploads', headers, payload: body }),
    put: (uploadId: string, index: number, bytes: Buffer, extra: Record<string, string> = {}) =>
      t.app.inject({
        method: 'PUT',
        url: `/api/uploads/${uploadId}/chunks/${index}`,
        headers: {
          ...headers,
          'content-type': 'application/octet-stream',
          ...chunkChecksum(bytes, extra),
          ...extra,
        },
        payload: bytes,
      }),
    get: (uploadId: string) => t.app.inject({ url: `/api/uploads/${uploadId}`, headers }),
    complete: (uploadId: string) =>
      t.app.inject({ method: 'POST', url: `/api/uploads/${uploadId}/complete`, headers }),
    abort: (uploadId: string) => t.app.inject({ method: 'DELETE', url: `/api/uploads/${uploadId}`, headers }),
    /** Uploads `data` fully (answering a challenge if the content is known); returns the file. */
    async upload(data: Buffer, name: string, parentId?: string, extra: object = {}) {
      const hash = sha1(data);
      const created = await api.create({ name, size: data.length, sha1: hash, parentId, ...extra });
      const body = created.json();
      if (body.status === 'challenge') {
        const proof = proofFor(data, body.challenge);
        const instant = await api.create({
          name,
          size: data.length,
          sha1: hash,
          parentId,
          ...extra,
          proof: { challengeId: body.challenge.id, sha1: proof },
        });
        return { ...instant.json().file, instant: true };
      }
      if (created.statusCode >= 300) throw new Error(`create failed: ${created.body}`);
      const chunks = chunksOf(data, body.chunkSize);
      await Promise.all(
        chunks.map(async (chunk, i) => {
          if (body.receivedChunks.includes(i)) return;
          const res = await api.put(body.uploadId, i, chunk);
          if (res.statusCode !== 204) throw new Error(`chunk ${i}: ${res.body}`);
        }),
      );
      const done = await api.complete(body.uploadId);
      if (done.statusCode !== 201) throw new Error(`complete failed: ${done.body}`);
      return { ...done.json().file, instant: false };
    },
  };
  return api;
}
