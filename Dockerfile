# syntax=docker/dockerfile:1.7
# The dfs app: the Fastify API bundled to JavaScript (packages/server/dist/main.js) and the built
# web app; the runtime image has production dependencies only (no TypeScript, no tsx).
# Build from the repository root: docker build -t dfs .

FROM node:20-bookworm-slim AS base
# corepack fails to fetch pnpm behind some proxies; npm is always there.
RUN npm install --global pnpm@9.15.0
WORKDIR /app

# better-sqlite3 and ssh2's cpu-features fall back to compiling when no prebuilt binary fits;
# the toolchain stays in the build stages only.
FROM base AS toolchain
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# `pnpm fetch` needs only the lockfile, so this layer survives source edits.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc package.json ./
RUN --mount=type=cache,id=dfs-pnpm-store,target=/pnpm/store pnpm fetch --store-dir /pnpm/store

FROM toolchain AS build
COPY . .
RUN --mount=type=cache,id=dfs-pnpm-store,target=/pnpm/store \
  pnpm install --frozen-lockfile --offline --store-dir /pnpm/store
RUN pnpm --filter @dfs/web build && pnpm --filter @dfs/server build

FROM toolchain AS prod-deps
COPY . .
RUN --mount=type=cache,id=dfs-pnpm-store,target=/pnpm/store \
  pnpm install --frozen-lockfile --offline --prod --store-dir /pnpm/store

FROM base AS runtime
# Thumbnails of videos (a poster frame) and PDFs (the first page) come from these programs.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg poppler-utils \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  DFS_HOST=0.0.0.0 \
  DFS_PORT=8080 \
  DFS_DATA_DIR=/data
COPY --from=prod-deps /app /app
COPY --from=build /app/packages/web/dist /app/packages/web/dist
COPY --from=build /app/packages/server/dist /app/packages/server/dist
# Staging, the SQLite default and the generated secret live here; it must outlive the container.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8080
# The slim image has no curl; Node 20's fetch does the same job.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DFS_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
WORKDIR /app/packages/server
CMD ["node", "--enable-source-maps", "dist/main.js"]
