import { type Static, Type } from '@sinclair/typebox';
import { Credentials } from './auth.ts';
import { IsoDate } from './common.ts';
import { PasskeyAssertion } from './passkeys.ts';

/** How many single-use recovery codes a TOTP setup hands out. */
export const RECOVERY_CODE_COUNT = 10;

/**
 * A second-factor code as typed: six digits from the authenticator app, or a recovery code.
 * Spaces and dashes are ignored, so a code copied with its grouping still works.
 */
export const TwoFactorCode = Type.String({ minLength: 1, maxLength: 64 });

/**
 * `POST /api/auth/signin`: with two-factor sign-in on, the password alone answers
 * `401 totp_required`; `code` is then a current TOTP or an unused recovery code.
 */
export const SigninBody = Type.Intersect([
  Credentials,
  // `passkey`: the options came with `totp_required` / `passkey_required` (`passkey` in its body).
  Type.Object({ code: Type.Optional(TwoFactorCode), passkey: Type.Optional(PasskeyAssertion) }),
]);
export type SigninBody = Static<typeof SigninBody>;

/** `POST /api/auth/totp/confirm` and `DELETE /api/auth/totp`. */
export const TotpCodeBody = Type.Object({ code: TwoFactorCode }, { additionalProperties: false });
export type TotpCodeBody = Static<typeof TotpCodeBody>;

/**
 * `POST /api/auth/totp`'s body: the account password again, so that a session left open (or
 * stolen) cannot put its own authenticator on the account.
 */
export const TotpSetupBody = Type.Object(
  { password: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
export type TotpSetupBody = Static<typeof TotpSetupBody>;

/**
 * `POST /api/auth/totp`: a new secret, not active until confirmed with a code from it. The
 * secret and the recovery codes are in this answer only: the server never shows them again.
 */
export const TotpSetup = Type.Object({
  /** Base32 (RFC 4648), what an authenticator app takes when typed in. */
  secret: Type.String(),
  /** `otpauth://totp/…` (the Key Uri Format authenticator apps read from a QR code). */
  otpauthUrl: Type.String(),
  recoveryCodes: Type.Array(Type.String(), {
    minItems: RECOVERY_CODE_COUNT,
    maxItems: RECOVERY_CODE_COUNT,
  }),
});
export type TotpSetup = Static<typeof TotpSetup>;

/** `GET /api/auth/totp`: whether two-factor sign-in is on; never the secret. */
export const TotpStatus = Type.Object({
  enabled: Type.Boolean(),
  enabledAt: Type.Union([IsoDate, Type.Null()]),
  /** Recovery codes not used yet (0 while off). */
  recoveryCodesLeft: Type.Integer({ minimum: 0 }),
  /**
   * True when two-factor sign-in is on and this session has not passed it since (it signed in
   * before it was turned on): it must sign in again to create app passwords.
   */
  sessionNeedsSignin: Type.Boolean(),
});
export type TotpStatus = Static<typeof TotpStatus>;
