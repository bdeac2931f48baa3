import type { AppPassword, LoginFlow } from '@dfs/shared';
import { notFound } from '../../errors.ts';
import type { Repositories } from '../../repositories/index.ts';
import type { LoginFlowRow } from '../../repositories/login-flows.ts';
import { AppPasswordService } from '../app-passwords.ts';
import { newId, newToken, sha256Hex } from '../ids.ts';

/** As long as Nextcloud's flows live: time to sign in, not time to guess. */
export const LOGIN_FLOW_TTL_MS = 20 * 60_000;
/** Expired flows removed per start of a new one: the table stays small without a job. */
const SWEEP_BATCH = 50;

/** What the app gets from its poll once the user allowed it. */
export interface LoginFlowCredentials {
  loginName: string;
  appPassword: string;
}

/**
 * The name the app password gets, from the app's User-Agent: the Nextcloud clients say who they
 * are in it (`mirall/3.7.3 (nextcloudcmd, …)`, `Nextcloud-android/3.29`, `Nextcloud-iOS/5.0`).
 * Anything else keeps its User-Agent, shortened to fit an app password's name.
 */
export function clientNameOf(userAgent: string | undefined): string {
  const agent = (userAgent ?? '').replace(/[\p{Cc}\p{Cf}]/gu, '').trim();
  const mirall = /mirall\/\S+\s+\(([^,)]+)/.exec(agent);
  if (mirall) {
    const app = mirall[1]!.trim();
    return app === 'Nextcloud' ? 'Nextcloud desktop' : app;
  }
  if (/Nextcloud-android/i.test(agent)) return 'Nextcloud Android';
  if (/Nextcloud-iOS/i.test(agent)) return 'Nextcloud iOS';
  return agent.slice(0, 100) || 'Unknown client';
}

/**
 * Login Flow v2: an app starts a flow and polls with one token; the user opens a page with the
 * other, signs in and allows or denies. (v1, in a webview, is the same flow with the browser
 * collecting the credentials: see `grant`.) Allowing makes an app password named after the app, which
 * the next poll hands over exactly once. Flows live in the database, so the start, the browser
 * and the polls may each reach another app instance.
 */
export class LoginFlowService {
  constructor(
    private readonly repos: Repositories,
    private readonly now: () => number,
  ) {}

  async start(userAgent: string | undefined): Promise<{ pollToken: string; flowToken: string }> {
    const now = this.now();
    await this.sweep(now);
    const pollToken = newToken(48);
    const flowToken = newToken(48);
    await this.repos.loginFlows.insert({
      id: newId(),
      poll_token_hash: sha256Hex(pollToken),
      flow_token_hash: sha256Hex(flowToken),
      client_name: clientNameOf(userAgent),
      state: 'pending',
      created_at: now,
      expires_at: now + LOGIN_FLOW_TTL_MS,
      user_id: null,
      app_password_id: null,
      app_password: null,
    });
    return { pollToken, flowToken };
  }

  /** The flow a browser page shows, while it waits for an answer. */
  async describe(flowToken: string): Promise<LoginFlow> {
    const row = await this.pending(flowToken);
    return { clientName: row.client_name, expiresAt: new Date(Number(row.expires_at)).toISOString() };
  }

  /**
   * Makes the app password and parks its secret on the flow, in one transaction: a flow answered
   * twice at once (two tabs, two instances) leaves one app password, not an orphan.
   */
  async approve(userId: string, flowToken: string): Promise<AppPassword> {
    const row = await this.pending(flowToken);
    return this.repos.transaction(async (tx) => {
      const { appPassword, secret } = await new AppPasswordService(tx, this.now).create(
        userId,
        row.client_name,
      );
      const decided = await tx.loginFlows.decide(row.id, this.now(), {
        state: 'approved',
        user_id: userId,
        app_password_id: appPassword.id,
        app_password: secret,
      });
      if (!decided) throw gone();
      return appPassword;
    });
  }

  async deny(flowToken: string): Promise<void> {
    const row = await this.pending(flowToken);
    const decided = await this.repos.loginFlows.decide(row.id, this.now(), {
      state: 'denied',
      user_id: null,
      app_password_id: null,
      app_password: null,
    });
    if (!decided) throw gone();
  }

  /**
   * The credentials, once, after approval; null until then, after a deny, after expiry and
   * after the one poll that got them. Deleting the row is what hands them over, so two polls at
   * once (or on two instances) cannot both get the secret.
   */
  async poll(pollToken: string): Promise<LoginFlowCredentials | null> {
    if (!pollToken) return null;
    const row = await this.repos.loginFlows.findByPollTokenHash(sha256Hex(pollToken));
    if (row?.state !== 'approved' || Number(row.expires_at) <= this.now()) return null;
    if (!row.app_password || !row.user_id) return null;
    const user = await this.repos.users.findById(row.user_id);
    if (!user) return null;
    if (!(await this.repos.loginFlows.delete(row.id))) return null;
    return { loginName: user.username, appPassword: row.app_password };
  }

  /**
   * Login Flow v1 (the mobile apps' webview): the browser that allowed the app collects the
   * credentials itself, with the poll token its flow page was given — only for the user who
   * allowed it, and once, like a poll.
   */
  async grant(pollToken: string, userId: string): Promise<LoginFlowCredentials | null> {
    if (!pollToken) return null;
    const row = await this.repos.loginFlows.findByPollTokenHash(sha256Hex(pollToken));
    if (row?.user_id !== userId) return null;
    return this.poll(pollToken);
  }

  private async pending(flowToken: string): Promise<LoginFlowRow> {
    const row = await this.repos.loginFlows.findByFlowTokenHash(sha256Hex(flowToken));
    if (row?.state !== 'pending' || Number(row.expires_at) <= this.now()) throw gone();
    return row;
  }

  /**
   * Forgets expired flows. An app password approved but never collected is revoked with its
   * flow: no app ever got its secret, and nobody else may.
   */
  private async sweep(now: number): Promise<void> {
    for (const row of await this.repos.loginFlows.listExpired(now, SWEEP_BATCH)) {
      if (row.app_password_id && row.user_id) {
        await this.repos.appPasswords.delete(row.user_id, row.app_password_id);
      }
      await this.repos.loginFlows.delete(row.id);
    }
  }
}

const gone = () =>
  notFound('this sign-in request is unknown, already answered or expired; start again from the app');
