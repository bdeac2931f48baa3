import { ApiError, NetworkError } from '@dfs/client';
import { i18n } from '../i18n/index.ts';

/**
 * A sentence a person can act on, in the UI language. Known API codes get a translated text;
 * anything else keeps the server's own message rather than a bare status number.
 */
export function errorText(err: unknown): string {
  const t = i18n.global.t;
  const te = i18n.global.te;
  if (err instanceof ApiError) {
    const key = `errors.${err.code}`;
    if (te(key)) return t(key, { message: err.message });
    return err.message || t('errors.unknown', { message: `HTTP ${err.status}` });
  }
  if (err instanceof NetworkError || (err instanceof TypeError && /fetch/i.test(err.message))) {
    return t('errors.network');
  }
  const message = err instanceof Error ? err.message : String(err);
  return t('errors.unknown', { message });
}

/** Like `errorText` but for the plain error records in upload snapshots. */
export function uploadErrorText(info: { message: string; code?: string; name: string } | null): string {
  if (!info) return '';
  const t = i18n.global.t;
  const te = i18n.global.te;
  if (info.code && te(`errors.${info.code}`)) return t(`errors.${info.code}`, { message: info.message });
  if (info.name === 'NetworkError') return t('errors.network');
  return info.message;
}
