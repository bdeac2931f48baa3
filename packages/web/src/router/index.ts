import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { onSecondFactorSetupRequired } from '../api/index.ts';
import { useAuthStore } from '../stores/auth.ts';

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without signing in. */
    public?: boolean;
    /** Only for signed-out visitors (sign-in / sign-up). */
    guest?: boolean;
    admin?: boolean;
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/files' },
  {
    path: '/signin',
    name: 'signin',
    component: () => import('../pages/AuthPage.vue'),
    meta: { guest: true },
  },
  {
    path: '/signup',
    name: 'signup',
    component: () => import('../pages/AuthPage.vue'),
    meta: { guest: true },
  },
  { path: '/files/:folderId?', name: 'files', component: () => import('../pages/FilesPage.vue') },
  { path: '/trash', name: 'trash', component: () => import('../pages/TrashPage.vue') },
  { path: '/links', name: 'links', component: () => import('../pages/LinksPage.vue') },
  { path: '/shared', name: 'shared', component: () => import('../pages/SharedWithMePage.vue') },
  {
    path: '/admin/groups',
    name: 'groups',
    component: () => import('../pages/GroupsPage.vue'),
    meta: { admin: true },
  },
  {
    path: '/admin/nodes',
    name: 'nodes',
    component: () => import('../pages/NodesPage.vue'),
    meta: { admin: true },
  },
  // ECharts comes with this page alone: other users never download it.
  {
    path: '/admin/dashboard',
    name: 'dashboard',
    component: () => import('../pages/DashboardPage.vue'),
    meta: { admin: true },
  },
  {
    path: '/admin/audit',
    name: 'audit',
    component: () => import('../pages/AuditPage.vue'),
    meta: { admin: true },
  },
  {
    path: '/settings/app-passwords',
    name: 'app-passwords',
    component: () => import('../pages/AppPasswordsPage.vue'),
  },
  {
    path: '/settings/sessions',
    name: 'sessions',
    component: () => import('../pages/SessionsPage.vue'),
  },
  {
    path: '/settings/two-factor',
    name: 'two-factor',
    component: () => import('../pages/TwoFactorPage.vue'),
  },
  {
    path: '/admin/users',
    name: 'users',
    component: () => import('../pages/UsersPage.vue'),
    meta: { admin: true },
  },
  // A Nextcloud app's sign-in (Login Flow v2) lands here from /index.php/login/v2/flow/<token>.
  { path: '/connect/:flowToken', name: 'connect', component: () => import('../pages/ConnectPage.vue') },
  {
    path: '/s/:token',
    name: 'share',
    component: () => import('../pages/PublicSharePage.vue'),
    meta: { public: true },
  },
  // An upload request's page: takes files into the owner's folder, shows nothing of it.
  {
    path: '/drop/:token',
    name: 'drop',
    component: () => import('../pages/DropPage.vue'),
    meta: { public: true },
  },
  { path: '/:pathMatch(.*)*', redirect: '/files' },
];

export const router = createRouter({ history: createWebHistory(), routes });

// DFS_REQUIRE_2FA: a session without a second factor is sent to set one up, and told why.
onSecondFactorSetupRequired(() => {
  if (router.currentRoute.value.name !== 'two-factor') {
    void router.push({ name: 'two-factor', query: { required: '1' } });
  }
});

router.beforeEach(async (to) => {
  if (to.meta.public) return true;
  const auth = useAuthStore();
  await auth.load();
  if (to.meta.guest) return auth.user ? { path: safeNext(to.query.next) } : true;
  if (!auth.user) return { name: 'signin', query: to.fullPath !== '/files' ? { next: to.fullPath } : {} };
  if (to.meta.admin && !auth.isAdmin) return { name: 'files' };
  return true;
});

/** Only same-site paths: `?next=//evil.example` must not turn sign-in into an open redirect. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') ? next : '/files';
}
