import type { FastifyRequest } from 'fastify';
import type { AppInstance } from '../app.ts';
import { HttpError } from '../errors.ts';

/** What a public link's routes check before they let a visitor in. */
export interface ShareGuards {
  /** A gate to call before checking a guessed password: past the budget, `429 rate_limited`. */
  guessGate: (request: FastifyRequest) => () => Promise<void>;
  /** The password a visitor sent (`X-Share-Password`), if any. */
  passwordOf: (request: FastifyRequest) => string | undefined;
}

// Keyed by the app's services, one object for the whole app: each route plugin gets its own
// encapsulated Fastify instance, so keying by that would make one limiter per plugin again.
const made = new WeakMap<object, ShareGuards>();

/**
 * Password guesses are limited per link and address — and only guesses: downloads of a link
 * without a password, or with a password already proven, are never throttled (a download
 * manager's 16 connections, an office behind one NAT). One limiter per app, so every route of a
 * link (download, grants, drop uploads) draws on the same budget: alternating routes buys no
 * extra guesses.
 */
export function shareGuards(app: AppInstance): ShareGuards {
  const existing = made.get(app.services);
  if (existing) return existing;
  const guessLimit = app.createRateLimit({
    max: app.config.sharePasswordRateLimit,
    timeWindow: 60_000,
    keyGenerator: (request) => `${request.ip}:${(request.params as { token?: string }).token ?? ''}`,
  });
  const guards: ShareGuards = {
    guessGate: (request) => async () => {
      const verdict = await guessLimit(request);
      // isAllowed only means "on the allow list"; the count is in isExceeded.
      if (!verdict.isAllowed && verdict.isExceeded) {
        throw new HttpError(
          'rate_limited',
          `too many password attempts; retry in ${verdict.ttlInSeconds} s`,
          {
            retryAfter: verdict.ttlInSeconds,
          },
        );
      }
    },
    passwordOf: (request) => {
      const header = request.headers['x-share-password'];
      return typeof header === 'string' ? header : undefined;
    },
  };
  made.set(app.services, guards);
  return guards;
}
