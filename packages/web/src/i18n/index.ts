import { computed, watch } from 'vue';
import { createI18n } from 'vue-i18n';
import en from './en.ts';
import audit from './features/audit.ts';
import dashboard from './features/dashboard.ts';
import passkeys from './features/passkeys.ts';
import sessions from './features/sessions.ts';
import sharing from './features/sharing.ts';
import sso from './features/sso.ts';
import zhCN from './zh-CN.ts';

/** Each feature's messages are top-level namespaces of their own, merged over the base texts. */
const features = [sharing, sso, passkeys, sessions, dashboard, audit];
const withFeatures = <T extends object>(base: T, locale: 'en' | 'zh-CN'): T =>
  Object.assign({}, base, ...features.map((f) => f[locale]));

export type Locale = 'en' | 'zh-CN';
export const LOCALES: { value: Locale; label: string }[] = [
  { value: 'en', label: 'English' },
  { value: 'zh-CN', label: '简体中文' },
];

const STORAGE_KEY = 'dfs.locale';

/** A stored choice wins; otherwise the browser's language (any zh-* → Simplified Chinese). */
export function initialLocale(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'zh-CN') return saved;
  } catch {
    // storage disabled (private mode): fall through to the browser language
  }
  const langs = typeof navigator === 'undefined' ? [] : (navigator.languages ?? [navigator.language]);
  for (const l of langs) {
    const lower = l.toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en: withFeatures(en, 'en'), 'zh-CN': withFeatures(zhCN, 'zh-CN') },
});

export const currentLocale = computed<Locale>({
  get: () => i18n.global.locale.value as Locale,
  set: (v) => {
    i18n.global.locale.value = v;
    try {
      localStorage.setItem(STORAGE_KEY, v);
    } catch {
      // not persisted; the choice still holds for this tab
    }
  },
});

watch(
  () => i18n.global.locale.value,
  (l) => {
    document.documentElement.lang = l;
  },
  { immediate: true },
);
