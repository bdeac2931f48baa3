import { DOMParser } from '@xmldom/xmldom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAV_LIMITS } from '../../src/services/dav-limits.ts';
import { errorCode, startTestApp, type TestApp } from '../support/app.ts';

/**
 * What one WebDAV user can make the server parse, keep and answer is bounded
 * (services/dav-limits.ts); past a bound the answer says so (413, 507) and nothing is kept.
 */

const XML = '<?xml version="1.0" encoding="utf-8"?>';
const propfindOf = (props: string, ns = 'urn:x-test') =>
  `${XML}<D:propfind xmlns:D="DAV:" xmlns:Z="${ns}"><D:prop>${props}</D:prop></D:propfind>`;
const propertyUpdate = (sets: Record<string, string>, removes: string[] = []) =>
  `${XML}<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test">${
    Object.keys(sets).length > 0
      ? `<D:set><D:prop>${Object.entries(sets)
          .map(([name, value]) => `<Z:${name}>${value}</Z:${name}>`)
          .join('')}</D:prop></D:set>`
      : ''
  }${removes.length > 0 ? `<D:remove><D:prop>${removes.map((n) => `<Z:${n}/>`).join('')}</D:prop></D:remove>` : ''}</D:propertyupdate>`;
const lockinfo = (owner: string, scope = 'shared') =>
  `${XML}<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>${owner}</D:owner></D:lockinfo>`;

/** `{ns}name` → HTTP status, of every property in a one-resource multistatus. */
function propStatuses(xml: string): Map<string, number> {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const out = new Map<string, number>();
  const stats = doc.getElementsByTagNameNS('DAV:', 'propstat');
  for (let i = 0; i < stats.length; i++) {
    const stat = stats.item(i)!;
    const status = Number(
      (stat.getElementsByTagNameNS('DAV:', 'status').item(0)?.textContent ?? '').split(' ')[1],
    );
    const prop = stat.getElementsByTagNameNS('DAV:', 'prop').item(0)!;
    for (let n = prop.firstChild; n; n = n.nextSibling) {
      if (n.nodeType !== 1) continue;
      const el = n as unknown as Element;
      out.set(`{${el.namespaceURI ?? ''}}${el.localName}`, status);
    }
  }
  return out;
}

describe('WebDAV bounds', () => {
  let t: TestApp;
  let alice: { id: string; headers: Record<string, string> };
  let basic: Record<string, string>;
  const bounds = {
    answerBytes: 64 * 1024,
    propertyBytesPerUser: 40 * 1024,
    locksPerUser: 4,
  };

  beforeAll(async () => {
    t = await startTestApp({}, { davLimits: bounds });
    alice = await t.user('alice');
    const secret = await t.appPassword(alice.headers, 'dav');
    basic = { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}` };
    expect((await dav('MKCOL', '/dav/many')).statusCode).toBe(201);
    for (let i = 0; i < 40; i++) expect((await put(`/dav/many/f${i}.txt`, `file ${i}`)).statusCode).toBe(201);
  });
  afterAll(() => t.close());

  function dav(
    method: string,
    url: string,
    options: { body?: string; headers?: Record<string, string> } = {},
  ) {
    return t.app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...basic,
        ...(options.body ? { 'content-type': 'application/xml' } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { payload: options.body } : {}),
    });
  }
  const put = (url: string, text: string) =>
    dav('PUT', url, { body: text, headers: { 'content-type': 'text/plain' } });
  const propfind = (url: string, depth: string, body?: string) =>
    dav('PROPFIND', url, { headers: { depth }, ...(body ? { body } : {}) });

  describe('PROPFIND', () => {
    it('answers 413 past the distinct properties a request may name, and counts a name once', async () => {
      const distinct = (n: number) => Array.from({ length: n }, (_, i) => `<Z:p${i}/>`).join('');
      const over = await propfind('/dav/many/', '1', propfindOf(distinct(DAV_LIMITS.propfindProps + 1)));
      expect(over.statusCode).toBe(413);
      expect(errorCode(over)).toBe('payload_too_large');
      expect(over.json().error.message).toContain(String(DAV_LIMITS.propfindProps));
      // The same property named 2,000 times is one property.
      const repeated = await propfind(
        '/dav/many/f1.txt',
        '0',
        propfindOf('<D:getcontentlength/>'.repeat(2000)),
      );
      expect(repeated.statusCode).toBe(207);
      expect([...propStatuses(repeated.body)]).toEqual([['{DAV:}getcontentlength', 200]]);
      const atBound = await propfind('/dav/many/f1.txt', '0', propfindOf(distinct(DAV_LIMITS.propfindProps)));
      expect(atBound.statusCode).toBe(207);
      expect(propStatuses(atBound.body).size).toBe(DAV_LIMITS.propfindProps);
    });

    it('refuses the attack body (a megabyte of property names) quickly and stays up', async () => {
      let names = '';
      for (let i = 0; names.length < 1024 * 1024 - 200; i++) names += `<Z:a${i}/>`;
      const started = Date.now();
      const res = await propfind('/dav/many/', '1', propfindOf(names));
      const ms = Date.now() - started;
      expect(res.statusCode).toBe(413);
      expect(ms).toBeLessThan(1000);
      expect((await propfind('/dav/many/f1.txt', '0')).statusCode).toBe(207);
    });

    it('answers 507 when the multistatus would pass its bound, before sending any of it', async () => {
      // 200 long names × 41 resources ≈ 1 MiB, over this app's 64 KiB bound.
      const long = Array.from({ length: 200 }, (_, i) => `<Z:${'n'.repeat(100)}${i}/>`).join('');
      const res = await propfind('/dav/many/', '1', propfindOf(long));
      expect(res.statusCode).toBe(507);
      expect(errorCode(res)).toBe('insufficient_storage');
      // The same question about one resource fits, and is answered whole with its length.
      const one = await propfind('/dav/many/f1.txt', '0', propfindOf(long));
      expect(one.statusCode).toBe(207);
      expect(Number(one.headers['content-length'])).toBe(one.rawPayload.length);
      expect(propStatuses(one.body).size).toBe(200);
    });

    it('streams a listing as well-formed XML with every member, namespaces declared per response', async () => {
      expect(
        (await dav('PROPPATCH', '/dav/many/f2.txt', { body: propertyUpdate({ color: 'red' }) })).statusCode,
      ).toBe(207);
      const res = await propfind('/dav/many/', '1');
      expect(res.statusCode).toBe(207);
      expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);
      const doc = new DOMParser().parseFromString(res.body, 'application/xml');
      expect(doc.getElementsByTagNameNS('DAV:', 'response').length).toBe(41);
      expect(doc.getElementsByTagNameNS('urn:x-test', 'color').item(0)?.textContent).toBe('red');
    });
  });

  describe('dead properties', () => {
    it('answers 507 for a value past its bound and keeps nothing of the request', async () => {
      expect((await put('/dav/props.txt', 'p')).statusCode).toBe(201);
      const big = 'x'.repeat(DAV_LIMITS.propertyValueBytes + 1);
      const res = await dav('PROPPATCH', '/dav/props.txt', { body: propertyUpdate({ small: 'ok', big }) });
      expect(res.statusCode).toBe(207);
      const statuses = propStatuses(res.body);
      expect(statuses.get('{urn:x-test}big')).toBe(507);
      expect(statuses.get('{urn:x-test}small')).toBe(424);
      const after = await propfind('/dav/props.txt', '0', propfindOf('<Z:small/><Z:big/>'));
      expect([...propStatuses(after.body).values()]).toEqual([404, 404]);
    });

    it('bounds the properties of one entry, in number and in bytes', async () => {
      expect((await put('/dav/entry.txt', 'e')).statusCode).toBe(201);
      const many = Object.fromEntries(
        Array.from({ length: DAV_LIMITS.propertiesPerEntry + 1 }, (_, i) => [`p${i}`, 'v']),
      );
      const res = await dav('PROPPATCH', '/dav/entry.txt', { body: propertyUpdate(many) });
      expect(propStatuses(res.body).get('{urn:x-test}p0')).toBe(507);
      // Within the bound, it is stored, and then a removal still works.
      const fits = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`q${i}`, 'v']));
      const ok = await dav('PROPPATCH', '/dav/entry.txt', { body: propertyUpdate(fits) });
      expect([...propStatuses(ok.body).values()]).toEqual([200, 200, 200]);
      const removed = await dav('PROPPATCH', '/dav/entry.txt', { body: propertyUpdate({}, ['q0']) });
      expect([...propStatuses(removed.body).values()]).toEqual([200]);
    });

    it("bounds a user's properties over all entries, copies included (507, nothing half-copied)", async () => {
      expect((await dav('MKCOL', '/dav/user')).statusCode).toBe(201);
      expect((await put('/dav/user/a.txt', 'a')).statusCode).toBe(201);
      // 16 KiB now; the user holds a little more from the tests above, under 40 KiB in all.
      const value = 'v'.repeat(16 * 1024);
      const first = await dav('PROPPATCH', '/dav/user/a.txt', { body: propertyUpdate({ one: value }) });
      expect([...propStatuses(first.body).values()]).toEqual([200]);
      expect((await put('/dav/user/b.txt', 'b')).statusCode).toBe(201);
      const second = await dav('PROPPATCH', '/dav/user/b.txt', { body: propertyUpdate({ two: value }) });
      expect([...propStatuses(second.body).values()]).toEqual([200]);
      const third = await dav('PROPPATCH', '/dav/user/b.txt', { body: propertyUpdate({ three: value }) });
      expect([...propStatuses(third.body).values()]).toEqual([507]);
      // A copy of the folder would double them: refused before anything is made.
      const copy = await dav('COPY', '/dav/user/', { headers: { destination: '/dav/user-copy/' } });
      expect(copy.statusCode).toBe(507);
      expect(errorCode(copy)).toBe('insufficient_storage');
      expect((await propfind('/dav/user-copy/', '0')).statusCode).toBe(404);
      // Freeing room lets it through.
      await dav('PROPPATCH', '/dav/user/b.txt', { body: propertyUpdate({}, ['two']) });
      expect(
        (await dav('COPY', '/dav/user/', { headers: { destination: '/dav/user-copy/' } })).statusCode,
      ).toBe(201);
      const copied = await propfind('/dav/user-copy/a.txt', '0', propfindOf('<Z:one/>'));
      expect(propStatuses(copied.body).get('{urn:x-test}one')).toBe(200);
    });
  });

  describe('locks', () => {
    it("bounds a lock owner's size (413) and the locks a user holds (507)", async () => {
      expect((await put('/dav/locked.txt', 'l')).statusCode).toBe(201);
      const bigOwner = await dav('LOCK', '/dav/locked.txt', {
        body: lockinfo(`<D:href>${'o'.repeat(DAV_LIMITS.lockOwnerBytes)}</D:href>`),
      });
      expect(bigOwner.statusCode).toBe(413);
      expect(errorCode(bigOwner)).toBe('payload_too_large');
      const tokens: string[] = [];
      for (let i = 0; i < bounds.locksPerUser; i++) {
        const res = await dav('LOCK', '/dav/locked.txt', { body: lockinfo(`owner ${i}`) });
        expect(res.statusCode).toBe(200);
        tokens.push(res.headers['lock-token'] as string);
      }
      const more = await dav('LOCK', '/dav/locked.txt', { body: lockinfo('one more') });
      expect(more.statusCode).toBe(507);
      expect(errorCode(more)).toBe('insufficient_storage');
      for (const token of tokens)
        expect(
          (await dav('UNLOCK', '/dav/locked.txt', { headers: { 'lock-token': token } })).statusCode,
        ).toBe(204);
      expect((await dav('LOCK', '/dav/locked.txt', { body: lockinfo('now fits') })).statusCode).toBe(200);
    });
  });

  describe('lone surrogates', () => {
    it('refuses them in dead-property values and lock owners (400), keeping nothing', async () => {
      expect((await put('/dav/surrogate.txt', 's')).statusCode).toBe(201);
      const patch = await dav('PROPPATCH', '/dav/surrogate.txt', {
        body: propertyUpdate({ bad: 'x&#xD800;y' }),
      });
      expect(patch.statusCode).toBe(400);
      const after = await propfind('/dav/surrogate.txt', '0', propfindOf('<Z:bad/>'));
      expect(propStatuses(after.body).get('{urn:x-test}bad')).toBe(404);
      const lock = await dav('LOCK', '/dav/surrogate.txt', { body: lockinfo('me &#xDFFF;') });
      expect(lock.statusCode).toBe(400);
      // A real pair is fine in both.
      const pair = await dav('PROPPATCH', '/dav/surrogate.txt', {
        body: propertyUpdate({ good: '&#x1F600;' }),
      });
      expect([...propStatuses(pair.body).values()]).toEqual([200]);
    });

    it('refuses them in archive names and app-password names (400)', async () => {
      const folder = (
        await t.app.inject({
          method: 'POST',
          url: '/api/folders',
          headers: alice.headers,
          payload: { name: 'z' },
        })
      ).json().file;
      for (const name of ['bad\uD800name', 'x\uDFFF']) {
        const archive = await t.app.inject({
          method: 'POST',
          url: '/api/archives',
          headers: alice.headers,
          payload: { ids: [folder.id], name },
        });
        expect(archive.statusCode).toBe(400);
        const password = await t.app.inject({
          method: 'POST',
          url: '/api/auth/app-passwords',
          headers: alice.headers,
          payload: { name },
        });
        expect(password.statusCode).toBe(400);
      }
      const ok = await t.app.inject({
        method: 'POST',
        url: '/api/auth/app-passwords',
        headers: alice.headers,
        payload: { name: 'phone 😀' },
      });
      expect(ok.statusCode).toBe(201);
      expect(ok.json().appPassword.name).toBe('phone 😀');
    });
  });

  it('writes an answer of megabytes response by response, whole and with its exact length', async () => {
    const big = await startTestApp();
    try {
      const bob = await big.user('bob');
      const secret = await big.appPassword(bob.headers, 'dav');
      const auth = { authorization: `Basic ${Buffer.from(`bob:${secret}`).toString('base64')}` };
      const inject = (method: string, url: string, headers: Record<string, string>, payload?: string) =>
        big.app.inject({
          method: method as 'GET',
          url,
          headers: { ...auth, ...headers },
          ...(payload ? { payload } : {}),
        });
      expect((await inject('MKCOL', '/dav/d', {})).statusCode).toBe(201);
      for (let i = 0; i < 100; i++)
        expect((await inject('PUT', `/dav/d/${i}`, { 'content-type': 'text/plain' }, 'x')).statusCode).toBe(
          201,
        );
      // 256 names of 200 characters, unknown: about 60 KiB per response, 6 MiB in all.
      const long = Array.from({ length: 256 }, (_, i) => `<Z:${'n'.repeat(200)}${i}/>`).join('');
      const res = await inject(
        'PROPFIND',
        '/dav/d/',
        { depth: '1', 'content-type': 'application/xml' },
        propfindOf(long),
      );
      expect(res.statusCode).toBe(207);
      expect(res.rawPayload.length).toBeGreaterThan(5 * 1024 * 1024);
      expect(Number(res.headers['content-length'])).toBe(res.rawPayload.length);
      const doc = new DOMParser().parseFromString(res.body, 'application/xml');
      const responses = doc.getElementsByTagNameNS('DAV:', 'response');
      expect(responses.length).toBe(101);
      expect(responses.item(100)!.getElementsByTagNameNS('urn:x-test', `${'n'.repeat(200)}255`).length).toBe(
        1,
      );
    } finally {
      await big.close();
    }
  }, 60_000);
});
