#!/usr/bin/env bash
# The project's one test command (`pnpm test`): system packages, dependencies, lint, types, every
# vitest project (unit, sqlite, mariadb) and, once it exists, the browser end-to-end suite.
# Stops at the first failure; the last line always says how it ended.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/ensure-system-deps.sh
source scripts/lib/ensure-system-deps.sh

started=$SECONDS
step=setup

# Every process this run starts inherits this marker, so the exit trap can find the ones that
# were orphaned (a crashed runner's MariaDB or sshd is reparented to init and leaves the tree).
DFS_TEST_RUN_ID="$$-$RANDOM$RANDOM"
export DFS_TEST_RUN_ID

run_processes() {
  local file pid
  # One grep over every environ file; the subshell running it (and grep) carry the marker too,
  # but they are gone by the time the list is used.
  grep -lzx "DFS_TEST_RUN_ID=$DFS_TEST_RUN_ID" /proc/[0-9]*/environ 2>/dev/null | while read -r file; do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" ]] || echo "$pid"
  done
}

# Zombies answer kill -0 but are already dead; where PID 1 does not reap, they stay that way.
alive() {
  local pid stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    [[ ${stat%% *} == Z ]] || echo "$pid"
  done
  return 0
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pids
  mapfile -t pids < <(alive $(run_processes))
  if ((${#pids[@]} > 0)); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      mapfile -t pids < <(alive "${pids[@]}")
      ((${#pids[@]} == 0)) && break
      sleep 0.1
    done
    if ((${#pids[@]} > 0)); then
      echo "dfs: killing ${#pids[@]} process(es) left behind: ${pids[*]}" >&2
      kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
  fi
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
  "$@"
  done_steps+=("$step")
}

run system-deps dfs_ensure_system_deps

# A fresh checkout has no node_modules; a changed lockfile means they are stale. Without a TTY
# pnpm aborts instead of asking when it has to rebuild node_modules, hence confirmModulesPurge.
if [[ ! -f node_modules/.modules.yaml || pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
  run install pnpm install --frozen-lockfile --config.confirmModulesPurge=false
fi

run lint pnpm lint
run typecheck pnpm typecheck
run vitest pnpm exec vitest run

if [[ -f e2e/playwright.config.ts ]]; then
  run e2e pnpm --filter @dfs/e2e test
fi
