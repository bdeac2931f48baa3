import { useLocalStorage, usePreferredDark } from '@vueuse/core';
import { computed, watch } from 'vue';

export type ThemeChoice = 'system' | 'light' | 'dark';
export const THEME_CHOICES: ThemeChoice[] = ['system', 'light', 'dark'];

/** Remembered like the language; 'system' follows `prefers-color-scheme` as it changes. */
export const themeChoice = useLocalStorage<ThemeChoice>('dfs.theme', 'system', {
  serializer: {
    read: (v) => (THEME_CHOICES.includes(v as ThemeChoice) ? (v as ThemeChoice) : 'system'),
    write: (v) => v,
  },
});

const systemDark = usePreferredDark();
export const isDark = computed(() =>
  themeChoice.value === 'system' ? systemDark.value : themeChoice.value === 'dark',
);

// The page's own CSS (scrollbars, form controls, the app's custom properties) follows too.
watch(
  isDark,
  (dark) => {
    const root = document.documentElement;
    root.dataset.theme = dark ? 'dark' : 'light';
    root.style.colorScheme = dark ? 'dark' : 'light';
  },
  { immediate: true },
);
