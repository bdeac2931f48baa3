/**
 * `pnpm dfs …` from a checkout: `dfs admin …` runs the server's operations commands (they read the
 * server's settings and database on this host); every other command is the client.
 */
// Paths on the command line mean what they mean where pnpm was started.
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
const [first, ...rest] = process.argv.slice(2);
if (first === 'admin') {
  const { adminMain } = await import('../packages/server/src/admin/cli.ts');
  process.exitCode = await adminMain(rest);
} else {
  await import('../packages/client/src/cli.ts');
}
