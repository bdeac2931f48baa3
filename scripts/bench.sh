#!/usr/bin/env bash
# `pnpm bench`: installs what the measurements drive (OpenSSH, MariaDB, Chromium from Debian; the
# workspace's node_modules), then runs bench/src/main.ts, which starts and stops its own servers.
# DFS_BENCH_QUICK=1 for a short run. The table goes to stdout and to .bench/results.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/ensure-system-deps.sh
source scripts/lib/ensure-system-deps.sh

# Every process this run starts inherits this marker, so the exit trap can find any that outlive
# the bench (a killed run's sshd sessions, MariaDB or Chromium are reparented to init).
DFS_BENCH_RUN_ID="$$-$RANDOM$RANDOM"
export DFS_BENCH_RUN_ID

run_processes() {
  local file pid
  grep -lzx "DFS_BENCH_RUN_ID=$DFS_BENCH_RUN_ID" /proc/[0-9]*/environ 2>/dev/null | while read -r file; do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" ]] || echo "$pid"
  done
}

# Zombies answer kill -0 but are already dead.
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
    echo "dfs bench: stopping ${#pids[@]} process(es) left behind: ${pids[*]}" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      mapfile -t pids < <(alive "${pids[@]}")
      ((${#pids[@]} == 0)) && break
      sleep 0.1
    done
    ((${#pids[@]} == 0)) || kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
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

export TMPDIR=/tmp/dfs-bench-$DFS_BENCH_RUN_ID
mkdir -p "$TMPDIR"
node --import tsx bench/src/main.ts
