import { ApiError } from '@dfs/client';
import type { User } from '@dfs/shared';
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { api, onUnauthorized } from '../api/index.ts';
import { queryClient } from '../api/query.ts';

export const useAuthStore = defineStore('auth', () => {
  const user = ref<User | null>(null);
  /** True once GET /api/auth/me has answered (the router waits for it). */
  const ready = ref(false);
  /** Set when the server dropped the session under us; the sign-in page explains it. */
  const sessionEnded = ref(false);
  let loading: Promise<void> | null = null;

  const isAdmin = computed(() => user.value?.isAdmin === true);

  /** Asks the server who is signed in (the cookie is HttpOnly, so only it knows). */
  function load(): Promise<void> {
    loading ??= (async () => {
      try {
        user.value = (await api.me()).user;
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) console.warn('dfs: /api/auth/me failed', err);
        user.value = null;
      } finally {
        ready.value = true;
      }
    })();
    return loading;
  }

  /** One user's cached listings must never show to the next one in this tab. */
  function setUser(next: User | null): void {
    if (next?.id !== user.value?.id) queryClient.clear();
    user.value = next;
  }

  /** `code`: the second factor, when the server answered `totp_required` to the password alone. */
  async function signin(username: string, password: string, code?: string): Promise<void> {
    const res = await api.signin(username, password, code === undefined ? {} : { code });
    setUser(res.user);
    sessionEnded.value = false;
  }

  /** A sign-in that did not go through `signin` (a passkey): the server's answer names the user. */
  function adopt(next: User): void {
    setUser(next);
    sessionEnded.value = false;
  }

  async function signup(username: string, password: string): Promise<void> {
    await api.signup(username, password);
    await signin(username, password);
  }

  async function signout(): Promise<void> {
    try {
      await api.signout();
    } finally {
      setUser(null);
    }
  }

  onUnauthorized(() => {
    if (user.value) {
      setUser(null);
      sessionEnded.value = true;
    }
  });

  return { user, ready, isAdmin, sessionEnded, load, signin, signup, signout, adopt };
});
