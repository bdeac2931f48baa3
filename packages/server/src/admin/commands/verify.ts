import type { AdminCommand } from '../command.ts';

export const command: AdminCommand = {
  name: 'verify',
  usage: 'verify',
  summary: 'not built yet',
  async run() {
    process.stderr.write('dfs admin verify: not built yet\n');
    return 1;
  },
};
