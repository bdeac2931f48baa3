import { type Static, Type } from '@sinclair/typebox';
import { Id, IsoDate, WELL_FORMED_TEXT } from './common.ts';

/**
 * Passkeys (WebAuthn credentials): a second factor after the password, and a password-less
 * sign-in on their own (a discoverable credential with user verification is something you have
 * and something you know or are, so such a sign-in counts as two factors).
 */

/** What a user calls a passkey ("Laptop", "YubiKey"); the server names it when none is given. */
export const PasskeyName = Type.String({ minLength: 1, maxLength: 100, pattern: WELL_FORMED_TEXT });

export const Passkey = Type.Object(
  {
    id: Id,
    name: Type.String(),
    createdAt: IsoDate,
    /** Last sign-in with it; null: never used since it was registered. */
    lastUsedAt: Type.Union([IsoDate, Type.Null()]),
    /** Synced by its provider (a password manager or a platform's keychain), not bound to one device. */
    backedUp: Type.Boolean(),
  },
  { $id: 'Passkey' },
);
export type Passkey = Static<typeof Passkey>;

export const PasskeyList = Type.Object({ items: Type.Array(Passkey) });
export type PasskeyList = Static<typeof PasskeyList>;

export const PasskeyResponse = Type.Object({ passkey: Passkey });
export type PasskeyResponse = Static<typeof PasskeyResponse>;

/**
 * A WebAuthn ceremony begun by the server: `options` goes to `navigator.credentials` (through
 * `@simplewebauthn/browser`'s `startRegistration({optionsJSON})` / `startAuthentication`), and the
 * answer comes back with `challengeId`. A challenge answers once, within five minutes.
 */
export const PasskeyCeremony = Type.Object({
  challengeId: Id,
  options: Type.Object({ challenge: Type.String() }, { additionalProperties: true }),
});
export type PasskeyCeremony = Static<typeof PasskeyCeremony>;

const base64url = (maxLength: number) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$' });

/** The parts of a browser's credential (as `@simplewebauthn/browser` serialises it) both ceremonies share. */
const credentialFields = {
  id: base64url(1400),
  rawId: base64url(1400),
  type: Type.Literal('public-key'),
  clientExtensionResults: Type.Object({}, { additionalProperties: true }),
  authenticatorAttachment: Type.Optional(
    Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]),
  ),
};

/** `navigator.credentials.create()`'s answer, as JSON (RegistrationResponseJSON). */
export const PasskeyRegistrationResponse = Type.Object({
  ...credentialFields,
  response: Type.Object(
    {
      clientDataJSON: base64url(8192),
      attestationObject: base64url(65536),
      transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })),
    },
    { additionalProperties: true },
  ),
});

/** `navigator.credentials.get()`'s answer, as JSON (AuthenticationResponseJSON). */
export const PasskeyAuthenticationResponse = Type.Object({
  ...credentialFields,
  response: Type.Object(
    {
      clientDataJSON: base64url(8192),
      authenticatorData: base64url(8192),
      signature: base64url(1024),
      userHandle: Type.Optional(base64url(256)),
    },
    { additionalProperties: true },
  ),
});

/**
 * `POST /api/auth/passkeys/registration-options`: the account password again, as for setting up
 * TOTP, so that a session left open cannot put its own passkey on the account. An account made
 * by single sign-on has none: its session, fresh from the provider, is enough.
 */
export const PasskeyRegistrationOptionsBody = Type.Object(
  { password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) },
  { additionalProperties: false },
);
export type PasskeyRegistrationOptionsBody = Static<typeof PasskeyRegistrationOptionsBody>;

/** `POST /api/auth/passkeys`: the browser's answer to the registration options. */
export const RegisterPasskeyBody = Type.Object(
  { challengeId: Id, response: PasskeyRegistrationResponse, name: Type.Optional(PasskeyName) },
  { additionalProperties: false },
);
export type RegisterPasskeyBody = Static<typeof RegisterPasskeyBody>;

/** A signed challenge: `POST /api/auth/passkeys/signin`, and `passkey` in `POST /api/auth/signin`. */
export const PasskeyAssertion = Type.Object(
  { challengeId: Id, response: PasskeyAuthenticationResponse },
  { additionalProperties: false },
);
export type PasskeyAssertion = Static<typeof PasskeyAssertion>;

export const RenamePasskeyBody = Type.Object({ name: PasskeyName }, { additionalProperties: false });
export type RenamePasskeyBody = Static<typeof RenamePasskeyBody>;

/** `DELETE /api/auth/passkeys/:id`: the account password (when it has one), as for adding one. */
export const DeletePasskeyBody = Type.Object(
  { password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) },
  { additionalProperties: false },
);
export type DeletePasskeyBody = Static<typeof DeletePasskeyBody>;

/** The second factors an account can show after its password, as `factors` in `totp_required` / `passkey_required`. */
export type SecondFactor = 'totp' | 'passkey';
