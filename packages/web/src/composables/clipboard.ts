import { useMessage } from 'naive-ui';
import { useI18n } from 'vue-i18n';

/** Copies text; falls back to execCommand where the async Clipboard API is denied (plain http). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    } finally {
      ta.remove();
    }
  }
}

/** Copies a share link and says in a toast whether it worked; call during component setup. */
export function useCopyLink(): (url: string) => Promise<void> {
  const { t } = useI18n();
  const message = useMessage();
  return async (url) => {
    if (await copyText(url)) message.success(t('share.copied'));
    else message.warning(t('share.copyFailed'));
  };
}
