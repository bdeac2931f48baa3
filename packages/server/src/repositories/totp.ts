import type { Knex } from 'knex';

export interface TotpRow {
  user_id: string;
  /** The shared secret, encrypted with a key derived from the server secret (services/two-factor.ts). */
  secret: string;
  /** NULL while the setup waits for its first code. */
  enabled_at: number | null;
  /** The last time step a code was accepted for: a code is good once (RFC 6238 §5.2). */
  last_step: number | null;
  created_at: number;
}

export interface RecoveryCodeRow {
  user_id: string;
  code_hash: string;
  used_at: number | null;
}

/** A user's TOTP secret and recovery codes. */
export class TotpRepository {
  constructor(private readonly db: Knex) {}

  async find(userId: string): Promise<TotpRow | undefined> {
    return this.db<TotpRow>('user_totp').where({ user_id: userId }).first();
  }

  /** Everything of a user's two-factor sign-in, whether set up or only begun. */
  async delete(userId: string): Promise<boolean> {
    await this.db('totp_recovery_codes').where({ user_id: userId }).delete();
    return (await this.db('user_totp').where({ user_id: userId }).delete()) === 1;
  }

  async insert(row: TotpRow, codeHashes: string[]): Promise<void> {
    await this.db('user_totp').insert(row);
    await this.db('totp_recovery_codes').insert(
      codeHashes.map((code_hash) => ({ user_id: row.user_id, code_hash, used_at: null })),
    );
  }

  /** Turns a begun setup on; false when there is none, or it is on already (a second confirm). */
  async enable(userId: string, at: number, step: number): Promise<boolean> {
    const changed = await this.db('user_totp')
      .where({ user_id: userId })
      .whereNull('enabled_at')
      .update({ enabled_at: at, last_step: step });
    return changed === 1;
  }

  /**
   * Records `step` as used when it is later than the last one used: false for a code already
   * used (or an older one), also when two requests race with the same code.
   */
  async useStep(userId: string, step: number): Promise<boolean> {
    const changed = await this.db('user_totp')
      .where({ user_id: userId })
      .whereNotNull('enabled_at')
      .andWhere((q) => q.whereNull('last_step').orWhere('last_step', '<', step))
      .update({ last_step: step });
    return changed === 1;
  }

  /** Spends an unused recovery code; false when it is unknown or spent (also by a racing request). */
  async useRecoveryCode(userId: string, codeHash: string, at: number): Promise<boolean> {
    const changed = await this.db('totp_recovery_codes')
      .where({ user_id: userId, code_hash: codeHash })
      .whereNull('used_at')
      .update({ used_at: at });
    return changed === 1;
  }

  async recoveryCodesLeft(userId: string): Promise<number> {
    const row = await this.db('totp_recovery_codes')
      .where({ user_id: userId })
      .whereNull('used_at')
      .count({ n: '*' })
      .first();
    return Number(row?.n ?? 0);
  }
}
