/**
 * Calls `onStop` once with the reason when the user asks the cluster to stop: SIGINT, SIGTERM or
 * SIGHUP to this process, or its launcher gone. `pnpm cluster` runs `exec bash
 * scripts/cluster.sh`, which execs this process, so pnpm's own child is this process and pnpm
 * passes SIGINT and SIGTERM on to it; SIGHUP ends pnpm without passing anything on, which leaves
 * this process with another parent. Without the watch the whole cluster would live on, orphaned,
 * holding its ports.
 */
export function onStopRequest(onStop: (why: string) => void, everyMs = 250): void {
  let asked = false;
  const stop = (why: string) => {
    if (asked) return;
    asked = true;
    clearInterval(timer);
    onStop(why);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) stop(`its launcher (pid ${parent}) exited`);
  }, everyMs);
  timer.unref();
}
