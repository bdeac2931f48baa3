import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';

export { freePort } from './ports.ts';

const SERVER = path.resolve(import.meta.dirname, '../../server');

/** The server as a real process, for crash tests and clusters: SIGKILL means SIGKILL. */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  /** The last 64 KiB of what the server printed. */
  output = '';

  constructor(
    readonly env: Record<string, string>,
    /**
     * logFile: every line the server prints is appended there too. built: run the production
     * bundle (dist/main.js, `pnpm --filter @dfs/server build`) instead of the sources through tsx.
     */
    private readonly options: { logFile?: string; built?: boolean } = {},
  ) {}

  /** The process's pid while it runs; 0 before start and after it exited. */
  get pid(): number {
    const child = this.child;
    return child && child.exitCode === null && child.signalCode === null ? (child.pid ?? 0) : 0;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.env.DFS_PORT}`;
  }

  async start(): Promise<void> {
    const args = this.options.built
      ? ['--enable-source-maps', path.join(SERVER, 'dist/main.js')]
      : ['--import', 'tsx', path.join(SERVER, 'src/main.ts')];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, DFS_HOST: '127.0.0.1', DFS_LOG_LEVEL: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log ??= this.options.logFile ? createWriteStream(this.options.logFile, { flags: 'a' }) : undefined;
    const collect = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-64 * 1024);
      this.log?.write(d);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    // From the sources a start compiles the server through tsx (its digest threads too): on a busy
    // machine with a cold cache that can take most of a minute.
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited: ${this.output}`);
      try {
        if ((await fetch(`${this.baseUrl}/readyz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not become ready: ${this.output}`);
  }

  /** SIGTERM (a graceful shutdown), SIGKILL after `graceMs`; closes the log file. */
  async stop(graceMs = 10_000): Promise<void> {
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.kill('SIGTERM');
    clearTimeout(timer);
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    this.log = undefined;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}
