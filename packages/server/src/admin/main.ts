import { adminMain } from './cli.ts';

process.exitCode = await adminMain(process.argv.slice(2));
