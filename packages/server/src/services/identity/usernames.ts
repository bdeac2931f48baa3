/** The shape sign-up accepts (Credentials.username): 3–64 of letters, digits, `.`, `_`, `-`. */
const MIN = 3;
const MAX = 64;

/** A name as close to `raw` as the username rules allow, or null when nothing usable is left. */
export function toUsername(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const cleaned = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, MAX);
  return cleaned.length >= MIN ? cleaned : null;
}

/**
 * Usernames to try for a new account, best first: the provider's preferred username, else the
 * local part of the email, else the subject; then the same with a number, when taken.
 */
export function* usernameCandidates(claims: Record<string, unknown>): Generator<string> {
  const email = typeof claims.email === 'string' ? claims.email.split('@')[0] : undefined;
  const base = toUsername(claims.preferred_username) ?? toUsername(email) ?? toUsername(claims.sub) ?? 'user';
  const padded = base.length >= MIN ? base : `${base}-user`;
  yield padded;
  for (let n = 2; n <= 50; n++) {
    const suffix = `-${n}`;
    yield `${padded.slice(0, MAX - suffix.length)}${suffix}`;
  }
}
