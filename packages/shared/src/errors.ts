/**
 * The one table of API error codes. The server maps every thrown `HttpError` through it and
 * clients switch on `code`, so a code never changes status between releases.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_name: 400,
  weak_password: 400,
  checksum_mismatch: 400,
  checksum_required: 400,
  bad_chunk_index: 400,
  bad_chunk_size: 400,
  move_into_itself: 400,
  folder_too_deep: 400,
  not_a_folder: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  share_password_required: 401,
  forbidden: 403,
  signup_closed: 403,
  invite_invalid: 403,
  proof_failed: 403,
  share_password_invalid: 403,
  wrong_password: 403,
  not_found: 404,
  method_not_allowed: 405,
  username_taken: 409,
  name_conflict: 409,
  incomplete: 409,
  content_collision: 409,
  upload_busy: 409,
  chunk_conflict: 409,
  offset_mismatch: 409,
  too_many_files: 409,
  gone: 410,
  precondition_failed: 412,
  share_expired: 410,
  upload_expired: 410,
  payload_too_large: 413,
  file_too_large: 413,
  quota_exceeded: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  hash_mismatch: 422,
  locked: 423,
  checksum_failed: 460,
  sha1_required: 422,
  rate_limited: 429,
  too_many_uploads: 429,
  internal: 500,
  bad_gateway: 502,
  storage_unavailable: 503,
  not_ready: 503,
  // Single sign-on: the OpenID provider cannot be reached, or its answer is not a sign-in dfs accepts
  // (state or nonce not the ones dfs sent, a refused code, the user cancelled).
  oidc_unavailable: 503,
  oidc_failed: 400,
  identity_linked: 409,
  insufficient_storage: 507,
  // Two-factor sign-in: the password was right, the second factor is missing or refused.
  totp_required: 401,
  totp_invalid: 403,
  totp_enabled: 409,
  second_factor_required: 403,
  // An administrator turned the account off; the password was right.
  account_disabled: 403,
  // The LDAP directory did not answer: nobody can tell whether the password is right.
  directory_unavailable: 503,
  // Passkeys: the password was right and the account's second factor is a passkey; a signature
  // that does not verify (or a challenge unknown, used or expired); DFS_REQUIRE_2FA's setup-only session.
  passkey_required: 401,
  passkey_invalid: 403,
  second_factor_setup_required: 403,
  // Shares with users and groups: the user or group already has a role there / the name is taken.
  already_member: 409,
  group_exists: 409,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ApiErrorBody {
  error: { code: ErrorCode; message: string; [extra: string]: unknown };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}
