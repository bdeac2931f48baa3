import { type Static, Type } from '@sinclair/typebox';
import { AppPassword } from './app-passwords.ts';
import { IsoDate } from './common.ts';

/**
 * Login Flow v2 (how the Nextcloud desktop and mobile apps sign in): the app opens a page of
 * dfs in a browser, the signed-in user allows it, and the app's poll collects a new app password.
 * These are the web app's side of it; the app's side lives under /index.php/login/v2.
 */
export const LoginFlowParams = Type.Object(
  { flowToken: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' }) },
  { additionalProperties: false },
);
export type LoginFlowParams = Static<typeof LoginFlowParams>;

/** A flow waiting for its user's answer. */
export const LoginFlow = Type.Object(
  {
    /** Who asks, from the app's User-Agent ("Nextcloud desktop", "nextcloudcmd", …); the name of the app password it would get. */
    clientName: Type.String(),
    /** After this, the flow is gone and the app must start again. */
    expiresAt: IsoDate,
  },
  { $id: 'LoginFlow' },
);
export type LoginFlow = Static<typeof LoginFlow>;

/** The app password made for the app; its secret goes only to the app's poll. */
export const LoginFlowApproved = Type.Object({ appPassword: AppPassword });
export type LoginFlowApproved = Static<typeof LoginFlowApproved>;
