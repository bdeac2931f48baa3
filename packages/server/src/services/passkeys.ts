import { isIP } from 'node:net';
import type { Passkey, PasskeyCeremony, SecondFactor } from '@dfs/shared';
import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { isoBase64URL } from '@simplewebauthn/server/helpers';
import { isUniqueViolation } from '../db/knex.ts';
import { HttpError, notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import type { ChallengePurpose, PasskeyRow } from '../repositories/passkeys.ts';
import type { UserRow } from '../repositories/users.ts';
import { newId, sha256Hex } from './ids.ts';

export interface PasskeyOptions {
  /** DFS_WEBAUTHN_RP_NAME: what the browser's passkey dialog calls the server. */
  rpName: string;
  /** DFS_WEBAUTHN_RP_ID; null: the host name the request came to. */
  rpId: string | null;
  /** DFS_WEBAUTHN_ORIGIN; null: the request's own origin. */
  origin: string | null;
  now: () => number;
}

/** Where a ceremony runs: the relying party id the credential is bound to, and the page's origin. */
export interface RelyingParty {
  rpId: string;
  origin: string;
}

/** Long enough to find a security key and type its PIN; the browser gives up at the same time. */
const CHALLENGE_TTL_MS = 5 * 60_000;
/** A user with more is almost certainly a script; the list and each sign-in's options stay small. */
const MAX_PASSKEYS = 20;

const invalid = (why: string) => new HttpError('passkey_invalid', `the passkey was not accepted: ${why}`);

/**
 * What verification says when it refuses: SimpleWebAuthn throws plain Errors with a message
 * fit for a developer ("Unexpected authentication response origin …"); it is passed on, since it
 * says what to fix (an RP ID or origin setting behind a proxy, most often).
 */
const refused = (error: unknown) => invalid(error instanceof Error ? error.message : String(error));

function toPasskey(row: PasskeyRow): Passkey {
  return {
    id: row.id,
    name: row.name,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at).toISOString(),
    backedUp: row.backed_up,
  };
}

const transportsOf = (row: PasskeyRow): AuthenticatorTransportFuture[] | undefined =>
  row.transports ? (row.transports.split(',') as AuthenticatorTransportFuture[]) : undefined;

/**
 * The user handle a discoverable credential carries: the user's id. It tells a password-less
 * sign-in who is signing in, and is checked against the credential's owner.
 */
const userHandleOf = (userId: string) => isoBase64URL.fromUTF8String(userId);

/**
 * Passkeys (WebAuthn, through SimpleWebAuthn): registration from a signed-in session, sign-in
 * without a password (discoverable credentials, user verification required), and a second
 * factor after the password. Challenges live in the database and are taken out by the first
 * answer (single use, any instance); counters only move forward.
 */
export class PasskeyService {
  constructor(
    private readonly repos: Repositories,
    private readonly options: PasskeyOptions,
  ) {}

  /**
   * The relying party for a request: the settings when given, else the host and origin the
   * browser used, which is what a passkey made on that page is bound to anyway. WebAuthn refuses
   * IP addresses as RP IDs, so a server reached by one is told plainly.
   */
  relyingParty(request: { hostname: string; origin: string }): RelyingParty {
    const rpId = this.options.rpId ?? request.hostname.replace(/^\[|\]$/g, '');
    if (isIP(rpId) !== 0) {
      throw new HttpError(
        'bad_request',
        `passkeys need the server to be reached by a host name, not an IP address (${rpId}); browse it by name (e.g. http://localhost:…) or set DFS_WEBAUTHN_RP_ID and DFS_WEBAUTHN_ORIGIN`,
      );
    }
    return { rpId, origin: this.options.origin ?? request.origin };
  }

  async list(userId: string): Promise<Passkey[]> {
    return (await this.repos.passkeys.listByUser(userId)).map(toPasskey);
  }

  /** Which second factors a user can show after the password, in a stable order. */
  async factors(userId: string): Promise<SecondFactor[]> {
    const [totp, passkeys] = await Promise.all([
      this.repos.totp.find(userId),
      this.repos.passkeys.countByUser(userId),
    ]);
    return [
      ...(totp?.enabled_at != null ? ['totp' as const] : []),
      ...(passkeys > 0 ? ['passkey' as const] : []),
    ];
  }

  /**
   * Options to create a passkey. The caller has checked the account password (as for TOTP): a
   * session left open somewhere must not be able to add a way in of its own.
   */
  async registrationOptions(user: UserRow, rp: RelyingParty): Promise<PasskeyCeremony> {
    const existing = await this.repos.passkeys.listByUser(user.id);
    if (existing.length >= MAX_PASSKEYS) {
      throw new HttpError('bad_request', `an account has at most ${MAX_PASSKEYS} passkeys; remove one first`);
    }
    const options = await generateRegistrationOptions({
      rpName: this.options.rpName,
      rpID: rp.rpId,
      userName: user.username,
      userID: isoBase64URL.toBuffer(userHandleOf(user.id)),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      // A passkey already on this authenticator is not made twice.
      excludeCredentials: existing.map((row) => ({
        id: row.credential_id,
        ...(row.transports ? { transports: transportsOf(row) } : {}),
      })),
      // Discoverable, so that it can sign in without a username; verification is asked for but a
      // key without a PIN still works as a second factor (it cannot sign in alone, see signin).
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    });
    return { challengeId: await this.issue(user.id, 'register', options.challenge), options };
  }

  /**
   * Verifies the browser's answer and keeps the credential. The asking session has just used the
   * authenticator, so it counts as having passed the second factor (as turning TOTP on does).
   */
  async register(
    user: UserRow,
    sessionId: string | null,
    challengeId: string,
    response: RegistrationResponseJSON,
    name: string | undefined,
    rp: RelyingParty,
  ): Promise<Passkey> {
    const challenge = await this.take(challengeId, 'register', user.id);
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.rpId,
        requireUserVerification: false,
      });
    } catch (error) {
      throw refused(error);
    }
    if (!verified.verified) throw invalid('the registration did not verify');
    const { credential, credentialBackedUp } = verified.registrationInfo;
    const now = this.options.now();
    const row: PasskeyRow = {
      id: newId(),
      user_id: user.id,
      credential_hash: sha256Hex(credential.id),
      credential_id: credential.id,
      public_key: isoBase64URL.fromBuffer(credential.publicKey),
      counter: credential.counter,
      transports: credential.transports?.length ? credential.transports.join(',').slice(0, 255) : null,
      backed_up: credentialBackedUp,
      name: name?.trim() || (await this.defaultName(user.id)),
      created_at: now,
      last_used_at: null,
    };
    try {
      await this.repos.transaction(async (tx) => {
        await tx.passkeys.insert(row);
        if (sessionId) await tx.sessions.markSecondFactor(sessionId, now);
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new HttpError('bad_request', 'this passkey is registered already (to this or another account)');
      }
      throw error;
    }
    return toPasskey(row);
  }

  async rename(userId: string, id: string, name: string): Promise<Passkey> {
    if (!(await this.repos.passkeys.rename(userId, id, name.trim()))) throw notFound('passkey not found');
    const row = await this.repos.passkeys.find(userId, id);
    if (!row) throw notFound('passkey not found');
    return toPasskey(row);
  }

  /** Removing a way to sign in takes the account password (checked by the caller), like adding one. */
  async remove(userId: string, id: string): Promise<void> {
    if (!(await this.repos.passkeys.delete(userId, id))) throw notFound('passkey not found');
  }

  /**
   * Options for a password-less sign-in: no user is named (the browser offers the passkeys it
   * has for this site), and the authenticator must verify its user (PIN or biometrics).
   */
  async signinOptions(rp: RelyingParty): Promise<PasskeyCeremony> {
    const options = await generateAuthenticationOptions({
      rpID: rp.rpId,
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'required',
    });
    return { challengeId: await this.issue(null, 'signin', options.challenge), options };
  }

  /** The user a password-less sign-in proves, or `passkey_invalid`. */
  async signin(
    challengeId: string,
    response: AuthenticationResponseJSON,
    rp: RelyingParty,
  ): Promise<UserRow> {
    const challenge = await this.take(challengeId, 'signin', null);
    const row = await this.credential(response);
    // A discoverable credential says whose it is; it must be the owner on record.
    const handle = response.response.userHandle;
    if (handle !== undefined && handle !== userHandleOf(row.user_id)) {
      throw invalid('the passkey belongs to another account');
    }
    await this.verifyAssertion(row, challenge, response, rp, true);
    const user = await this.repos.users.findById(row.user_id);
    if (!user) throw invalid('unknown passkey');
    return user;
  }

  /**
   * Options for the second factor after a right password: the user's own passkeys only, and
   * user verification preferred (the password is the other factor already).
   */
  async secondFactorOptions(userId: string, rp: RelyingParty): Promise<PasskeyCeremony> {
    const rows = await this.repos.passkeys.listByUser(userId);
    const options = await generateAuthenticationOptions({
      rpID: rp.rpId,
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'preferred',
      allowCredentials: rows.map((row) => ({
        id: row.credential_id,
        ...(row.transports ? { transports: transportsOf(row) } : {}),
      })),
    });
    return { challengeId: await this.issue(userId, 'second', options.challenge), options };
  }

  /** Checks a second factor answer for `userId`; throws `passkey_invalid` when it is not one of theirs. */
  async verifySecondFactor(
    userId: string,
    challengeId: string,
    response: AuthenticationResponseJSON,
    rp: RelyingParty,
  ): Promise<void> {
    const challenge = await this.take(challengeId, 'second', userId);
    const row = await this.credential(response);
    if (row.user_id !== userId) throw invalid('unknown passkey');
    await this.verifyAssertion(row, challenge, response, rp, false);
  }

  private async credential(response: AuthenticationResponseJSON): Promise<PasskeyRow> {
    const row = await this.repos.passkeys.findByCredentialHash(sha256Hex(response.id));
    if (!row) throw invalid('unknown passkey (it may have been removed from this account)');
    return row;
  }

  /**
   * The signature, origin, RP ID and, when the authenticator keeps one, the counter: a counter
   * that does not move forward means the credential was cloned, and the sign-in is refused.
   */
  private async verifyAssertion(
    row: PasskeyRow,
    challenge: string,
    response: AuthenticationResponseJSON,
    rp: RelyingParty,
    requireUserVerification: boolean,
  ): Promise<void> {
    let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.rpId,
        credential: {
          id: row.credential_id,
          publicKey: isoBase64URL.toBuffer(row.public_key),
          counter: row.counter,
          ...(row.transports ? { transports: transportsOf(row) } : {}),
        },
        requireUserVerification,
      });
    } catch (error) {
      throw refused(error);
    }
    if (!result.verified) throw invalid('the signature did not verify');
    const { newCounter } = result.authenticationInfo;
    if (!(await this.repos.passkeys.recordUse(row.id, row.counter, newCounter, this.options.now()))) {
      // Another sign-in with this credential moved the counter in between: one of them is a copy.
      throw invalid('the signature counter did not move forward (a cloned authenticator?)');
    }
  }

  private async issue(userId: string | null, purpose: ChallengePurpose, challenge: string): Promise<string> {
    const now = this.options.now();
    const id = newId();
    await this.repos.passkeys.insertChallenge(
      { id, user_id: userId, challenge, purpose, expires_at: now + CHALLENGE_TTL_MS },
      now,
    );
    return id;
  }

  /** The challenge behind `challengeId`, spent by this call; refused when not issued to `userId` for `purpose`. */
  private async take(challengeId: string, purpose: ChallengePurpose, userId: string | null): Promise<string> {
    const row = await this.repos.passkeys.consumeChallenge(challengeId, purpose, this.options.now());
    if (!row || (row.user_id ?? null) !== userId) {
      throw invalid('the challenge is unknown, expired or already used; start again');
    }
    return row.challenge;
  }

  private async defaultName(userId: string): Promise<string> {
    return `Passkey ${(await this.repos.passkeys.countByUser(userId)) + 1}`;
  }
}
