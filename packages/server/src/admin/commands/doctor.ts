import type { AdminCommand } from '../command.ts';

export const command: AdminCommand = {
  name: 'doctor',
  usage: 'doctor',
  summary: 'not built yet',
  async run() {
    process.stderr.write('dfs admin doctor: not built yet\n');
    return 1;
  },
};
