import type { Knex } from 'knex';
import type { UserRow } from './users.ts';

/** Where an external identity comes from. */
export type IdentityProvider = 'oidc' | 'ldap';

/**
 * An account's link to an identity at a provider: the issuer and the subject it gives, which stay
 * the same for that person whatever their name or address becomes there.
 */
export interface IdentityRow {
  id: string;
  user_id: string;
  provider: IdentityProvider;
  issuer: string;
  subject: string;
  created_at: number;
  last_used_at: number | null;
}

/** An OIDC sign-in between the redirect to the provider and its callback. */
export interface OidcLoginRow {
  state: string;
  nonce: string;
  code_verifier: string;
  redirect_uri: string;
  /** The app path to land on after signing in. */
  return_to: string | null;
  created_at: number;
  expires_at: number;
}

export class IdentitiesRepository {
  constructor(private readonly db: Knex) {}

  /** The account linked to an identity, with the link itself. */
  async findUser(
    provider: IdentityProvider,
    issuer: string,
    subject: string,
  ): Promise<{ identity: IdentityRow; user: UserRow } | undefined> {
    const identity = await this.db<IdentityRow>('user_identities')
      .where({ provider, issuer, subject })
      .first();
    if (!identity) return undefined;
    const user = await this.db<UserRow>('users').where({ id: identity.user_id }).first();
    return user && { identity, user };
  }

  /** Fails with a unique violation when the identity is already linked (a concurrent first sign-in). */
  async insert(row: IdentityRow): Promise<void> {
    await this.db('user_identities').insert(row);
  }

  async touch(id: string, at: number): Promise<void> {
    await this.db('user_identities').where({ id }).update({ last_used_at: at });
  }

  /** Whether the account signs in through `provider` (a directory account checks its password there). */
  async isLinked(userId: string, provider: IdentityProvider): Promise<boolean> {
    return (await this.db('user_identities').where({ user_id: userId, provider }).first('id')) !== undefined;
  }

  /** Which of `userIds` sign in through `provider`. */
  async linkedAmong(userIds: string[], provider: IdentityProvider): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const rows = await this.db('user_identities')
      .whereIn('user_id', userIds)
      .andWhere({ provider })
      .distinct('user_id');
    return new Set(rows.map((r: { user_id: string }) => r.user_id));
  }

  async listByUser(userId: string): Promise<IdentityRow[]> {
    return this.db<IdentityRow>('user_identities').where({ user_id: userId }).orderBy('created_at');
  }

  async delete(userId: string, id: string): Promise<boolean> {
    return (await this.db('user_identities').where({ id, user_id: userId }).delete()) === 1;
  }

  async insertOidcLogin(row: OidcLoginRow): Promise<void> {
    await this.db('oidc_logins').insert(row);
  }

  /**
   * Takes a sign-in in progress by its state, once: the row is deleted, and only the caller whose
   * delete removed it gets it back, so a replayed callback (or two racing ones) finds nothing.
   */
  async takeOidcLogin(state: string, now: number): Promise<OidcLoginRow | undefined> {
    const row = await this.db<OidcLoginRow>('oidc_logins').where({ state }).first();
    if (!row) return undefined;
    const deleted = await this.db('oidc_logins').where({ state }).delete();
    if (deleted !== 1 || Number(row.expires_at) <= now) return undefined;
    return row;
  }

  /** Forgets sign-ins that were started and never finished. */
  async deleteExpiredOidcLogins(now: number): Promise<number> {
    return this.db('oidc_logins').where('expires_at', '<=', now).delete();
  }
}
