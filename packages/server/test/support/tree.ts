import { expect } from 'vitest';
import type { TestApp } from './app.ts';

export interface Entry {
  id: string;
  name: string;
  kind: 'file' | 'folder';
  sha1: string | null;
  size: number;
}

/**
 * A user's tree through the API: folders made, folders listed (now or `at` a past time), and a
 * whole subtree as `path → sha1`. The app and the user are read at each call, so a suite can make
 * its client before `beforeAll` starts them.
 */
export function treeClient(app: () => TestApp, user: () => { headers: Record<string, string> }) {
  const api = (method: string, url: string, payload?: object, as = user().headers) =>
    app().app.inject({ method: method as 'GET', url, headers: as, ...(payload ? { payload } : {}) });
  const folder = async (name: string, parentId?: string) => {
    const res = await api('POST', '/api/folders', { name, parentId: parentId ?? null });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().file as Entry;
  };
  const list = async (parentId?: string, at?: number) => {
    const q = new URLSearchParams({ limit: '1000' });
    if (parentId) q.set('parentId', parentId);
    if (at !== undefined) q.set('at', new Date(at).toISOString());
    const res = await api('GET', `/api/files?${q}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().items as Entry[];
  };
  /** Every entry below a folder as `path → sha1` (folders: `path/ → null`). */
  const tree = async (parentId?: string, prefix = ''): Promise<Record<string, string | null>> => {
    const out: Record<string, string | null> = {};
    for (const e of await list(parentId)) {
      if (e.kind === 'folder') {
        out[`${prefix}${e.name}/`] = null;
        Object.assign(out, await tree(e.id, `${prefix}${e.name}/`));
      } else out[`${prefix}${e.name}`] = e.sha1;
    }
    return out;
  };
  return { api, folder, list, tree };
}
