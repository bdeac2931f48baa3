import type { AdminCommand } from '../command.ts';

export const command: AdminCommand = {
  name: 'migrate',
  usage: 'migrate',
  summary: 'not built yet',
  async run() {
    process.stderr.write('dfs admin migrate: not built yet\n');
    return 1;
  },
};
