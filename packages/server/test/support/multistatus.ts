import { DOMParser } from '@xmldom/xmldom';

/**
 * A 207 Multi-Status body read by a separate XML parser: each response's href, the properties
 * found (by `{ns}name`; a value with an element is `{ns}name=text` of its first element, as in
 * `{DAV:}collection=`) and the ones answered as not found.
 */
export interface Entry {
  href: string;
  props: Map<string, string>;
  missing: string[];
}

export function parseMultistatus(xml: string): Entry[] {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  const out: Entry[] = [];
  const responses = doc.getElementsByTagNameNS('DAV:', 'response');
  for (let i = 0; i < responses.length; i++) {
    const r = responses.item(i)!;
    const entry: Entry = {
      href: r.getElementsByTagNameNS('DAV:', 'href').item(0)?.textContent ?? '',
      props: new Map(),
      missing: [],
    };
    const stats = r.getElementsByTagNameNS('DAV:', 'propstat');
    for (let j = 0; j < stats.length; j++) {
      const stat = stats.item(j)!;
      const ok = (stat.getElementsByTagNameNS('DAV:', 'status').item(0)?.textContent ?? '').includes(' 200 ');
      const prop = stat.getElementsByTagNameNS('DAV:', 'prop').item(0)!;
      for (let n = prop.firstChild; n; n = n.nextSibling) {
        if (n.nodeType !== 1) continue;
        const el = n as unknown as Element;
        const key = `{${el.namespaceURI ?? ''}}${el.localName}`;
        if (!ok) {
          entry.missing.push(key);
          continue;
        }
        const child = el.getElementsByTagNameNS('*', '*').item(0);
        entry.props.set(
          key,
          child ? `{${child.namespaceURI}}${child.localName}=${child.textContent}` : (el.textContent ?? ''),
        );
      }
    }
    out.push(entry);
  }
  return out;
}
