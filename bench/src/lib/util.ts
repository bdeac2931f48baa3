import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 50 && sorted.length % 2 === 0) {
    return (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  }
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function sizeLabel(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB) return `${Math.round(bytes / MiB)} MiB`;
  return `${Math.round(bytes / 1024)} KiB`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes `size` random bytes to `path` (8 MiB at a time, never all in memory). */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const buf = Buffer.allocUnsafe(8 * MiB);
    for (let off = 0; off < size; off += buf.length) {
      const n = Math.min(buf.length, size - off);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n, off);
    }
  } finally {
    await fh.close();
  }
}

/** Overwrites the first 64 KiB with fresh random bytes: the same file, new content (and SHA-1). */
export async function freshenHead(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(randomFillSync(Buffer.alloc(64 * 1024)), 0, 64 * 1024, 0);
  } finally {
    await fh.close();
  }
}

export async function sha1OfFile(path: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to the end; the wall time covers spawn to exit. Throws on a non-zero exit. */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; allowFail?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    child.once('error', reject);
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a program that exits without reading its input
      child.stdin.end(options.input);
    }
    child.once('close', (code) => {
      const result = { code, stdout, stderr, ms: performance.now() - t0 };
      if (code !== 0 && !options.allowFail) {
        reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr.trim()}`));
      } else resolve(result);
    });
  });
}

// ---- /proc accounting (Linux) ----
// Synchronous on purpose: they are sampled inside upload state events, at the exact transition.

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** Peak resident set size (VmHWM) in bytes. */
export function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Current resident set size (VmRSS) in bytes. */
export function currentRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0; needs to own the process or be root). */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state(0) ppid(1) … utime(11) stime(12)
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds the whole machine spent busy (every process and the kernel: user, nice, system,
 * irq, softirq, steal from /proc/stat). Nothing else runs during the bench, so the difference over
 * a transfer is what that transfer cost, on both sides of the loopback.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLOCK_TICKS
  );
}

/** Bytes a process caused to be written to / read from the block layer. */
export function ioBytes(pid: number): { read: number; write: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const get = (key: string) => Number(new RegExp(`^${key}: (\\d+)`, 'm').exec(io)?.[1] ?? 0);
  return { read: get('read_bytes'), write: get('write_bytes') };
}

/** CPU seconds of the live processes owned by `uid` (the SFTP sessions of the test user). */
export function cpuSecondsOfUid(uid: number): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (Number(m?.[1]) === uid) total += cpuSeconds(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
