#!/usr/bin/env bash
# `pnpm cluster`: installs what the cluster runs (as the test script does), builds the web app if
# it is not built, and starts a dfs cluster on 127.0.0.1 until Ctrl-C (packages/cluster).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/ensure-system-deps.sh
source scripts/lib/ensure-system-deps.sh
dfs_ensure_system_deps

if [[ ! -f node_modules/.modules.yaml || pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
  pnpm install --frozen-lockfile --config.confirmModulesPurge=false
fi
if [[ ! -f packages/web/dist/index.html || ${DFS_CLUSTER_BUILD:-0} == 1 ]]; then
  pnpm --filter @dfs/web build
fi
# The server bundle takes about a second: always built, so the cluster runs the current code.
pnpm --filter @dfs/server build

exec node --import tsx packages/cluster/src/main.ts
