import type { AdminCommand } from '../command.ts';

export const command: AdminCommand = {
  name: 'backup',
  usage: 'backup',
  summary: 'not built yet',
  async run() {
    process.stderr.write('dfs admin backup: not built yet\n');
    return 1;
  },
};
