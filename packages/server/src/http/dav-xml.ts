import { DOMParser, type Element, XMLSerializer } from '@xmldom/xmldom';
import { HttpError } from '../errors.ts';
import { DAV_LIMITS } from '../services/dav-limits.ts';

export const DAV_NS = 'DAV:';
/** ownCloud's and Nextcloud's property namespaces (their sync clients ask for properties in them). */
export const OC_NS = 'http://owncloud.org/ns';
export const NC_NS = 'http://nextcloud.org/ns';
/** Prefixes used for these namespaces, so a property value may hold their elements (`oc:checksum`). */
const KNOWN_PREFIXES: ReadonlyMap<string, string> = new Map([
  [OC_NS, 'oc'],
  [NC_NS, 'nc'],
]);

/** A property name: namespace and local name (Clark notation `{ns}name` when printed). */
export interface PropName {
  ns: string;
  name: string;
}

export type PropfindRequest =
  | { kind: 'allprop' }
  | { kind: 'propname' }
  | { kind: 'prop'; props: PropName[] };

/**
 * Parses a PROPFIND body; an empty body means allprop (RFC 4918 §9.1). A property named twice is
 * asked for once; more than `maxProps` distinct ones answer 413 before any work is done for them.
 */
export function parsePropfind(body: string | undefined, maxProps: number): PropfindRequest {
  if (!body || body.trim() === '') return { kind: 'allprop' };
  const root = parseXml(body);
  if (root.namespaceURI !== DAV_NS || root.localName !== 'propfind') {
    throw new HttpError('bad_request', 'a PROPFIND body is a DAV:propfind element');
  }
  for (const child of elements(root)) {
    if (child.namespaceURI !== DAV_NS) continue;
    if (child.localName === 'allprop') return { kind: 'allprop' };
    if (child.localName === 'propname') return { kind: 'propname' };
    if (child.localName === 'prop') {
      const props = new Map<string, PropName>();
      for (const p of elements(child)) {
        const prop = { ns: p.namespaceURI ?? '', name: p.localName ?? '' };
        props.set(`${prop.ns}\n${prop.name}`, prop);
        if (props.size > maxProps)
          throw new HttpError(
            'payload_too_large',
            `a PROPFIND may name at most ${maxProps} distinct properties`,
          );
      }
      return { kind: 'prop', props: [...props.values()] };
    }
  }
  throw new HttpError('bad_request', 'DAV:propfind needs allprop, propname or prop');
}

/** Refuses text with a lone UTF-16 surrogate (an XML character reference such as `&#xD800;`). */
function assertWellFormed(text: string, what: string): void {
  if (/\p{Cs}/u.test(text))
    throw new HttpError('bad_request', `${what} is not valid Unicode (a lone surrogate)`);
}

/**
 * Element names for properties in a response: `D:` for DAV:, `oc:` and `nc:` for ownCloud's and
 * Nextcloud's, `ns1:`, `ns2:`… for the others (the caller declares them from `declarations()`),
 * and an explicit empty default namespace for a property without one.
 */
function prefixer() {
  const prefixes = new Map<string, string>([[DAV_NS, 'D']]);
  let numbered = 0;
  return {
    tag(p: PropName): string {
      if (p.ns === '') return `${p.name} xmlns=""`;
      let prefix = prefixes.get(p.ns);
      if (!prefix) {
        prefix = KNOWN_PREFIXES.get(p.ns) ?? `ns${++numbered}`;
        prefixes.set(p.ns, prefix);
      }
      return `${prefix}:${p.name}`;
    },
    declarations(): string {
      return [...prefixes].map(([ns, p]) => ` xmlns:${p}="${escapeXml(ns)}"`).join('');
    },
  };
}

/**
 * A LOCK body (RFC 4918 §14.11): the scope asked for and the owner, kept as XML; an owner longer
 * than `maxOwnerBytes` answers 413.
 */
export function parseLockinfo(
  body: string,
  maxOwnerBytes: number,
): { scope: 'exclusive' | 'shared'; owner: string } {
  const root = parseXml(body);
  if (root.namespaceURI !== DAV_NS || root.localName !== 'lockinfo') {
    throw new HttpError('bad_request', 'a LOCK body is a DAV:lockinfo element');
  }
  let scope: 'exclusive' | 'shared' | null = null;
  let owner = '';
  const serializer = new XMLSerializer();
  for (const child of elements(root)) {
    if (child.namespaceURI !== DAV_NS) continue;
    if (child.localName === 'lockscope') {
      const kind = elements(child)[0]?.localName;
      if (kind === 'exclusive' || kind === 'shared') scope = kind;
    } else if (child.localName === 'locktype') {
      if (elements(child)[0]?.localName !== 'write')
        throw new HttpError('bad_request', 'only write locks exist');
    } else if (child.localName === 'owner') {
      for (let n = child.firstChild; n; n = n.nextSibling) owner += serializer.serializeToString(n as never);
    }
  }
  if (!scope) throw new HttpError('bad_request', 'DAV:lockinfo needs a lockscope of exclusive or shared');
  assertWellFormed(owner, 'the lock owner');
  if (Buffer.byteLength(owner) > maxOwnerBytes)
    throw new HttpError('payload_too_large', `a lock owner may be at most ${maxOwnerBytes} bytes`);
  return { scope, owner };
}

/** The DAV:activelock of a lock, for lockdiscovery and LOCK answers. */
export function activeLock(lock: {
  scope: string;
  depth: string;
  owner: string;
  timeout_s: number;
  token: string;
  href: string;
}): string {
  return (
    `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope>` +
    `<D:depth>${lock.depth === 'infinity' ? 'infinity' : '0'}</D:depth>` +
    (lock.owner ? `<D:owner>${lock.owner}</D:owner>` : '') +
    `<D:timeout>Second-${lock.timeout_s}</D:timeout>` +
    `<D:locktoken><D:href>${escapeXml(lock.token)}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${escapeXml(lock.href)}</D:href></D:lockroot></D:activelock>`
  );
}

export const SUPPORTED_LOCK =
  '<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
  '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>';

/** One PROPPATCH instruction, in document order. */
export type PropUpdate = { op: 'set'; prop: PropName; value: string } | { op: 'remove'; prop: PropName };

/**
 * Parses a PROPPATCH body (RFC 4918 §14.19): `set` and `remove` in document order. A set value is
 * kept as XML, its elements carrying the namespace declarations they need.
 */
export function parseProppatch(body: string | undefined): PropUpdate[] {
  if (!body || body.trim() === '')
    throw new HttpError('bad_request', 'PROPPATCH needs a DAV:propertyupdate body');
  const root = parseXml(body);
  if (root.namespaceURI !== DAV_NS || root.localName !== 'propertyupdate') {
    throw new HttpError('bad_request', 'a PROPPATCH body is a DAV:propertyupdate element');
  }
  const out: PropUpdate[] = [];
  const serializer = new XMLSerializer();
  for (const action of elements(root)) {
    if (action.namespaceURI !== DAV_NS || (action.localName !== 'set' && action.localName !== 'remove'))
      continue;
    for (const propEl of elements(action)) {
      if (propEl.namespaceURI !== DAV_NS || propEl.localName !== 'prop') continue;
      for (const p of elements(propEl)) {
        const prop = { ns: p.namespaceURI ?? '', name: p.localName ?? '' };
        if (action.localName === 'remove') out.push({ op: 'remove', prop });
        else {
          let value = '';
          for (let n = p.firstChild; n; n = n.nextSibling) value += serializer.serializeToString(n as never);
          assertWellFormed(value, `the value of ${prop.name}`);
          out.push({ op: 'set', prop, value });
        }
      }
    }
  }
  return out;
}

/** A PROPPATCH answer: one response, every property with its status. */
export function proppatchStatus(href: string, results: Array<{ prop: PropName; status: string }>): string {
  const names = prefixer();
  const stats = results
    .map(
      (r) =>
        `<D:propstat><D:prop><${names.tag(r.prop)}/></D:prop><D:status>HTTP/1.1 ${r.status}</D:status></D:propstat>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus${names.declarations()}><D:response><D:href>${escapeXml(href)}</D:href>${stats}</D:response></D:multistatus>`;
}

/**
 * An upper bound of the elements in an XML text: every element starts with `<` and a name
 * (end tags, comments, CDATA and processing instructions do not count).
 */
function elementsAtLeast(body: string, bound: number): boolean {
  const start = /<[^/?!]/g;
  for (let n = 0; start.exec(body); ) if (++n >= bound) return true;
  return false;
}

function parseXml(body: string): Element {
  // A DOM of a megabyte of empty elements takes the parser a second and a hundred megabytes.
  if (elementsAtLeast(body, DAV_LIMITS.xmlElements + 1))
    throw new HttpError(
      'payload_too_large',
      `an XML body may have at most ${DAV_LIMITS.xmlElements} elements`,
    );
  let failed: string | null = null;
  let root: unknown = null;
  try {
    const doc = new DOMParser({
      onError: (level, message) => {
        if (level !== 'warning') failed ??= message;
      },
    }).parseFromString(body, 'application/xml');
    root = doc.documentElement;
  } catch (error) {
    failed = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  }
  if (failed || !root)
    throw new HttpError('bad_request', `the XML body is not well-formed${failed ? `: ${failed}` : ''}`);
  return root as unknown as Element;
}

function elements(parent: Element): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling)
    if (n.nodeType === 1) out.push(n as unknown as Element);
  return out;
}

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

/** One resource's answer in a multistatus: the properties found, and those that are not there. */
export interface DavResponse {
  href: string;
  found: Array<{ prop: PropName; xml: string }>;
  missing: PropName[];
}

/** A property's key in a map of values: its namespace and name. */
export const propKey = (p: PropName): string => `${p.ns}\n${p.name}`;

/**
 * One resource's answer from its property values (by `propKey`): what was asked, found or
 * missing; `allprop` and `propname` answer the `listed` properties it has.
 */
export function answerOf(
  href: string,
  values: Map<string, string>,
  wanted: PropName[] | 'all' | 'names',
  listed: PropName[],
): DavResponse {
  // One look-up per property: a listing of thousands answers each of them.
  const found: DavResponse['found'] = [];
  const missing: PropName[] = [];
  for (const prop of wanted === 'names' || wanted === 'all' ? listed : wanted) {
    const xml = values.get(propKey(prop));
    if (xml !== undefined) found.push({ prop, xml: wanted === 'names' ? '' : xml });
    else if (Array.isArray(wanted)) missing.push(prop);
  }
  return { href, found, missing };
}

/** A 207 Multi-Status body is this, each response's `responseXml`, then `MULTISTATUS_TAIL`. */
export const MULTISTATUS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">';
export const MULTISTATUS_TAIL = '</D:multistatus>';

/**
 * One resource's `DAV:response`. Properties in other namespaces get prefixes declared on the
 * response itself, so that a multistatus can be written out one response at a time.
 */
export function responseXml(r: DavResponse): string {
  const names = prefixer();
  const stat = (inner: string, status: string) =>
    `<D:propstat><D:prop>${inner}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`;
  const found = r.found
    .map(({ prop, xml }) => {
      const tag = names.tag(prop);
      return xml === '' ? `<${tag}/>` : `<${tag}>${xml}</${tag.split(' ')[0]}>`;
    })
    .join('');
  const missing = r.missing.map((p) => `<${names.tag(p)}/>`).join('');
  const declarations = names.declarations().replace(' xmlns:D="DAV:"', '');
  return `<D:response${declarations}><D:href>${escapeXml(r.href)}</D:href>${found ? stat(found, '200 OK') : ''}${missing ? stat(missing, '404 Not Found') : ''}</D:response>`;
}
