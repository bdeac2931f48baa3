import type { Knex } from 'knex';

export interface PasskeyRow {
  id: string;
  user_id: string;
  /** SHA-256 (hex) of `credential_id`: the unique key a sign-in looks the credential up by. */
  credential_hash: string;
  /** The credential id as the browser sends it (base64url). */
  credential_id: string;
  /** The COSE public key, base64url. */
  public_key: string;
  /** The authenticator's signature counter at its last use (0 for those that keep none). */
  counter: number;
  /** Comma-separated transports the browser reported (`internal`, `usb`, `hybrid`, …). */
  transports: string | null;
  /** Synced by its provider (iCloud Keychain, Google Password Manager), not bound to one device. */
  backed_up: boolean;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

/** What a challenge was issued for; an answer is only taken for the purpose it was asked for. */
export type ChallengePurpose = 'register' | 'signin' | 'second';

export interface WebauthnChallengeRow {
  id: string;
  /** The user it was issued to; null for a password-less sign-in, where nobody is known yet. */
  user_id: string | null;
  challenge: string;
  purpose: ChallengePurpose;
  expires_at: number;
}

const fromDb = (row: PasskeyRow): PasskeyRow => ({
  ...row,
  counter: Number(row.counter),
  backed_up: Boolean(row.backed_up),
  created_at: Number(row.created_at),
  last_used_at: row.last_used_at == null ? null : Number(row.last_used_at),
});

/** Users' passkeys and the WebAuthn challenges in flight. */
export class PasskeysRepository {
  constructor(private readonly db: Knex) {}

  async insert(row: PasskeyRow): Promise<void> {
    await this.db('passkeys').insert(row);
  }

  async listByUser(userId: string): Promise<PasskeyRow[]> {
    const rows = await this.db<PasskeyRow>('passkeys')
      .where({ user_id: userId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }]);
    return rows.map(fromDb);
  }

  async countByUser(userId: string): Promise<number> {
    const row = await this.db('passkeys').where({ user_id: userId }).count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  async find(userId: string, id: string): Promise<PasskeyRow | undefined> {
    const row = await this.db<PasskeyRow>('passkeys').where({ user_id: userId, id }).first();
    return row && fromDb(row);
  }

  async findByCredentialHash(hash: string): Promise<PasskeyRow | undefined> {
    const row = await this.db<PasskeyRow>('passkeys').where({ credential_hash: hash }).first();
    return row && fromDb(row);
  }

  async rename(userId: string, id: string, name: string): Promise<boolean> {
    return (await this.db('passkeys').where({ user_id: userId, id }).update({ name })) === 1;
  }

  async delete(userId: string, id: string): Promise<boolean> {
    return (await this.db('passkeys').where({ user_id: userId, id }).delete()) === 1;
  }

  /** Every passkey of a user (an administrator's two-factor reset). */
  async deleteByUser(userId: string): Promise<number> {
    return this.db('passkeys').where({ user_id: userId }).delete();
  }

  /**
   * Records a use: the new counter only if the stored one is still what the check compared
   * against, so two sign-ins racing with the same counter value cannot both pass.
   */
  async recordUse(id: string, expectedCounter: number, newCounter: number, at: number): Promise<boolean> {
    const changed = await this.db('passkeys')
      .where({ id, counter: expectedCounter })
      .update({ counter: newCounter, last_used_at: at });
    return changed === 1;
  }

  /** Stores a challenge, and drops the expired ones on the way (they are never answered). */
  async insertChallenge(row: WebauthnChallengeRow, now: number): Promise<void> {
    await this.db('webauthn_challenges').where('expires_at', '<=', now).delete();
    await this.db('webauthn_challenges').insert(row);
  }

  /**
   * Takes a challenge out: whoever deletes the row owns it, so an answer is verified at most once
   * whichever instance gets it. Undefined when unknown, used, expired or of another purpose.
   */
  async consumeChallenge(
    id: string,
    purpose: ChallengePurpose,
    now: number,
  ): Promise<WebauthnChallengeRow | undefined> {
    const row = await this.db<WebauthnChallengeRow>('webauthn_challenges').where({ id }).first();
    if (!row) return undefined;
    if ((await this.db('webauthn_challenges').where({ id }).delete()) !== 1) return undefined;
    if (row.purpose !== purpose || Number(row.expires_at) <= now) return undefined;
    return row;
  }
}
