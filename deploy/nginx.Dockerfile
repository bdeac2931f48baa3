# syntax=docker/dockerfile:1.7
# nginx in front of dfs: serves the built web app itself and proxies the API to the app service.
# Built from the repository root (docker-compose.yml sets the context).

FROM node:20-bookworm-slim AS web
RUN npm install --global pnpm@9.15.0
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc package.json ./
RUN --mount=type=cache,id=dfs-pnpm-store,target=/pnpm/store pnpm fetch --store-dir /pnpm/store
COPY . .
# Only the web app and its workspace dependencies; the server's native modules are not needed.
RUN --mount=type=cache,id=dfs-pnpm-store,target=/pnpm/store \
  pnpm install --frozen-lockfile --offline --store-dir /pnpm/store --filter '@dfs/web...'
RUN pnpm --filter @dfs/web build

FROM nginx:1.27-alpine
COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=web /app/packages/web/dist /usr/share/nginx/html
