import { median } from './util.ts';

/**
 * One line of the results table. `values` are the per-run numbers; the table shows their median
 * (and min–max), the alternative's median measured in the same run, and the ratio between them.
 */
export interface Row {
  group: string;
  what: string;
  unit: 'MB/s' | 's' | 'ms' | 'MB' | 'files/s' | '%';
  values: number[];
  /** The alternative measured in the same run. */
  alt?: { name: string; values: number[] };
  /** Whether a bigger number is better (throughputs) or worse (times, memory). */
  higherIsBetter?: boolean;
  note?: string;
}

const rows: Row[] = [];
const failures: string[] = [];
const notes: string[] = [];

/** A line under the tables: evidence that is not a median of a ratio (CPU shares, disk bytes). */
export function addNote(note: string): void {
  notes.push(note);
}

export function allNotes(): readonly string[] {
  return notes;
}

export function addRow(row: Row): void {
  rows.push(row);
}

export function addFailure(message: string): void {
  failures.push(message);
  console.error(`bench: FAILED: ${message}`);
}

export function allFailures(): readonly string[] {
  return failures;
}

function fmt(value: number, unit: Row['unit']): string {
  const digits = unit === 's' ? (value < 10 ? 2 : 1) : value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${value.toFixed(digits)} ${unit}`;
}

function spread(values: number[], unit: Row['unit']): string {
  if (values.length < 2) return '';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const digits = unit === 's' ? 2 : hi < 10 ? 2 : hi < 100 ? 1 : 0;
  return ` (${lo.toFixed(digits)}–${hi.toFixed(digits)})`;
}

/**
 * "How many times as good as the alternative": for throughputs dfs ÷ alt, for times and memory
 * alt ÷ dfs, so > 1 always means dfs does better and < 1 that it does worse.
 */
function ratio(row: Row): string {
  if (!row.alt) return '';
  const mine = median(row.values);
  const theirs = median(row.alt.values);
  if (mine === 0 || theirs === 0) return '';
  const r = row.higherIsBetter ? mine / theirs : theirs / mine;
  return `${r.toFixed(2)}×`;
}

export function renderTable(): string {
  const lines = [
    '| group | measurement | dfs: median (min–max) | alternative | alternative: median | dfs vs alternative | runs |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const runs = row.alt ? `${row.values.length} / ${row.alt.values.length}` : `${row.values.length}`;
    const what = row.note ? `${row.what} — ${row.note}` : row.what;
    lines.push(
      `| ${row.group} | ${what} | ${fmt(median(row.values), row.unit)}${spread(row.values, row.unit)} | ${row.alt?.name ?? ''} | ${row.alt ? fmt(median(row.alt.values), row.unit) : ''} | ${ratio(row)} | ${runs} |`,
    );
  }
  return lines.join('\n');
}
