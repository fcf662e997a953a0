# shellcheck shell=bash
# Helpers for bench/smtp-inbound. Source it; do not execute.

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }

# median of the numbers given as arguments (1 decimal); "nan" when none
median() {
  printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{a[NR]=$1} END {
    if (NR==0) {print "nan"; exit}
    if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# files directly in a directory (0 when it does not exist)
count_files() {
  [ -d "$1" ] || { echo 0; return 0; }
  find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l
}

# a / b with the given printf format, "—" when either is missing or b is 0
ratio() {
  awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN{
    if (a=="" || b=="" || a=="nan" || b=="nan" || a=="—" || b=="—" || b+0==0) {print "—"; exit}
    printf f"\n", a/b}'
}

# stop a process by pid: TERM, wait (bounded, seconds), then KILL
stop_pid() {
  local pid=$1 name=$2 secs=${3:-10}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not exit in ${secs}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
