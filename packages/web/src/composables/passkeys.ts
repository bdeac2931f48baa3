import { ApiError } from '@dfs/client';
import type { PasskeyCeremony, PasskeyList, SigninResponse } from '@dfs/shared';
import {
  browserSupportsWebAuthn,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
  WebAuthnError,
} from '@simplewebauthn/browser';
import { useQuery } from '@tanstack/vue-query';
import { api } from '../api/index.ts';
import { queryClient } from '../api/query.ts';
import { i18n } from '../i18n/index.ts';
import { errorText } from './errors.ts';

/**
 * The browser's side of passkeys, through SimpleWebAuthn: it turns the server's options into a
 * `navigator.credentials` call and the credential back into JSON the server verifies.
 */
export const passkeysSupported = (): boolean => browserSupportsWebAuthn() && window.isSecureContext;

/** The user's passkeys (one query, shared by whoever shows them). */
export function usePasskeyList() {
  return useQuery(
    {
      queryKey: ['passkeys'] as const,
      queryFn: async ({ signal }) =>
        (await (await api.request('/api/auth/passkeys', { signal })).json()) as PasskeyList,
    },
    queryClient,
  );
}

async function postJson<T>(path: string, json: unknown, method = 'POST'): Promise<T> {
  const res = await api.request(path, { method, json });
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** Creates a passkey: the password first (the server asks for it), then the authenticator. */
export async function registerPasskey(password: string, name: string): Promise<void> {
  const { challengeId, options } = await postJson<PasskeyCeremony>(
    '/api/auth/passkeys/registration-options',
    password ? { password } : {},
  );
  const response = await startRegistration({
    optionsJSON: options as unknown as PublicKeyCredentialCreationOptionsJSON,
  });
  await postJson('/api/auth/passkeys', {
    challengeId,
    response,
    ...(name.trim() ? { name: name.trim() } : {}),
  });
}

/** Signs a ceremony's challenge with a passkey of this browser or a security key. */
export async function signCeremony(ceremony: PasskeyCeremony) {
  return {
    challengeId: ceremony.challengeId,
    response: await startAuthentication({
      optionsJSON: ceremony.options as unknown as PublicKeyCredentialRequestOptionsJSON,
    }),
  };
}

/** A password-less sign-in: the browser offers the passkeys it has for this site. */
export async function passkeySignin(): Promise<SigninResponse> {
  const ceremony = await postJson<PasskeyCeremony>('/api/auth/passkeys/signin-options', {});
  return postJson<SigninResponse>('/api/auth/passkeys/signin', await signCeremony(ceremony));
}

/** The password, then the passkey the server asked for (`passkey` of `totp_required` / `passkey_required`). */
export async function passkeySecondFactor(
  username: string,
  password: string,
  ceremony: PasskeyCeremony,
): Promise<SigninResponse> {
  return postJson<SigninResponse>('/api/auth/signin', {
    username,
    password,
    passkey: await signCeremony(ceremony),
  });
}

/** A sentence for a failed passkey step: cancelled in the browser, refused by the server, or else. */
export function passkeyErrorText(err: unknown): string {
  const t = i18n.global.t;
  // The user closed the dialog, or it timed out: the browser does not say which.
  if (
    (err instanceof WebAuthnError && err.code === 'ERROR_CEREMONY_ABORTED') ||
    (err instanceof Error && err.name === 'NotAllowedError')
  ) {
    return t('passkeys.cancelled');
  }
  if (err instanceof ApiError && i18n.global.te(`passkeys.errors.${err.code}`)) {
    return t(`passkeys.errors.${err.code}`, { message: err.message });
  }
  return errorText(err);
}
