import { ApiError, NetworkError } from '@dfs/client';
import { i18n } from '../i18n/index.ts';

/** The translated text of a known API error code, or null for a code the UI has no words for. */
function codeText(code: string | undefined, message: string): string | null {
  const key = `errors.${code}`;
  return code && i18n.global.te(key) ? i18n.global.t(key, { message }) : null;
}

/**
 * A sentence a person can act on, in the UI language. Known API codes get a translated text;
 * anything else keeps the server's own message rather than a bare status number.
 */
export function errorText(err: unknown): string {
  const t = i18n.global.t;
  if (err instanceof ApiError) {
    const known = codeText(err.code, err.message);
    if (known !== null) return known;
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
  const known = codeText(info.code, info.message);
  if (known !== null) return known;
  if (info.name === 'NetworkError') return i18n.global.t('errors.network');
  return info.message;
}
