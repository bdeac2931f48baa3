import { VueQueryPlugin } from '@tanstack/vue-query';
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import { queryClient } from './api/query.ts';
import { i18n } from './i18n/index.ts';
import { router } from './router/index.ts';

createApp(App).use(createPinia()).use(i18n).use(router).use(VueQueryPlugin, { queryClient }).mount('#app');
