import { parseArgs } from 'node:util';
import { loadConfig } from '../../config.ts';
import { formatSummary, verifyBackup } from '../../services/operations/backup/verify.ts';
import { type AdminCommand, AdminUsageError } from '../command.ts';

export const command: AdminCommand = {
  name: 'verify',
  usage: 'verify <backup dir>',
  summary: "reads every replica a backup's manifest lists from the nodes and checks it",
  async run(args) {
    let positionals: string[];
    try {
      ({ positionals } = parseArgs({ args, allowPositionals: true, options: {} }));
    } catch (error) {
      throw new AdminUsageError((error as Error).message);
    }
    if (positionals.length !== 1) throw new AdminUsageError('name one backup folder');
    const config = loadConfig();
    const summary = await verifyBackup({
      dir: positionals[0] as string,
      nodeUrls: config.nodeUrls,
      progress: (line) => process.stderr.write(`verify: ${line}\n`),
    });
    process.stdout.write(formatSummary(summary));
    const bad =
      summary.replicas.missing + summary.replicas.corrupt + summary.replicas.unreachable + summary.lost;
    return bad > 0 ? 1 : 0;
  },
};
