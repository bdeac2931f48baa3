import type { AuditEvent, AuditPage } from '@dfs/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../../src/repositories/audit.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

const PASSWORD = 'correct horse battery';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const DAY = 86_400_000;

type User = Awaited<ReturnType<TestApp['user']>>;

/** The audit log: what is recorded, the admin listing and export, and retention. */
describe('audit log', () => {
  let t: TestApp;
  let clock = Date.UTC(2026, 5, 1, 12);
  let admin: User;
  let ann: User;

  const as = (user: User) => (method: string, url: string, payload?: object) =>
    t.app.inject({ method: method as 'GET', url, headers: user.headers, ...(payload ? { payload } : {}) });
  const ok = async <T>(
    res: Promise<{ statusCode: number; body: string; json: () => unknown }>,
    status = 200,
  ) => {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return (r.body === '' ? undefined : r.json()) as T;
  };
  const audit = (query = '') => ok<AuditPage>(as(admin)('GET', `/api/admin/audit${query}`));
  const latest = async (action: string) => (await audit(`?action=${action}&limit=1`)).events[0];

  beforeAll(async () => {
    t = await startTestApp({ DFS_AUDIT_RETENTION_DAYS: '30' }, { now: () => clock });
    admin = await t.user('root'); // the first account: the admin
    ann = await t.user('ann');
  });
  afterAll(() => t.close());

  it('records failed and successful sign-ins with the address and agent', async () => {
    clock += 1_000;
    const signin = (password: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/signin',
        headers: { 'user-agent': FIREFOX },
        remoteAddress: '203.0.113.7',
        payload: { username: 'Ann', password },
      });
    expect((await signin('not the password')).statusCode).toBe(401);
    const failed = await latest('auth.signin_failed');
    expect(failed).toMatchObject({
      actorId: null,
      actorUsername: 'ann',
      address: '203.0.113.7',
      userAgent: FIREFOX,
      details: { reason: 'invalid_credentials' },
    });
    // A name nobody has is recorded too: guessing accounts shows up in the log.
    await t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username: 'ghost', password: PASSWORD },
    });
    expect((await latest('auth.signin_failed'))?.actorUsername).toBe('ghost');

    clock += 1_000;
    expect((await signin(PASSWORD)).statusCode).toBe(200);
    expect(await latest('auth.signin')).toMatchObject({
      actorId: ann.id,
      actorUsername: 'ann',
      address: '203.0.113.7',
      userAgent: FIREFOX,
      details: { method: 'password', secondFactor: false },
      at: new Date(clock).toISOString(),
    });
  });

  it('records app passwords created and revoked, by their owner', async () => {
    const created = await ok<{ appPassword: { id: string } }>(
      as(ann)('POST', '/api/auth/app-passwords', { name: 'laptop sync' }),
      201,
    );
    await ok(as(ann)('DELETE', `/api/auth/app-passwords/${created.appPassword.id}`), 204);
    const target = { targetType: 'app_password', targetId: created.appPassword.id };
    expect(await latest('app_password.created')).toMatchObject({
      actorUsername: 'ann',
      ...target,
      details: { name: 'laptop sync' },
    });
    expect(await latest('app_password.revoked')).toMatchObject({ actorId: ann.id, ...target });
  });

  it('records share links and members added and removed, never a whole link token', async () => {
    const folder = (
      await ok<{ file: { id: string } }>(as(ann)('POST', '/api/folders', { name: 'Team' }), 201)
    ).file;
    const { share } = await ok<{ share: { token: string } }>(
      as(ann)('POST', `/api/files/${folder.id}/shares`, { kind: 'upload' }),
      201,
    );
    await ok(as(ann)('DELETE', `/api/shares/${share.token}`), 204);
    const member = (
      await ok<{ member: { id: string } }>(
        as(ann)('POST', `/api/files/${folder.id}/members`, { username: 'root', role: 'viewer' }),
        201,
      )
    ).member;
    await ok(as(ann)('DELETE', `/api/files/${folder.id}/members/${member.id}`), 204);

    const created = await latest('share.created');
    expect(created).toMatchObject({ actorUsername: 'ann', targetType: 'file', targetId: folder.id });
    const deleted = await latest('share.deleted');
    expect(deleted?.targetType).toBe('share');
    const exported = (await as(admin)('GET', '/api/admin/audit/export')).body;
    expect(exported).not.toContain(share.token);
    expect(await latest('share.member_added')).toMatchObject({
      targetId: folder.id,
      details: { memberId: member.id, username: 'root', role: 'viewer' },
    });
    expect(await latest('share.member_removed')).toMatchObject({
      targetId: folder.id,
      details: { memberId: member.id },
    });
  });

  it('records an administrator’s actions on accounts', async () => {
    await ok(as(admin)('PATCH', `/api/admin/users/${ann.id}`, { quotaBytes: 1_000_000 }));
    expect(await latest('admin.user_updated')).toMatchObject({
      actorUsername: 'root',
      targetType: 'user',
      targetId: ann.id,
      details: { quotaBytes: 1_000_000 },
    });
    // A refused action is not recorded as done.
    const before = (await audit('?action=admin.user_disabled')).events.length;
    expect((await as(admin)('POST', '/api/admin/users/nobody/disable')).statusCode).toBe(404);
    expect((await audit('?action=admin.user_disabled')).events.length).toBe(before);
  });

  it('filters by user, action and time, and pages newest first', async () => {
    const all = (await audit('?limit=1000')).events;
    const sorted = [...all].sort((a, b) => b.at.localeCompare(a.at) || Number(b.id) - Number(a.id));
    expect(all.map((e) => e.id)).toEqual(sorted.map((e) => e.id));

    const anns = (await audit('?user=ANN&limit=1000')).events;
    expect(anns.length).toBeGreaterThan(3);
    expect(anns.every((e) => e.actorUsername === 'ann')).toBe(true);
    const revoked = (await audit('?action=app_password.revoked')).events;
    expect(revoked.map((e) => e.action)).toEqual(['app_password.revoked']);

    // The first sign-ins were at a time of their own: `from`/`to` bound it inclusively.
    const signin = all.find((e) => e.action === 'auth.signin' && e.actorUsername === 'ann')!;
    const at = encodeURIComponent(signin.at);
    const window = (await audit(`?from=${at}&to=${at}&limit=1000`)).events;
    expect(window.length).toBeGreaterThan(0);
    expect(window.every((e) => e.at === signin.at)).toBe(true);
    expect(window.map((e) => e.id)).toContain(signin.id);

    // Pages of two walk the whole list once, in order, then end.
    const walked: AuditEvent[] = [];
    let cursor: string | null = null;
    do {
      const page: AuditPage = await audit(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.events.length).toBeLessThanOrEqual(2);
      walked.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor);
    expect(walked.map((e) => e.id)).toEqual(all.map((e) => e.id));
  });

  it('is for administrators only, and refuses bad filters with 400', async () => {
    for (const url of ['/api/admin/audit', '/api/admin/audit/export']) {
      const res = await as(ann)('GET', url);
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('forbidden');
      expect((await t.app.inject({ url })).statusCode).toBe(401);
    }
    for (const query of [
      '?action=auth.nope',
      '?from=yesterday',
      '?limit=0',
      '?limit=5000',
      '?cursor=abc',
      '?colour=blue',
      `?from=${encodeURIComponent('2026-02-01T00:00:00Z')}&to=${encodeURIComponent('2026-01-01T00:00:00Z')}`,
    ]) {
      for (const path of ['/api/admin/audit', '/api/admin/audit/export']) {
        const res = await as(admin)('GET', `${path}${query}`);
        expect(res.statusCode, `${path}${query}`).toBe(400);
        expect(res.json()).toMatchObject({
          error: { code: expect.any(String), message: expect.any(String) },
        });
      }
    }
  });

  it('exports the same events as JSON lines, as an attachment', async () => {
    const listed = (await audit('?user=ann&limit=1000')).events;
    const res = await as(admin)('GET', '/api/admin/audit/export?user=ann');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="dfs-audit-.*\.jsonl"$/);
    expect(res.body.endsWith('\n')).toBe(true);
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditEvent);
    expect(lines).toEqual(listed);
    // Nothing matches: an empty file, not an error.
    const none = await as(admin)('GET', '/api/admin/audit/export?user=nobody-at-all');
    expect(none.statusCode).toBe(200);
    expect(none.body).toBe('');
  });

  it('never fails the action when an event cannot be recorded', async () => {
    const { db } = t.app.services;
    await db.schema.renameTable('audit_events', 'audit_events_away');
    try {
      const signin = await t.app.inject({
        method: 'POST',
        url: '/api/auth/signin',
        payload: { username: 'ann', password: PASSWORD },
      });
      expect(signin.statusCode, signin.body).toBe(200);
      await ok(as(ann)('POST', '/api/auth/app-passwords', { name: 'unrecorded' }), 201);
    } finally {
      await db.schema.renameTable('audit_events_away', 'audit_events');
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(
      t.app.services.audit.record({ action: 'backup.created', details: cyclic }),
    ).resolves.toBeUndefined();
  });

  it('deletes only events older than the retention, in batches', async () => {
    const repo = new AuditRepository(t.app.services.db);
    const row = (at: number, n: number) => ({
      at,
      actor_id: null,
      actor_username: 'old-timer',
      action: 'backup.created',
      target_type: null,
      target_id: String(n),
      address: null,
      user_agent: null,
      details: null,
    });
    // More than one batch (500) of old events, and one just inside the 30 days.
    for (let i = 0; i < 620; i++) await repo.insert(row(clock - 31 * DAY - i, i));
    await repo.insert(row(clock - 29 * DAY, 9999));
    const kept = (await audit('?limit=1000')).events.filter((e) => e.actorUsername !== 'old-timer').length;

    expect(await t.app.services.jobs.runOnce(t.app.services.maintenance.auditRetention)).toBe(true);
    const left = (await audit('?limit=1000')).events;
    expect(left.filter((e) => e.actorUsername === 'old-timer').map((e) => e.targetId)).toEqual(['9999']);
    expect(left.filter((e) => e.actorUsername !== 'old-timer').length).toBe(kept);
  });
});
