import type { AdminCommand } from '../command.ts';

export const command: AdminCommand = {
  name: 'restore',
  usage: 'restore',
  summary: 'not built yet',
  async run() {
    process.stderr.write('dfs admin restore: not built yet\n');
    return 1;
  },
};
