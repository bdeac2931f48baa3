/**
 * A readable device from a User-Agent: the browser and the system, the way a person names them
 * ("Firefox on Linux"). A short parse of the common cases rather than a parser library: the
 * sessions list only needs something recognisable, and the raw string is shown beside it.
 */
export interface Device {
  browser: string | null;
  os: string | null;
}

/** Order matters: Edge and Opera also say Chrome, Chrome also says Safari. */
const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\/\d/, 'Edge'],
  [/\b(?:OPR|Opera)\/\d/, 'Opera'],
  [/\bSamsungBrowser\/\d/, 'Samsung Internet'],
  [/\b(?:Firefox|FxiOS)\/\d/, 'Firefox'],
  [/\b(?:Headless)?(?:Chrome|CriOS)\/\d/, 'Chrome'],
  [/\bChromium\/\d/, 'Chromium'],
  [/\bVersion\/\d[.\d]* (?:Mobile\/\S+ )?Safari\//, 'Safari'],
  // Programs that sign in with a session (dfs's own CLI and library, scripts).
  [/^(?:node|undici)\b/i, 'Node.js'],
  [/\bcurl\/\d/, 'curl'],
];

const SYSTEMS: [RegExp, string][] = [
  [/\b(?:iPhone|iPod)\b/, 'iOS'],
  [/\biPad\b/, 'iPadOS'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b|\bX11\b/, 'Linux'],
];

export function parseUserAgent(ua: string | null | undefined): Device {
  if (!ua) return { browser: null, os: null };
  const browser = BROWSERS.find(([re]) => re.test(ua))?.[1] ?? null;
  const os = SYSTEMS.find(([re]) => re.test(ua))?.[1] ?? null;
  return { browser, os };
}
