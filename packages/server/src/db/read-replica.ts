import type { FastifyBaseLogger } from 'fastify';
import type { Knex } from 'knex';

export interface ReplicaOptions {
  /** Past this much lag (or this long without an answer) every read goes to the primary. */
  maxLagMs: number;
  /** How often the replica's position is compared with the primary's. */
  pollMs: number;
  now: () => number;
  log: FastifyBaseLogger;
}

/**
 * Knows how far behind the primary a MariaDB read replica is, from GTIDs rather than from
 * `Seconds_Behind_Master` (whole seconds, and 0 while the replica's I/O thread is itself behind):
 * each poll notes the time, reads the primary's binlog position, and asks the replica to wait for
 * that position with `MASTER_GTID_WAIT`. When it answers, every transaction the primary committed
 * before the noted time is visible on the replica: that time is `freshAsOf`.
 *
 * One app instance's clock makes both ends of the comparison, so skew between the database
 * servers plays no part; the only cross-instance comparison (a session's last write, stamped by
 * whichever instance took it) allows `SKEW_MS` between app instances.
 */
export class ReplicaTracker {
  private freshAsOf = 0;
  /** The last poll failed (replica down, unreachable, or behind past the bound): not used until one succeeds. */
  private failing = false;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  private lastError: string | null = null;

  static readonly SKEW_MS = 250;

  constructor(
    private readonly primary: Knex,
    private readonly replica: Knex,
    private readonly options: ReplicaOptions,
  ) {}

  start(): void {
    this.stopped = false;
    const tick = () => {
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (!this.stopped) this.timer = setTimeout(tick, this.options.pollMs);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  /**
   * Whether a read may go to the replica: it has answered recently enough, and it already holds
   * this session's last write (read-your-writes), when there is one.
   */
  usableFor(lastWriteAt: number | null): boolean {
    const now = this.options.now();
    if (this.failing || now - this.freshAsOf > this.options.maxLagMs) return false;
    return lastWriteAt === null || this.freshAsOf >= lastWriteAt + ReplicaTracker.SKEW_MS;
  }

  /** How far behind the primary the replica is known to be; null while it is unusable or not yet polled. */
  lagSeconds(): number | null {
    if (this.failing || this.freshAsOf === 0) return null;
    return Math.max(0, this.options.now() - this.freshAsOf) / 1000;
  }

  /** A read on the replica failed: stop sending reads there until a poll succeeds again. */
  reportFailure(): void {
    this.failing = true;
  }

  private async poll(): Promise<void> {
    const startedAt = this.options.now();
    try {
      const [primaryRows] = (await this.primary.raw('SELECT @@gtid_binlog_pos AS pos')) as [
        { pos: string }[],
      ];
      const position = primaryRows[0]?.pos ?? '';
      // A primary that writes no binlog has nothing a replica could follow.
      if (!position) throw new Error('the primary has no GTID binlog position (is log_bin on?)');
      const waitSeconds = Math.max(0.01, this.options.maxLagMs / 1000);
      const [rows] = (await this.replica.raw('SELECT MASTER_GTID_WAIT(?, ?) AS reached', [
        position,
        waitSeconds,
      ])) as [{ reached: number }[]];
      if (Number(rows[0]?.reached) !== 0) throw new Error(`replica is more than ${waitSeconds}s behind`);
      this.freshAsOf = Math.max(this.freshAsOf, startedAt);
      this.failing = false;
      if (this.lastError) this.options.log.info('read replica caught up; reads use it again');
      this.lastError = null;
    } catch (error) {
      this.failing = true;
      const message = (error as Error).message;
      if (message !== this.lastError) {
        this.options.log.warn({ err: error }, 'read replica unusable; reads go to the primary');
      }
      this.lastError = message;
    }
  }
}
