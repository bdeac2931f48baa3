#!/usr/bin/env bash
# The project's one test command (`pnpm test`): system packages, dependencies, lint, types, every
# vitest project (unit, mocked, sqlite, mariadb, s3, web, cluster) and the browser end-to-end suite.
# Stops at the first failure; each step says how long it took (CI's budget is 20 minutes for the
# whole run) and the last line always says how it ended. `pnpm test:unit` is the fast tier.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/ensure-system-deps.sh
source scripts/lib/ensure-system-deps.sh

started=$SECONDS
step=setup

# shellcheck source=lib/run-marker.sh
source scripts/lib/run-marker.sh
dfs_mark_run DFS_TEST_RUN_ID

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  dfs_stop_marked DFS_TEST_RUN_ID 'dfs test'
  local took=$((SECONDS - started))
  if ((status == 0)); then
    echo "dfs test: PASSED — ${done_steps[*]} (${took}s)"
  else
    echo "dfs test: FAILED at '$step' (exit $status, ${took}s)" >&2
  fi
  exit "$status"
}
done_steps=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run() {
  step=$1
  shift
  echo
  echo "==> $step: $*"
  local step_started=$SECONDS
  "$@"
  echo "<== $step: $((SECONDS - step_started))s"
  done_steps+=("$step")
}

run system-deps dfs_ensure_system_deps

# A fresh checkout has no node_modules; a changed lockfile means they are stale. Without a TTY
# pnpm aborts instead of asking when it has to rebuild node_modules, hence confirmModulesPurge.
if [[ ! -f node_modules/.modules.yaml || pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
  run install pnpm install --frozen-lockfile --config.confirmModulesPurge=false
fi

# The production bundle, built once as `pnpm start` builds it: the production and cluster suites
# run it, and the e2e suite's own `pnpm build` then finds it up to date.
run build pnpm build
run lint pnpm lint
run typecheck pnpm typecheck
run vitest pnpm exec vitest run

if [[ -f e2e/playwright.config.ts ]]; then
  run e2e pnpm --filter @dfs/e2e test
fi
