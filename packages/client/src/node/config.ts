import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface ClientConfig {
  /** Server base URL, e.g. `http://localhost:3000`. */
  server: string;
  /** Bearer token from `POST /api/auth/signin`. */
  token: string;
  username?: string;
}

/** `$DFS_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/dfs/config.json`, else `~/.config/dfs/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DFS_CLIENT_CONFIG) return env.DFS_CLIENT_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'dfs', 'config.json');
}

export async function loadConfig(path = configPath()): Promise<ClientConfig | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const data = JSON.parse(text) as Partial<ClientConfig>;
  if (typeof data.server !== 'string' || typeof data.token !== 'string') {
    throw new Error(`${path}: expected {"server": "...", "token": "..."}`);
  }
  return { server: data.server, token: data.token, ...(data.username ? { username: data.username } : {}) };
}

/** Writes the config readable by the owner only (it holds a session token). */
export async function saveConfig(config: ClientConfig, path = configPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

export async function clearConfig(path = configPath()): Promise<void> {
  await rm(path, { force: true });
}
