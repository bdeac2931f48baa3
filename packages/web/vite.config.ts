import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [vue()],
  server: { port: 5173, proxy: { '/api': 'http://127.0.0.1:8080' } },
  // The hash worker imports the client core as ES modules; 'es' keeps it a module worker.
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        // naive-ui is large and changes rarely: its own chunk caches across app releases.
        manualChunks: { 'naive-ui': ['naive-ui'] },
      },
    },
  },
});
