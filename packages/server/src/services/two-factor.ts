import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomInt } from 'node:crypto';
import { RECOVERY_CODE_COUNT, type TotpSetup, type TotpStatus } from '@dfs/shared';
import { Secret, TOTP } from 'otpauth';
import { HttpError, notFound } from '../errors.ts';
import type { Repositories } from '../repositories/index.ts';
import { sha256Hex } from './ids.ts';

export interface TwoFactorOptions {
  /** The server secret (DFS_SECRET or the generated one): the TOTP secrets are encrypted with a key from it. */
  secret: string;
  now: () => number;
}

/** RFC 6238's defaults, the only ones every authenticator app reads from a QR code. */
const PERIOD = 30;
const DIGITS = 6;
/**
 * Codes one step before or after the server's are taken too: a phone's clock a little off, or
 * a code typed as it rolled over. Anything older is expired.
 */
const WINDOW = 1;
/** No 0/O or 1/l: recovery codes get read off paper. 32 symbols, 5 bits each. */
const RECOVERY_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

const invalid = () =>
  new HttpError('totp_invalid', 'the code is wrong, expired or already used; try the next one');

/** What a code looks like once the spaces and dashes people copy with it are gone. */
function normalise(code: string): string {
  return code.replace(/[\s-]/g, '').toLowerCase();
}

/** Ten characters (50 bits) as `xxxxx-xxxxx`; a guess is rate-limited, so this is plenty. */
function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < 10; i++) code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/**
 * TOTP (RFC 6238, through `otpauth`) as a second factor after the password, with single-use
 * recovery codes. The shared secret is encrypted at rest (AES-256-GCM, with a key derived from
 * the server secret and bound to the user), so a copy of the database alone does not give
 * anyone codes; it is shown once, at setup. Recovery codes are random, so a SHA-256 of each is
 * enough to keep (as for app passwords).
 */
export class TwoFactorService {
  private readonly key: Buffer;

  constructor(
    private readonly repos: Repositories,
    private readonly options: TwoFactorOptions,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', options.secret, '', 'dfs totp secret v1', 32));
  }

  async status(userId: string, sessionNeedsSignin: boolean): Promise<TotpStatus> {
    const row = await this.repos.totp.find(userId);
    const enabledAt = row?.enabled_at == null ? null : Number(row.enabled_at);
    return {
      enabled: enabledAt !== null,
      enabledAt: enabledAt === null ? null : new Date(enabledAt).toISOString(),
      recoveryCodesLeft: enabledAt === null ? 0 : await this.repos.totp.recoveryCodesLeft(userId),
      sessionNeedsSignin,
    };
  }

  async isEnabled(userId: string): Promise<boolean> {
    return (await this.repos.totp.find(userId))?.enabled_at != null;
  }

  /**
   * A new secret and recovery codes, not active until `confirm`; a setup begun before and never
   * confirmed is replaced. Refused while two-factor sign-in is on: replacing a working secret
   * takes turning it off first, with a code.
   */
  async setup(userId: string, username: string): Promise<TotpSetup> {
    const secret = new Secret({ size: 20 });
    const recoveryCodes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await this.repos.transaction(async (tx) => {
      const existing = await tx.totp.find(userId);
      if (existing?.enabled_at != null) {
        throw new HttpError(
          'totp_enabled',
          'two-factor sign-in is on already; turn it off first to set it up again',
        );
      }
      if (existing) await tx.totp.delete(userId);
      await tx.totp.insert(
        {
          user_id: userId,
          secret: this.encrypt(userId, secret.base32),
          enabled_at: null,
          last_step: null,
          created_at: this.options.now(),
        },
        recoveryCodes.map((code) => sha256Hex(normalise(code))),
      );
    });
    return {
      secret: secret.base32,
      otpauthUrl: this.totp(secret.base32, username).toString(),
      recoveryCodes,
    };
  }

  /**
   * Turns a begun setup on with a code from it (a recovery code would prove nothing about the
   * app). The asking session has just shown the second factor, so it counts as having passed it.
   */
  async confirm(userId: string, code: string, sessionId: string | null): Promise<void> {
    const row = await this.repos.totp.find(userId);
    if (!row) throw notFound('no two-factor setup to confirm: start one first');
    if (row.enabled_at != null) throw new HttpError('totp_enabled', 'two-factor sign-in is on already');
    const step = this.matchingStep(userId, row.secret, code);
    if (step === null) throw invalid();
    const now = this.options.now();
    await this.repos.transaction(async (tx) => {
      if (!(await tx.totp.enable(userId, now, step))) {
        throw new HttpError('totp_enabled', 'two-factor sign-in is on already');
      }
      if (sessionId) await tx.sessions.markSecondFactor(sessionId, now);
    });
  }

  /** Turns two-factor sign-in off; takes a current code or an unused recovery code. */
  async disable(userId: string, code: string): Promise<void> {
    const row = await this.repos.totp.find(userId);
    if (row?.enabled_at == null) throw notFound('two-factor sign-in is not on');
    if (!(await this.verify(userId, code))) throw invalid();
    await this.repos.totp.delete(userId);
  }

  /**
   * Whether `code` is the second factor of a user whose two-factor sign-in is on: a TOTP whose
   * time step was not used yet, or an unused recovery code (spent by this call).
   */
  async verify(userId: string, code: string): Promise<boolean> {
    const row = await this.repos.totp.find(userId);
    if (row?.enabled_at == null) return false;
    const typed = normalise(code);
    if (typed.length === DIGITS && /^\d+$/.test(typed)) {
      const step = this.matchingStep(userId, row.secret, typed);
      return step !== null && (await this.repos.totp.useStep(userId, step));
    }
    return this.repos.totp.useRecoveryCode(userId, sha256Hex(typed), this.options.now());
  }

  /** The time step `code` belongs to, within the window around now; null when it matches none. */
  private matchingStep(userId: string, encrypted: string, code: string): number | null {
    const typed = normalise(code);
    if (typed.length !== DIGITS || !/^\d+$/.test(typed)) return null;
    let base32: string;
    try {
      base32 = this.decrypt(userId, encrypted);
    } catch {
      // Encrypted under another server secret (DFS_SECRET changed): no code can match, and the
      // recovery codes, which do not depend on it, still sign in and turn it off.
      return null;
    }
    const totp = this.totp(base32);
    // The app's clock, not Date.now: a server with a simulated clock (tests) is consistent.
    const timestamp = this.options.now();
    const delta = totp.validate({ token: typed, timestamp, window: WINDOW });
    return delta === null ? null : totp.counter({ timestamp }) + delta;
  }

  private totp(base32: string, username = ''): TOTP {
    return new TOTP({
      issuer: 'dfs',
      label: username,
      algorithm: 'SHA1',
      digits: DIGITS,
      period: PERIOD,
      secret: Secret.fromBase32(base32),
    });
  }

  private encrypt(userId: string, plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(userId));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  private decrypt(userId: string, stored: string): string {
    const [version, iv, tag, body] = stored.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('unreadable TOTP secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(userId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}
