import { formatBytes } from '@dfs/client';
import { i18n } from '../i18n/index.ts';

export { formatBytes };

/** 3 s, 4 min 05 s, 1 h 02 min — an ETA reads better coarse than exact. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '–';
  // Rounded up: "0 s left" while anything is left would be a promise broken at once.
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** A date in the UI language; formatters are cached because a 10,000-row table formats a lot. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '–';
  const locale = i18n.global.locale.value;
  let f = formatters.get(locale);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
    formatters.set(locale, f);
  }
  return f.format(new Date(iso));
}

const relativeFormatters = new Map<string, Intl.RelativeTimeFormat>();
const RELATIVE_STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Number.POSITIVE_INFINITY],
];

/** "3 minutes ago", "yesterday" in the UI language; the exact time belongs in a tooltip. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  const locale = i18n.global.locale.value;
  let f = relativeFormatters.get(locale);
  if (!f) {
    f = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
    relativeFormatters.set(locale, f);
  }
  let value = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of RELATIVE_STEPS) {
    if (Math.abs(value) < size) return f.format(Math.round(value), unit);
    value /= size;
  }
  return formatDate(iso);
}
