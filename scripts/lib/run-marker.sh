# shellcheck shell=bash
# Finds and stops every process a run started, orphans included: the run exports a marker
# variable that every child inherits, so a crashed runner's sshd, MariaDB or Chromium, which
# init adopts and which leave the process tree, are still found through /proc/*/environ.

# dfs_mark_run NAME: exports NAME=<unique id> for this run.
dfs_mark_run() {
  export "$1=$$-$RANDOM$RANDOM"
}

# dfs_marked_processes NAME: the pids (other than this shell) that carry NAME's value.
dfs_marked_processes() {
  local file pid
  grep -lzx "$1=${!1}" /proc/[0-9]*/environ 2>/dev/null | while read -r file; do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" ]] || echo "$pid"
  done
}

# Zombies answer kill -0 but are already dead; where PID 1 does not reap, they stay that way.
dfs_alive() {
  local pid stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    [[ ${stat%% *} == Z ]] || echo "$pid"
  done
  return 0
}

# dfs_stop_marked NAME LABEL: SIGTERM what is left of the run, SIGKILL it after 5 s.
dfs_stop_marked() {
  local pids
  # shellcheck disable=SC2046 # word splitting of the pid list is intended
  mapfile -t pids < <(dfs_alive $(dfs_marked_processes "$1"))
  ((${#pids[@]} > 0)) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    mapfile -t pids < <(dfs_alive "${pids[@]}")
    ((${#pids[@]} == 0)) && return 0
    sleep 0.1
  done
  echo "$2: killing ${#pids[@]} process(es) left behind: ${pids[*]}" >&2
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
