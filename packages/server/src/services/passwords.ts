import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id with the server secret as a pepper: a leaked database alone is not enough to guess
 * passwords offline. OWASP's floor (19 MiB, t=2, p=1) keeps a sign-in in the tens of milliseconds.
 * Changing DFS_SECRET therefore invalidates every password and share password.
 */
export class PasswordHasher {
  private readonly options;
  private dummy: Promise<string> | undefined;

  constructor(secret: string) {
    this.options = {
      algorithm: 2 /* Algorithm.Argon2id, a const enum */,
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
      secret: Buffer.from(secret, 'utf8'),
    } as const;
  }

  hash(password: string): Promise<string> {
    return hash(password, this.options);
  }

  async verify(hashed: string, password: string): Promise<boolean> {
    try {
      return await verify(hashed, password, { secret: this.options.secret });
    } catch {
      return false;
    }
  }

  /** Verifies against a throwaway hash so an unknown username costs as long as a wrong password. */
  async burn(password: string): Promise<void> {
    this.dummy ??= this.hash('dfs-timing-equaliser');
    await this.verify(await this.dummy, password);
  }
}
