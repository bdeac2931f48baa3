import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, ServerProcess } from '@dfs/cluster/app-process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, md5Base64, random, sha1 } from '../support/bytes.ts';
import { testDatabaseUrl } from '../support/db.ts';

const CHUNK = 256 * 1024;

describe('a killed server loses nothing it acknowledged', () => {
  let dataDir: string;
  let database: Awaited<ReturnType<typeof testDatabaseUrl>>;
  let server: ServerProcess;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'dfs-crash-'));
    database = await testDatabaseUrl();
    server = new ServerProcess({
      DFS_PORT: String(await freePort()),
      DFS_DATA_DIR: dataDir,
      DFS_DB_URL: database.url,
      DFS_CHUNK_SIZE: String(CHUNK),
    });
    await server.start();
  });
  afterAll(async () => {
    await server.kill();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('resumes an upload after SIGKILL with every acknowledged chunk, and completes it', async () => {
    const api = async (
      method: string,
      url: string,
      init: { body?: BodyInit; headers?: Record<string, string> } = {},
    ) => fetch(`${server.baseUrl}${url}`, { method, ...init });
    const json = { 'content-type': 'application/json' };
    await api('POST', '/api/auth/signup', {
      body: JSON.stringify({ username: 'crash', password: 'password-123' }),
      headers: json,
    });
    const { token } = await (
      await api('POST', '/api/auth/signin', {
        body: JSON.stringify({ username: 'crash', password: 'password-123' }),
        headers: json,
      })
    ).json();
    const auth = { authorization: `Bearer ${token}` };

    const data = random(CHUNK * 6 + 99);
    const chunks = chunksOf(data, CHUNK);
    const created = await (
      await api('POST', '/api/uploads', {
        body: JSON.stringify({ name: 'survivor.bin', size: data.length, sha1: sha1(data) }),
        headers: { ...auth, ...json },
      })
    ).json();
    const put = (i: number) =>
      api('PUT', `/api/uploads/${created.uploadId}/chunks/${i}`, {
        body: new Uint8Array(chunks[i] as Buffer),
        headers: {
          ...auth,
          'content-type': 'application/octet-stream',
          'content-md5': md5Base64(chunks[i] as Buffer),
        },
      });
    const acknowledged = [0, 2, 3, 5];
    for (const i of acknowledged) expect((await put(i)).status).toBe(204);

    await server.kill('SIGKILL');
    await server.start();

    // The session token, the upload and every acknowledged chunk are still there.
    const again = await (
      await api('POST', '/api/uploads', {
        body: JSON.stringify({ name: 'survivor.bin', size: data.length, sha1: sha1(data) }),
        headers: { ...auth, ...json },
      })
    ).json();
    expect(again).toMatchObject({
      status: 'resumed',
      uploadId: created.uploadId,
      receivedChunks: acknowledged,
    });
    for (const i of [1, 4, 6]) expect((await put(i)).status).toBe(204);
    const done = await api('POST', `/api/uploads/${created.uploadId}/complete`, { headers: auth });
    expect(done.status).toBe(201);
    const { file } = await done.json();
    const body = Buffer.from(
      await (await api('GET', `/api/files/${file.id}/content`, { headers: auth })).arrayBuffer(),
    );
    expect(body.equals(data)).toBe(true);

    // A file that was complete before a kill is still complete after it.
    await server.kill('SIGKILL');
    await server.start();
    const after = Buffer.from(
      await (await api('GET', `/api/files/${file.id}/content`, { headers: auth })).arrayBuffer(),
    );
    expect(sha1(after)).toBe(sha1(data));
  });
});
