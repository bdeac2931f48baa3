import {
  APP_PASSWORD_PREFIX,
  MIN_PASSWORD_LENGTH,
  type PasskeyAssertion,
  type PasskeyCeremony,
  type SecondFactor,
  type User,
} from '@dfs/shared';
import { isUniqueViolation } from '../db/knex.ts';
import { HttpError } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { InviteRow } from '../repositories/invites.ts';
import { clientColumns, type SessionClient } from '../repositories/sessions.ts';
import type { UserRow } from '../repositories/users.ts';
import type { AppPasswordService } from './app-passwords.ts';
import type { LdapSignin } from './identity/ldap.ts';
import { newId, newToken, sha256Hex } from './ids.ts';
import type { AuditRecorder } from './operations/audit.ts';
import type { PasskeyService, RelyingParty } from './passkeys.ts';
import type { PasswordHasher } from './passwords.ts';
import type { TwoFactorService } from './two-factor.ts';

export type SignupMode = 'open' | 'closed' | 'invite';

export interface AuthOptions {
  sessionTtlMs: number;
  /** DFS_SIGNUP. Whatever it says, the first account can always sign up (it becomes the admin). */
  signup: SignupMode;
  passwords: PasswordHasher;
  now: () => number;
  appPasswords: AppPasswordService;
  twoFactor: TwoFactorService;
  /** DFS_LDAP_*: directory users sign in with their directory password; absent: no directory. */
  ldap?: LdapSignin | null;
  /** Passkeys as a second factor after the password; absent: TOTP is the only one. */
  passkeys?: PasskeyService | null;
  /** DFS_REQUIRE_2FA: a session without a second factor may only set one up. */
  requireTwoFactor?: boolean;
  /** Sign-ins, and failed ones, go to the audit log. */
  audit?: AuditRecorder;
}

/**
 * What a sign-in needs of passkeys: where the ceremony runs (resolved only when asked, since a
 * server reached by IP address has no RP ID and TOTP must still work there) and the signed
 * challenge when the client has one.
 */
export interface PasskeyStep {
  rp: () => RelyingParty;
  assertion?: PasskeyAssertion | undefined;
}

export interface Authenticated {
  user: User;
  /** The session behind a sign-in; null when an app password authenticated the request. */
  sessionId: string | null;
  /** Set when an app password authenticated the request. */
  appPasswordId?: string;
  /** That app password's name (what the user called it, or the app it was made for). */
  appPasswordName?: string;
  /** When the user last wrote anything: reads after it must see it (read-your-writes). */
  lastWriteAt: number;
  /**
   * A session of a user with two-factor sign-in on that has not passed it since it was turned on
   * (it signed in before): such a session does not mint app passwords.
   */
  secondFactorMissing?: boolean;
  /**
   * DFS_REQUIRE_2FA: this caller may only set up a second factor (`second_factor_setup_required`,
   * the account has none) or sign in again with it (`second_factor_required`, a session from
   * before it was set up); every other route refuses it.
   */
  secondFactorGate?: 'second_factor_setup_required' | 'second_factor_required';
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    createdAt: new Date(Number(row.created_at)).toISOString(),
    isAdmin: Boolean(row.is_admin),
  };
}

/** What a failed sign-in is, in the audit log: a wrong password or code, or a disabled account. */
const FAILED_SIGNIN = new Set(['invalid_credentials', 'account_disabled', 'totp_invalid', 'passkey_invalid']);

const signupClosed = () =>
  new HttpError(
    'signup_closed',
    'sign-up is closed on this server; an administrator can create your account',
  );

function checkStrength(password: string, username: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new HttpError('weak_password', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (password.toLowerCase() === username.toLowerCase()) {
    throw new HttpError('weak_password', 'password must not be the username');
  }
}

/**
 * A disabled account's sessions and app passwords authenticate nothing, from the next request on
 * (whichever way they were made: password, directory, provider, passkey).
 */
const enabled = (user: UserRow) => user.disabled_at === null || user.disabled_at === undefined;

/** Extends a session at most this often, so a busy client does not write on every request. */
const SLIDE_EVERY_MS = 60_000;

export class AuthService {
  constructor(
    private readonly repos: Repositories,
    private readonly options: AuthOptions,
  ) {}

  /** Self-service sign-up, as DFS_SIGNUP allows; an invite code is spent only by a sign-up that succeeds. */
  async signup(usernameInput: string, password: string, inviteCode?: string): Promise<User> {
    const mode = this.options.signup;
    // Refused before the (deliberately slow) password hash; re-checked in the transaction.
    if (mode === 'closed' && (await this.repos.users.any())) throw signupClosed();
    if (mode === 'invite' && inviteCode === undefined && (await this.repos.users.any())) {
      throw new HttpError('invite_invalid', 'sign-up needs an invite code from an administrator');
    }
    return this.register(usernameInput, password, async (tx, userId, first) => {
      if (first || mode === 'open') return;
      if (mode === 'closed') throw signupClosed();
      const spent =
        inviteCode !== undefined &&
        (await tx.invites.consume(sha256Hex(inviteCode), userId, this.options.now()));
      if (!spent) throw new HttpError('invite_invalid', 'the invite code is unknown, used or expired');
    });
  }

  /** An administrator's account creation: open whatever DFS_SIGNUP says. */
  async createUser(usernameInput: string, password: string, isAdmin = false): Promise<User> {
    return this.register(usernameInput, password, async () => undefined, isAdmin);
  }

  /**
   * Inserts the account; `admit` runs in the same transaction after the insert and may throw to
   * undo it. The first account administers the server; the check and the insert share a transaction.
   */
  private async register(
    usernameInput: string,
    password: string,
    admit: (tx: Repositories, userId: string, first: boolean) => Promise<void>,
    isAdmin = false,
  ): Promise<User> {
    const username = usernameInput.toLowerCase();
    checkStrength(password, username);
    const passwordHash = await this.options.passwords.hash(password);
    try {
      return await this.repos.transaction(async (tx) => {
        const first = !(await tx.users.any());
        const row: UserRow = {
          id: newId(),
          username,
          password_hash: passwordHash,
          is_admin: first || isAdmin,
          created_at: this.options.now(),
        };
        await tx.users.insert(row);
        await admit(tx, row.id, first);
        return toUser(row);
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new HttpError('username_taken', `username "${username}" is taken`);
      throw error;
    }
  }

  /** A single-use sign-up code; only its hash is stored, so it is shown this once. */
  async createInvite(createdBy: string, expiresInMs: number): Promise<{ code: string; row: InviteRow }> {
    const code = newToken(18);
    const now = this.options.now();
    const row: InviteRow = {
      id: newId(),
      code_hash: sha256Hex(code),
      created_by: createdBy,
      created_at: now,
      expires_at: now + expiresInMs,
      used_at: null,
      used_by: null,
    };
    await this.repos.invites.insert(row);
    return { code, row };
  }

  /**
   * The password, then, when the user has two-factor sign-in on, `code`: without one the answer
   * is `totp_required` (the client asks for it and sends both again), a wrong one `totp_invalid`.
   */
  async signin(
    usernameInput: string,
    password: string,
    code?: string,
    client: SessionClient = { userAgent: null, address: null },
    passkey?: PasskeyStep,
  ): Promise<{ user: User; token: string }> {
    const username = usernameInput.toLowerCase();
    let checked: { row: UserRow; method: 'password' | 'ldap' };
    let secondFactor: boolean;
    try {
      checked = await this.checkPassword(username, password);
      secondFactor = await this.secondFactor(checked.row.id, code, passkey);
    } catch (error) {
      // Asking for the second factor is a step, not a failure; a wrong one is.
      if (error instanceof HttpError && FAILED_SIGNIN.has(error.code)) {
        await this.options.audit?.record({
          action: 'auth.signin_failed',
          actor: { id: null, username },
          client,
          details: { reason: error.code },
        });
      }
      throw error;
    }
    const { row, method } = checked;
    const token = newToken();
    const now = this.options.now();
    await this.repos.sessions.insert({
      id: newId(),
      token_hash: sha256Hex(token),
      user_id: row.id,
      created_at: now,
      last_seen_at: now,
      expires_at: now + this.options.sessionTtlMs,
      second_factor_at: secondFactor ? now : null,
      ...clientColumns(client),
    });
    await this.options.audit?.record({
      action: 'auth.signin',
      actor: { id: row.id, username: row.username },
      client,
      details: { method, secondFactor },
    });
    return { user: toUser(row), token };
  }

  /**
   * The account whose password this is. With a directory (LDAP), a directory account's password
   * and an unknown name's are checked there; a local account of the same name that is not linked
   * to the directory keeps its own password (a directory entry never takes it over). The password
   * comes first, so a disabled account is only told so to someone who knows it.
   */
  private async checkPassword(
    username: string,
    password: string,
  ): Promise<{ row: UserRow; method: 'password' | 'ldap' }> {
    const local = await this.repos.users.findByUsername(username);
    const ldap = this.options.ldap;
    let row: UserRow | null | undefined;
    let method: 'password' | 'ldap' = 'password';
    if (ldap && (!local || (await ldap.isDirectoryAccount(local.id)))) {
      method = 'ldap';
      row = await ldap.signin(username, password);
    } else if (!local) {
      await this.options.passwords.burn(password);
    } else if (await this.options.passwords.verify(local.password_hash, password)) {
      row = local;
    }
    if (!row) throw new HttpError('invalid_credentials', 'wrong username or password');
    if (row.disabled_at !== null && row.disabled_at !== undefined) {
      throw new HttpError('account_disabled', 'this account is disabled; ask an administrator');
    }
    return { row, method };
  }

  /**
   * Whether the account has a second factor and the sign-in showed it. Without one the answer
   * names the factors the account has (`factors`): `totp_required` whenever TOTP is one of them
   * (what clients from before passkeys know), else `passkey_required`; a passkey comes with the
   * options to sign (`passkey`), made only now that the password was right, so that nobody
   * learns an account's credential ids from its name alone.
   */
  private async secondFactor(userId: string, code?: string, passkey?: PasskeyStep): Promise<boolean> {
    const passkeys = this.options.passkeys;
    const factors: SecondFactor[] = passkeys
      ? await passkeys.factors(userId)
      : (await this.options.twoFactor.isEnabled(userId))
        ? ['totp']
        : [];
    if (factors.length === 0) return false;
    if (passkeys && passkey?.assertion && factors.includes('passkey')) {
      const { challengeId, response } = passkey.assertion;
      await passkeys.verifySecondFactor(userId, challengeId, response, passkey.rp());
      return true;
    }
    if (factors.includes('totp') && code !== undefined && code.trim() !== '') {
      if (!(await this.options.twoFactor.verify(userId, code))) {
        throw new HttpError('totp_invalid', 'the code is wrong, expired or already used');
      }
      return true;
    }
    let ceremony: PasskeyCeremony | null = null;
    if (passkeys && passkey && factors.includes('passkey')) {
      try {
        ceremony = await passkeys.secondFactorOptions(userId, passkey.rp());
      } catch (error) {
        // Reached by IP address: no passkey can sign here, but a TOTP code still can.
        if (!factors.includes('totp')) throw error;
      }
    }
    const details = { factors: [...factors], ...(ceremony ? { passkey: ceremony } : {}) };
    if (factors.includes('totp')) {
      throw new HttpError(
        'totp_required',
        factors.includes('passkey')
          ? 'confirm with your passkey, or enter the code from your authenticator app (or a recovery code)'
          : 'enter the code from your authenticator app (or one of your recovery codes)',
        details,
      );
    }
    throw new HttpError('passkey_required', 'confirm the sign-in with your passkey', details);
  }

  /** Resolves a bearer/cookie token (a session's or an app password); sessions slide forward while in use. */
  async authenticate(token: string, client?: SessionClient): Promise<Authenticated | null> {
    if (token.startsWith(APP_PASSWORD_PREFIX)) {
      const found = await this.options.appPasswords.authenticate(token);
      return found && enabled(found.user)
        ? this.appPasswordGate(this.authenticatedBy(found.user, null, found))
        : null;
    }
    const now = this.options.now();
    const found = await this.repos.sessions.findLiveWithUser(sha256Hex(token), now);
    if (!found || !enabled(found.user)) return null;
    const { session, user } = found;
    if (now - Number(session.last_seen_at) >= SLIDE_EVERY_MS) {
      await this.repos.sessions.extend(session.id, now, now + this.options.sessionTtlMs, client);
    }
    const { second_factor_at: passed, totp_enabled_at: totpSince, passkey_since: passkeySince } = session;
    // Since when the account has had a second factor (the first of TOTP and its passkeys).
    const since = [totpSince, passkeySince].filter((at) => at !== null).sort((a, b) => a - b)[0] ?? null;
    const secondFactorMissing = since !== null && (passed === null || passed < since);
    // A session an OpenID provider signed in passed its second factor there (the provider owns MFA).
    const byProvider =
      this.options.requireTwoFactor &&
      since === null &&
      passed !== null &&
      (await this.repos.identities.isLinked(user.id, 'oidc'));
    const gate = !this.options.requireTwoFactor
      ? undefined
      : since === null && !byProvider
        ? ('second_factor_setup_required' as const)
        : secondFactorMissing
          ? ('second_factor_required' as const)
          : undefined;
    return {
      ...this.authenticatedBy(user, session.id),
      secondFactorMissing,
      ...(gate ? { secondFactorGate: gate } : {}),
    };
  }

  /**
   * HTTP Basic, as WebDAV clients send it: the username and one of its app passwords. The account
   * password is never accepted here: it would travel with every request of a sync client.
   */
  async authenticateBasic(username: string, password: string): Promise<Authenticated | null> {
    const found = await this.options.appPasswords.authenticate(password);
    if (!found || found.user.username !== username.toLowerCase() || !enabled(found.user)) return null;
    return this.appPasswordGate(this.authenticatedBy(found.user, null, found));
  }

  /**
   * DFS_REQUIRE_2FA holds for app passwords too: one made before it was turned on, by a user who
   * still has no second factor, would otherwise be a way around it (WebDAV, scripts).
   */
  private async appPasswordGate(found: Authenticated): Promise<Authenticated> {
    if (!this.options.requireTwoFactor) return found;
    const factors = this.options.passkeys
      ? await this.options.passkeys.factors(found.user.id)
      : (await this.options.twoFactor.isEnabled(found.user.id))
        ? ['totp']
        : [];
    // Made by a session the OpenID provider signed in: the provider holds the second factor.
    if (factors.length === 0 && (await this.repos.identities.isLinked(found.user.id, 'oidc'))) return found;
    return factors.length > 0 ? found : { ...found, secondFactorGate: 'second_factor_setup_required' };
  }

  /**
   * An app password carries the user role only, unless its owner is an admin who created it with
   * the `admin` scope: it lives in config files and sync clients, and a leaked one must not
   * administer the server.
   */
  private authenticatedBy(
    user: UserRow,
    sessionId: string | null,
    app?: { appPasswordId: string; appPasswordName: string; appPasswordScope: 'files' | 'admin' },
  ): Authenticated {
    return {
      user: app && app.appPasswordScope !== 'admin' ? { ...toUser(user), isAdmin: false } : toUser(user),
      sessionId,
      ...(app ? { appPasswordId: app.appPasswordId, appPasswordName: app.appPasswordName } : {}),
      lastWriteAt: Math.max(Number(user.created_at), Number(user.wrote_at ?? 0)),
    };
  }

  /**
   * A signed-in user's own change: the current password proves it is them (a session left open
   * on a shared computer is not enough). Every other session of theirs ends, since the reason to
   * change a password is often that someone else knows it; the asking session stays. App
   * passwords stay too: each is its own secret, revoked on its own.
   */
  async changePassword(
    userId: string,
    sessionId: string | null,
    currentPassword: string,
    newPassword: string,
  ): Promise<void> {
    const row = await this.repos.users.findById(userId);
    if (!row) throw new HttpError('unauthorized', 'sign in first');
    await this.refuseDirectoryPassword(row.id);
    if (!(await this.options.passwords.verify(row.password_hash, currentPassword))) {
      throw new HttpError('wrong_password', 'the current password is not right');
    }
    checkStrength(newPassword, row.username);
    await this.setPassword(row.id, await this.options.passwords.hash(newPassword), sessionId);
  }

  /**
   * An administrator sets a user's password (they forgot it, or it leaked): every session of that
   * user ends, except the asking one when admins reset their own. App passwords stay.
   */
  async resetPassword(userId: string, newPassword: string, askingSessionId: string | null): Promise<void> {
    const row = await this.repos.users.findById(userId);
    if (!row) throw new HttpError('not_found', 'user not found');
    await this.refuseDirectoryPassword(row.id);
    checkStrength(newPassword, row.username);
    await this.setPassword(row.id, await this.options.passwords.hash(newPassword), askingSessionId);
  }

  /**
   * A directory account's password is the directory's: a dfs one would never be asked for (and
   * would sign in again if the directory were turned off). Without a directory configured, an
   * admin may give such an account a dfs password.
   */
  private async refuseDirectoryPassword(userId: string): Promise<void> {
    if (this.options.ldap && (await this.options.ldap.isDirectoryAccount(userId))) {
      throw new HttpError(
        'bad_request',
        'this account signs in with its directory (LDAP) password, which is changed in the directory',
      );
    }
  }

  private async setPassword(userId: string, passwordHash: string, keepSessionId: string | null) {
    await this.repos.transaction(async (tx) => {
      if (!(await tx.users.setPasswordHash(userId, passwordHash))) {
        throw new HttpError('not_found', 'user not found');
      }
      await tx.sessions.deleteByUser(userId, keepSessionId);
    });
  }

  /**
   * The account password again, before something a session alone must not do (setting up a
   * second factor): a session left open on a shared computer does not know it.
   */
  async confirmPassword(userId: string, password: string): Promise<void> {
    const row = await this.repos.users.findById(userId);
    if (!row) throw new HttpError('unauthorized', 'sign in first');
    // A directory account's password is the directory's to check.
    const ldap = this.options.ldap;
    const right =
      ldap && (await ldap.isDirectoryAccount(row.id))
        ? await ldap.verify(row, password)
        : await this.options.passwords.verify(row.password_hash, password);
    if (!right) {
      throw new HttpError('wrong_password', 'the password is not right');
    }
  }

  /**
   * A session for a user an identity provider (OIDC) or a passkey signed in, made as a password
   * sign-in makes one; `secondFactor`: the provider's sign-in counts as two factors (it owns the
   * user's MFA). `method` is what the audit log says signed them in.
   */
  async openSession(
    userId: string,
    secondFactor: boolean,
    client: SessionClient,
    method: 'oidc' | 'passkey' = 'oidc',
    /** The account's name, which the caller has in hand; read when not given. */
    username?: string,
  ): Promise<string> {
    const token = newToken();
    const now = this.options.now();
    await this.repos.sessions.insert({
      id: newId(),
      token_hash: sha256Hex(token),
      user_id: userId,
      created_at: now,
      last_seen_at: now,
      expires_at: now + this.options.sessionTtlMs,
      second_factor_at: secondFactor ? now : null,
      ...clientColumns(client),
    });
    const name = username ?? (await this.repos.users.findById(userId))?.username ?? null;
    await this.options.audit?.record({
      action: 'auth.signin',
      actor: { id: userId, username: name },
      client,
      details: { method, secondFactor },
    });
    return token;
  }

  async signout(sessionId: string | null): Promise<void> {
    if (sessionId) await this.repos.sessions.delete(sessionId);
  }
}
