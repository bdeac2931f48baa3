/**
 * The three-character pieces a name search looks up (repositories/files.ts): every run of three
 * ASCII characters of the name, lowercased one character at a time. A search for a substring of
 * three or more ASCII characters finds its names among those holding all of its pieces, then
 * checks each with the same LIKE the scan uses; other searches scan.
 *
 * One character at a time: a character whose lowercase is longer (`İ` is `i` and a dot) keeps
 * its first character, as the databases' LOWER does, so a name's pieces line up with what LOWER
 * makes of it and nothing a scan would find is missed.
 */
export const GRAM = 3;

/** Only ASCII: every character below U+0080. */
const isAscii = (text: string) => [...text].every((c) => c.charCodeAt(0) < 0x80);

/** Lowercased one code point at a time, each to one code point. */
export function foldName(name: string): string {
  let out = '';
  for (const c of name) {
    const lower = [...c.toLowerCase()];
    out += lower[0] ?? c;
  }
  return out;
}

/** The distinct ASCII pieces of a name (or of a search's lowercased text). */
export function nameGrams(name: string): string[] {
  const chars = [...foldName(name)];
  const out = new Set<string>();
  for (let i = 0; i + GRAM <= chars.length; i++) {
    const gram = chars.slice(i, i + GRAM).join('');
    if (isAscii(gram)) out.add(gram);
  }
  return [...out];
}

/** Whether a search text can be looked up by its pieces: three or more ASCII characters. */
export function searchableByGrams(text: string): boolean {
  return text.length >= GRAM && isAscii(text);
}
