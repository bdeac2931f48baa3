#!/usr/bin/env bash
# `pnpm bench`: installs what the measurements drive (OpenSSH, MariaDB, Chromium from Debian; the
# workspace's node_modules), then runs bench/src/main.ts, which starts and stops its own servers.
# DFS_BENCH_QUICK=1 for a short run. The table goes to stdout and to .bench/results.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/ensure-system-deps.sh
source scripts/lib/ensure-system-deps.sh

# shellcheck source=lib/run-marker.sh
source scripts/lib/run-marker.sh
dfs_mark_run DFS_BENCH_RUN_ID

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  dfs_stop_marked DFS_BENCH_RUN_ID 'dfs bench'
  # The bench removes its own tmp dir; a killed one leaves it behind.
  rm -rf /tmp/dfs-bench-"$DFS_BENCH_RUN_ID"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

dfs_ensure_system_deps

if [[ ! -f node_modules/.modules.yaml || pnpm-lock.yaml -nt node_modules/.modules.yaml || ! -d bench/node_modules ]]; then
  pnpm install --frozen-lockfile --config.confirmModulesPurge=false
fi

# The bench measures the server and the CLI as they ship: the bundles.
pnpm --filter @dfs/server build
pnpm --filter @dfs/client build

export TMPDIR=/tmp/dfs-bench-$DFS_BENCH_RUN_ID
mkdir -p "$TMPDIR"
node --import tsx bench/src/main.ts
