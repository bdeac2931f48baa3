import type { Actor } from '@dfs/shared';
import { i18n } from '../i18n/index.ts';

/**
 * Who made a version, as a person reads it: "web" for the web app, an app password by its
 * name, and the door a client came in by ("laptop · WebDAV"), or a restore ("web · restore").
 */
export function actorLabel(actor: Actor | null): string {
  const t = i18n.global.t;
  if (!actor) return t('details.unknownActor');
  const via = actor.via && actor.via !== 'api' ? t(`details.via.${actor.via}`) : null;
  let who: string;
  // A restore is made by someone (the web app, mostly): both are said.
  if (actor.type === 'session') who = via && actor.via !== 'restore' ? '' : t('details.web');
  else if (actor.type === 'app_password') who = actor.name;
  else if (actor.type === 'share') who = t('details.shareActor', { name: actor.name });
  else return t('details.system');
  return [who, via].filter(Boolean).join(' · ');
}
