import path from 'node:path';
import { startCluster } from './cluster.ts';
import { onStopRequest } from './launcher-watch.ts';

/**
 * `pnpm cluster`: a dfs cluster on this machine until Ctrl-C. DFS_CLUSTER_DIR keeps its files
 * (logs, cluster.json) after the stop; without it everything goes to a temp dir that is removed.
 * DFS_CLUSTER_PORT is nginx's port (default 8088; 0 picks a free one). DFS_CLUSTER_S3=0 leaves
 * out the Ceph node.
 */
async function main(): Promise<void> {
  const given = process.env.DFS_CLUSTER_DIR;
  const port = Number(process.env.DFS_CLUSTER_PORT ?? 8088);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`DFS_CLUSTER_PORT: not a port: ${process.env.DFS_CLUSTER_PORT}`);
  }
  const s3 = process.env.DFS_CLUSTER_S3 === undefined ? undefined : process.env.DFS_CLUSTER_S3 !== '0';
  // Ctrl-C, a signal to `pnpm cluster`'s pid or to this one: each stops the cluster, also while
  // it is still starting.
  let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
  let stopping: string | undefined;
  const stop = (why: string) => {
    stopping = why;
    if (!cluster) return console.log(`dfs cluster: ${why}, stopping once the pieces started so far are up`);
    console.log(`dfs cluster: ${why}, stopping`);
    cluster.stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  onStopRequest(stop);

  const started = Date.now();
  cluster = await startCluster({
    dir: given ? path.resolve(given) : undefined,
    keep: Boolean(given),
    port: port === 0 ? undefined : port,
    s3,
    // scripts/cluster.sh builds it: the cluster runs the server as production does.
    built: true,
    log: (line) => console.log(`dfs cluster: ${line}`),
  });
  if (stopping) return stop(stopping);
  const { info } = cluster;
  console.log(
    [
      '',
      `dfs cluster is up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${info.url}`,
      ...info.apps.map((app, i) => `  app ${i + 1}: ${app.url} (pid ${app.pid}, log ${app.log})`),
      `  nginx: pid ${info.nginx.pid}, access log ${info.nginx.accessLog}`,
      `  database: primary + GTID replica (DFS_DB_READ_URL)`,
      ...info.nodes.map((node) => `  node ${node.name}: pid ${node.pid}`),
      `  details: ${path.join(info.dir, 'cluster.json')}`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((error) => {
  console.error(`dfs cluster: ${(error as Error).message}`);
  process.exit(1);
});
