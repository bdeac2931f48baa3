import { readFile } from 'node:fs/promises';
import { Attribute, Change } from 'ldapts';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { LdapDirectory } from '../../src/services/identity/ldap.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';
import { GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, type Slapd, startSlapd } from '../support/slapd.ts';

const pw = (uid: string) => `${uid} directory password`;
const LOCAL_PASSWORD = 'correct horse battery';

describe('LDAP sign-in against slapd', () => {
  let slapd: Slapd;
  let t: TestApp;
  let admin: Record<string, string>;

  beforeAll(async () => {
    slapd = await startSlapd(
      [
        { uid: 'alice', password: pw('alice') },
        { uid: 'bob', password: pw('bob'), employeeType: 'disabled' },
        { uid: 'carol', password: pw('carol') },
        { uid: 'frank', password: pw('frank') },
        { uid: 'erin', password: pw('erin') },
        { uid: 'gus', password: pw('gus') },
        { uid: 'hal', password: pw('hal') },
      ],
      { staff: ['alice', 'frank'], readers: ['alice', 'frank'], ops: [] },
    );
    t = await startTestApp({
      // Directory users get accounts whatever the sign-up policy says.
      DFS_SIGNUP: 'closed',
      DFS_LDAP_URL: slapd.url,
      DFS_LDAP_BIND_DN: SERVICE_DN,
      DFS_LDAP_BIND_PASSWORD: SERVICE_PASSWORD,
      DFS_LDAP_SEARCH_BASE: PEOPLE,
      DFS_LDAP_SEARCH_FILTER: '(&(uid={username})(!(employeeType=disabled)))',
      DFS_LDAP_GROUP_BASE: GROUPS,
    });
    // The first account may always sign up: it is the admin.
    admin = (await t.user('admin')).headers;
  });
  afterAll(async () => {
    await t?.close();
    await slapd?.stop();
  });

  const signin = (username: string, password: string, code?: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      payload: { username, password, ...(code ? { code } : {}) },
    });
  const me = (headers: Record<string, string>) => t.app.inject({ url: '/api/auth/me', headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const usersNamed = (username: string) => t.app.services.db('users').where({ username }).select('*');
  const entryUuid = async (uid: string) => {
    const client = await slapd.admin();
    try {
      const { searchEntries } = await client.search(`uid=${uid},${PEOPLE}`, {
        scope: 'base',
        attributes: ['entryUUID'],
      });
      return String(searchEntries[0]?.entryUUID);
    } finally {
      await client.unbind();
    }
  };
  const modify = async (dn: string, change: Change) => {
    const client = await slapd.admin();
    try {
      await client.modify(dn, change);
    } finally {
      await client.unbind();
    }
  };
  const groupsOf = async (userId: string) =>
    (
      await t.app.services
        .db('group_members')
        .join('groups', 'groups.id', 'group_members.group_id')
        .where('group_members.user_id', userId)
        .orderBy('groups.name')
        .select('groups.name', 'group_members.source')
    ).map((r: { name: string; source: string }) => `${r.name}:${r.source}`);

  it('creates the account at the first sign-in with the directory password, and reuses it after', async () => {
    expect(await usersNamed('alice')).toHaveLength(0);
    const first = await signin('alice', pw('alice'));
    expect(first.statusCode, first.body).toBe(200);
    const { user, token } = first.json() as {
      user: { id: string; username: string; isAdmin: boolean };
      token: string;
    };
    expect(user).toMatchObject({ username: 'alice', isAdmin: false });
    expect((await me(bearer(token))).json()).toMatchObject({ user: { id: user.id } });

    // Linked by the entry's entryUUID, not by the name.
    const links = await t.app.services.db('user_identities').where({ user_id: user.id }).select('*');
    expect(links).toEqual([
      expect.objectContaining({
        provider: 'ldap',
        issuer: `${slapd.url}/${PEOPLE}`,
        subject: await entryUuid('alice'),
      }),
    ]);

    const again = await signin('ALICE', pw('alice'));
    expect(again.statusCode).toBe(200);
    expect(again.json().user.id).toBe(user.id);
    expect(await usersNamed('alice')).toHaveLength(1);
  });

  it('answers a wrong directory password with the same 401 as a wrong local password', async () => {
    const wrong = await signin('alice', 'not the directory password');
    const local = await signin('admin', 'not the local password');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toEqual(local.json());
    expect(errorCode(wrong)).toBe('invalid_credentials');
  });

  it('refuses a name the directory does not know, and makes no account', async () => {
    const res = await signin('nobody', pw('nobody'));
    expect(res.statusCode).toBe(401);
    expect(errorCode(res)).toBe('invalid_credentials');
    expect(await usersNamed('nobody')).toHaveLength(0);
  });

  it('refuses an entry the filter leaves out (disabled in the directory), before and after it signed in', async () => {
    const bob = await signin('bob', pw('bob'));
    expect(bob.statusCode).toBe(401);
    expect(errorCode(bob)).toBe('invalid_credentials');
    expect(await usersNamed('bob')).toHaveLength(0);

    const before = await signin('frank', pw('frank'));
    expect(before.statusCode).toBe(200);
    await modify(
      `uid=frank,${PEOPLE}`,
      new Change({
        operation: 'add',
        modification: new Attribute({ type: 'employeeType', values: ['disabled'] }),
      }),
    );
    const after = await signin('frank', pw('frank'));
    expect(after.statusCode).toBe(401);
    expect(errorCode(after)).toBe('invalid_credentials');
  });

  it('refuses an entry the directory locked (password policy), with its right password', async () => {
    expect((await signin('hal', pw('hal'))).statusCode).toBe(200);
    await modify(
      `uid=hal,${PEOPLE}`,
      new Change({
        operation: 'add',
        modification: new Attribute({ type: 'pwdAccountLockedTime', values: ['000001010000Z'] }),
      }),
    );
    const locked = await signin('hal', pw('hal'));
    expect(locked.statusCode).toBe(401);
    expect(errorCode(locked)).toBe('invalid_credentials');
  });

  it('escapes the typed name in the filter: wildcards and filter syntax match nothing', async () => {
    // The API's username rules refuse these outright; nothing reaches the directory or is made.
    for (const username of ['*', 'alice)(uid=*', 'al*']) {
      const res = await signin(username, pw('alice'));
      expect(res.statusCode, username).toBe(400);
    }
    // The directory itself, given them anyway, matches no entry: pasted into the filter raw, each
    // would have found alice, and her password would have signed in whoever typed it.
    const directory = new LdapDirectory(t.config.ldap!);
    expect(await directory.authenticate('alice', pw('alice'))).not.toBeNull();
    for (const username of ['al*', 'alice)(uid=*', 'alice)(|(uid=*', '*'])
      expect(await directory.authenticate(username, pw('alice')), username).toBeNull();
    // An empty password would be an anonymous bind, which slapd accepts for any DN.
    expect(await directory.authenticate('alice', '')).toBeNull();
    const count = await t.app.services.db('users').count({ n: '*' }).first();
    expect(Number(count?.n)).toBe(4); // admin, alice, frank, hal
  });

  it("makes the user's groups those of the directory at each sign-in; dfs's own memberships stay", async () => {
    const alice = (await usersNamed('alice'))[0] as { id: string };
    expect(await groupsOf(alice.id)).toEqual(['readers:ldap', 'staff:ldap']);
    const { repos } = t.app.services;
    expect(await repos.groups.findByName('staff')).toMatchObject({ source: 'ldap' });
    const local = {
      id: 'local-team-id',
      name: 'local-team',
      source: 'local' as const,
      created_at: Date.now(),
    };
    await repos.groups.insert(local);
    await repos.groups.addMember({
      group_id: local.id,
      user_id: alice.id,
      source: 'local',
      created_at: Date.now(),
    });

    const aliceDn = `uid=alice,${PEOPLE}`;
    await modify(
      `cn=readers,${GROUPS}`,
      new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: [aliceDn] }) }),
    );
    await modify(
      `cn=ops,${GROUPS}`,
      new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [aliceDn] }) }),
    );
    expect((await signin('alice', pw('alice'))).statusCode).toBe(200);
    expect(await groupsOf(alice.id)).toEqual(['local-team:local', 'ops:ldap', 'staff:ldap']);
  });

  it('never hands a local account to a directory entry of the same name', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: admin,
      payload: { username: 'carol', password: LOCAL_PASSWORD },
    });
    expect(created.statusCode).toBe(201);
    const directory = await signin('carol', pw('carol'));
    expect(directory.statusCode).toBe(401);
    expect(errorCode(directory)).toBe('invalid_credentials');
    const local = await signin('carol', LOCAL_PASSWORD);
    expect(local.statusCode).toBe(200);
    expect(local.json().user.id).toBe(created.json().user.id);
    expect(
      await t.app.services.db('user_identities').where({ user_id: created.json().user.id }),
    ).toHaveLength(0);
  });

  it('still asks for the second factor after the directory password', async () => {
    const { token } = (await signin('erin', pw('erin'))).json() as { token: string };
    // Setting it up takes the account password again: the directory's, for a directory account.
    const wrongSetup = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp',
      headers: bearer(token),
      payload: { password: 'not erin password' },
    });
    expect(errorCode(wrongSetup)).toBe('wrong_password');
    const setup = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp',
      headers: bearer(token),
      payload: { password: pw('erin') },
    });
    expect(setup.statusCode, setup.body).toBe(201);
    const totp = new TOTP({ secret: Secret.fromBase32(setup.json().secret as string) });
    const confirm = await t.app.inject({
      method: 'POST',
      url: '/api/auth/totp/confirm',
      headers: bearer(token),
      payload: { code: totp.generate() },
    });
    expect(confirm.statusCode, confirm.body).toBe(204);

    const noCode = await signin('erin', pw('erin'));
    expect(noCode.statusCode).toBe(401);
    expect(errorCode(noCode)).toBe('totp_required');
    // A recovery code, not the current TOTP: the one used to confirm may not be used twice.
    const withCode = await signin('erin', pw('erin'), (setup.json().recoveryCodes as string[])[0]);
    expect(withCode.statusCode, withCode.body).toBe(200);
  });

  it('an admin-disabled account: sign-in refused, its session and app password stop at once, until it is enabled', async () => {
    const dave = await t.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: admin,
      payload: { username: 'dave', password: LOCAL_PASSWORD },
    });
    const daveId = dave.json().user.id as string;
    const session = bearer((await signin('dave', LOCAL_PASSWORD)).json().token as string);
    const secret = await t.appPassword(session);
    const basic = { authorization: `Basic ${Buffer.from(`dave:${secret}`).toString('base64')}` };
    const propfind = () =>
      t.app.inject({ method: 'PROPFIND', url: '/dav/', headers: { ...basic, depth: '0' } });
    expect((await me(session)).statusCode).toBe(200);
    expect((await me(bearer(secret))).statusCode).toBe(200);
    expect((await propfind()).statusCode).toBe(207);

    const asDave = await t.app.inject({
      method: 'POST',
      url: `/api/admin/users/${daveId}/disable`,
      headers: session,
    });
    expect(asDave.statusCode).toBe(403);
    const self = await t.app.inject({
      method: 'POST',
      url: `/api/admin/users/${(await me(admin)).json().user.id}/disable`,
      headers: admin,
    });
    expect(self.statusCode).toBe(400);

    const disabled = await t.app.inject({
      method: 'POST',
      url: `/api/admin/users/${daveId}/disable`,
      headers: admin,
    });
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect(disabled.json().user).toMatchObject({ id: daveId, directory: false });
    expect(Date.parse(disabled.json().user.disabledAt)).not.toBeNaN();

    expect((await me(session)).statusCode).toBe(401);
    expect((await me(bearer(secret))).statusCode).toBe(401);
    expect((await propfind()).statusCode).toBe(401);
    const refused = await signin('dave', LOCAL_PASSWORD);
    expect(refused.statusCode).toBe(403);
    expect(errorCode(refused)).toBe('account_disabled');
    // Only someone who knows the password learns that the account is disabled.
    expect(errorCode(await signin('dave', 'not the local password'))).toBe('invalid_credentials');

    const list = (await t.app.inject({ url: '/api/admin/users', headers: admin })).json() as {
      items: Array<{ username: string; disabledAt: string | null; directory: boolean }>;
    };
    expect(list.items.find((u) => u.username === 'dave')?.disabledAt).not.toBeNull();
    expect(list.items.find((u) => u.username === 'alice')).toMatchObject({
      disabledAt: null,
      directory: true,
    });

    const enabled = await t.app.inject({
      method: 'POST',
      url: `/api/admin/users/${daveId}/enable`,
      headers: admin,
    });
    expect(enabled.json().user.disabledAt).toBeNull();
    // The sessions ended for good; the app password is the user's to revoke, and works again.
    expect((await me(session)).statusCode).toBe(401);
    expect((await me(bearer(secret))).statusCode).toBe(200);
    expect((await signin('dave', LOCAL_PASSWORD)).statusCode).toBe(200);
  });

  it("has no dfs password to change or reset: the directory's is the one", async () => {
    const alice = (await signin('alice', pw('alice'))).json() as { token: string; user: { id: string } };
    const change = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password',
      headers: bearer(alice.token),
      payload: { currentPassword: pw('alice'), newPassword: 'a brand new password' },
    });
    expect(change.statusCode).toBe(400);
    expect(change.json().error.message).toMatch(/directory/);
    const reset = await t.app.inject({
      method: 'POST',
      url: `/api/admin/users/${alice.user.id}/password`,
      headers: admin,
      payload: { newPassword: 'a brand new password' },
    });
    expect(reset.statusCode).toBe(400);
    expect((await signin('alice', pw('alice'))).statusCode).toBe(200);
  });

  it('refuses an admin-disabled directory account with 403 account_disabled after its directory password', async () => {
    const gus = (await signin('gus', pw('gus'))).json().user.id as string;
    await t.app.inject({ method: 'POST', url: `/api/admin/users/${gus}/disable`, headers: admin });
    const res = await signin('gus', pw('gus'));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('account_disabled');
    expect(errorCode(await signin('gus', 'not gus password'))).toBe('invalid_credentials');
  });

  it('speaks TLS: ldaps:// and StartTLS trusting DFS_LDAP_TLS_CA; an untrusted certificate signs nobody in', async () => {
    const base = t.config.ldap!;
    const ca = await readFile(slapd.caFile, 'utf8');
    const ldaps = new LdapDirectory({ ...base, url: slapd.ldapsUrl, tlsCa: ca });
    expect(await ldaps.authenticate('alice', pw('alice'))).toMatchObject({
      subject: await entryUuid('alice'),
    });
    const startTls = new LdapDirectory({ ...base, startTls: true, tlsCa: ca });
    expect(await startTls.authenticate('alice', pw('alice'))).toMatchObject({
      subject: await entryUuid('alice'),
    });
    // The system's CAs do not know this one: no password goes to a server dfs cannot trust.
    for (const untrusted of [
      new LdapDirectory({ ...base, url: slapd.ldapsUrl, tlsCa: null }),
      new LdapDirectory({ ...base, startTls: true, tlsCa: null }),
    ]) {
      await expect(untrusted.authenticate('alice', pw('alice'))).rejects.toMatchObject({
        code: 'directory_unavailable',
      });
    }
  });

  it('answers 503 directory_unavailable when the directory is down, and signs no one in', async () => {
    await slapd.stop();
    const res = await signin('alice', pw('alice'));
    expect(res.statusCode).toBe(503);
    expect(errorCode(res)).toBe('directory_unavailable');
    // Local accounts do not depend on the directory.
    expect((await signin('carol', LOCAL_PASSWORD)).statusCode).toBe(200);
  });
});

describe('LDAP settings', () => {
  const ldap = (env: Record<string, string>) =>
    loadConfig({
      DFS_LDAP_URL: 'ldap://ldap.example:389',
      DFS_LDAP_SEARCH_BASE: 'ou=people,dc=example',
      ...env,
    }).ldap;

  it('has no directory without DFS_LDAP_URL, and the defaults with one', () => {
    expect(loadConfig({}).ldap).toBeNull();
    expect(ldap({})).toMatchObject({
      url: 'ldap://ldap.example:389',
      searchFilter: '(uid={username})',
      groupFilter: '(member={dn})',
      startTls: false,
      bindDn: null,
      groupBase: null,
    });
  });

  it('refuses a half-made directory configuration at start, naming the variable', () => {
    expect(() => loadConfig({ DFS_LDAP_URL: 'ldap://ldap.example' })).toThrow(/DFS_LDAP_SEARCH_BASE/);
    expect(() => ldap({ DFS_LDAP_BIND_DN: 'cn=dfs,dc=example' })).toThrow(/DFS_LDAP_BIND_PASSWORD/);
    expect(() => ldap({ DFS_LDAP_SEARCH_FILTER: '(uid=alice)' })).toThrow(/DFS_LDAP_SEARCH_FILTER/);
    expect(() => ldap({ DFS_LDAP_URL: 'ldaps://ldap.example', DFS_LDAP_STARTTLS: 'true' })).toThrow(
      /DFS_LDAP_STARTTLS/,
    );
    expect(() => ldap({ DFS_LDAP_URL: 'http://ldap.example' })).toThrow(/DFS_LDAP_URL/);
    expect(() => ldap({ DFS_LDAP_TLS_CA: '/nonexistent/ca.pem' })).toThrow(ConfigError);
  });
});
