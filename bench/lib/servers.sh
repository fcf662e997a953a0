# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the scripts that source this file
# Shared by bench/tls-accept and bench/session-abuse. Source it after common.sh; do not
# execute. Needs BENCH_DIR, REPO_DIR, LIB, CONF and RUN_DIR (set by the caller).
#
#   srv_install                 apt-get what is missing (postfix "No configuration", python3,
#                               openssl, coreutils, procps); the vmail user
#   srv_resolve_berth           BERTH_BIN (absolute) and BERTH_BUILD, or exit 2
#   srv_raise_nofile N          soft RLIMIT_NOFILE >= N (up to the hard limit)
#   srv_ec_cert DIR NAME CN     ECDSA P-256 self-signed key+certificate DIR/NAME.{key,crt}
#   pf_start DIR PLAIN SSL PROCS CERT KEY   private Postfix (conf/postfix/tls-*.cf.in):
#                               sets PF_DIR PF_MASTER; env PF_IDLE_S PF_TLS_S PF_MSG_LIMIT
#   pf_stop                     postfix stop, wait for the master, SIGKILL leftovers
#   berth_probe_flags           BERTH_SERVE_FLAGS (array) and BERTH_FLAG_NOTE from `serve --help`
#   berth_start DIR ADMIN_PORT LOGBASE   start Berth (sets B_PID B_ADMIN); retries without
#                               the optional flags if the binary refuses them
#   berth_stop                  SIGTERM, bounded wait, SIGKILL; notes a non-zero exit
#   bg_track PID / bg_stop_all  background helpers stopped by the caller's cleanup

PF_DIR=""; PF_MASTER=""; B_PID=""; B_ADMIN=""; B_LOG=""
BG_PIDS=()

srv_install() {
  local need=()
  for b in postfix postconf smtp-sink; do command -v "$b" >/dev/null 2>&1 || { need+=(postfix); break; }; done
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v timeout >/dev/null 2>&1 || need+=(coreutils)
  command -v pgrep   >/dev/null 2>&1 || need+=(procps)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string test.local
EOF
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >&2
  fi
  for b in postfix postconf smtp-sink python3 openssl timeout; do
    command -v "$b" >/dev/null 2>&1 || die "$b still missing after install"
  done
  python3 -c 'import ssl, selectors, multiprocessing' 2>/dev/null || die "python3 lacks ssl/selectors/multiprocessing"
  if ! id vmail >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
    log "created user vmail"
  fi
}

srv_resolve_berth() {
  if [ -z "${BERTH_BIN:-}" ]; then
    BERTH_BIN=$REPO_DIR/.build/release/berth
    [ ! -x "$BERTH_BIN" ] && [ -x "$REPO_DIR/.build-release/release/berth" ] && BERTH_BIN=$REPO_DIR/.build-release/release/berth
  fi
  case "$BERTH_BIN" in
    /*) ;;
    *) if [ -e "$BERTH_BIN" ]; then BERTH_BIN="$PWD/$BERTH_BIN"; else BERTH_BIN="$REPO_DIR/$BERTH_BIN"; fi ;;
  esac
  if [ ! -x "$BERTH_BIN" ]; then
    echo "Berth binary not found: $BERTH_BIN" >&2
    echo "Build it first:  (cd $REPO_DIR && swift build -c release)   or set BERTH_BIN." >&2
    exit 2
  fi
  case "$BERTH_BIN" in
    */release/*) BERTH_BUILD=release ;;
    */debug/*)   BERTH_BUILD="debug (figures not meaningful)" ;;
    *)           BERTH_BUILD="unknown build" ;;
  esac
  BERTH_BUILD="$BERTH_BUILD, built $(date -r "$BERTH_BIN" '+%Y-%m-%d %H:%M')"
}

srv_raise_nofile() {
  local want=$1 hard
  [ "$(ulimit -n)" = unlimited ] && return 0
  [ "$(ulimit -n)" -ge "$want" ] && return 0
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null && hard=$want   # root may raise the hard limit
  fi
  ulimit -n "$want" 2>/dev/null || ulimit -n "$hard" 2>/dev/null || true
}

# srv_ec_cert DIR NAME CN: ECDSA P-256 key + self-signed certificate for DNS:CN
srv_ec_cert() {
  local d=$1 n=$2 cn=$3
  mkdir -p "$d"; chmod 755 "$d"
  openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$d/$n.key" -out "$d/$n.crt" -days 30 -subj "/CN=$cn" \
    -addext "subjectAltName=DNS:$cn" >/dev/null 2>&1 || die "openssl could not make the $n certificate"
  chmod 600 "$d/$n.key"; chmod 644 "$d/$n.crt"
}

# ---------------------------------------------------------------- Postfix
PF_IDLE_S=${PF_IDLE_S:-300}; PF_TLS_S=${PF_TLS_S:-300}; PF_MSG_LIMIT=${PF_MSG_LIMIT:-26214400}
pf_start() {
  local dir=$1 plain=$2 ssl=$3 procs=$4 cert=$5 key=$6
  PF_DIR=$dir
  rm -rf "$dir"
  mkdir -p "$dir/etc" "$dir/spool" "$dir/data" "$dir/mail"
  chown postfix:postfix "$dir/data"; chown vmail:vmail "$dir/mail"
  sed -e "s#@PFX@#$dir#g" -e "s#@UID@#$(id -u vmail)#g" -e "s#@GID@#$(id -g vmail)#g" \
      -e "s#@PROCS@#$procs#g" -e "s#@TLS_CERT@#$cert#g" -e "s#@TLS_KEY@#$key#g" \
      -e "s#@IDLE_S@#$PF_IDLE_S#g" -e "s#@TLS_S@#$PF_TLS_S#g" -e "s#@MSG_LIMIT@#$PF_MSG_LIMIT#g" \
      "$CONF/postfix/tls-main.cf.in" > "$dir/etc/main.cf"
  sed -e "s#@PLAIN_PORT@#$plain#g" -e "s#@SSL_PORT@#$ssl#g" -e "s#@PROCS@#$procs#g" \
      "$CONF/postfix/tls-master.cf.in" > "$dir/etc/master.cf"
  touch "$dir/maillog"
  postfix -c "$dir/etc" set-permissions >/dev/null 2>&1 || true
  postfix -c "$dir/etc" check >&2 || die "postfix check failed (config in $dir/etc)"
  postfix -c "$dir/etc" start >"$dir/start.log" 2>&1 \
    || { cat "$dir/start.log" >&2; die "postfix did not start"; }
  PF_MASTER=""
  for _ in $(seq 100); do [ -s "$dir/spool/pid/master.pid" ] && break; sleep 0.1; done
  PF_MASTER=$(tr -d ' \n' < "$dir/spool/pid/master.pid" 2>/dev/null || true)
  [ -n "$PF_MASTER" ] || die "postfix master pid file missing"
  python3 "$LIB/util.py" wait-smtp "$plain" 30 "$PF_MASTER" >/dev/null \
    || { tail -20 "$dir/maillog" >&2; die "postfix smtpd does not answer on 127.0.0.1:$plain"; }
}

pf_children() { # every descendant of the master (Postfix daemons are its direct children)
  [ -n "$PF_MASTER" ] && pgrep -P "$PF_MASTER" 2>/dev/null || true
}

pf_stop() {
  [ -n "$PF_MASTER" ] || return 0
  local kids
  kids=$(pf_children | tr '\n' ' ')
  postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || kill -TERM "$PF_MASTER" 2>/dev/null
  for _ in $(seq 300); do kill -0 "$PF_MASTER" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PF_MASTER" 2>/dev/null; then
    log "postfix master $PF_MASTER did not exit in 30 s; SIGKILL"; kill -KILL "$PF_MASTER" 2>/dev/null
  fi
  # children the master's SIGTERM did not end (bounded)
  for _ in $(seq 100); do
    local left=""
    for k in $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  for k in $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
  PF_MASTER=""
}

# ---------------------------------------------------------------- Berth
# Optional serve flags (other engineers are adding them): used when `serve --help` lists them.
BERTH_SERVE_FLAGS=(); BERTH_FLAG_NOTE=""
B_IDLE_S=${B_IDLE_S:-$PF_IDLE_S}; B_TLS_S=${B_TLS_S:-$PF_TLS_S}
berth_probe_flags() {
  local help; help=$("$BERTH_BIN" serve --help 2>&1 || true)
  BERTH_SERVE_FLAGS=(--max-message-size "$PF_MSG_LIMIT")
  local used=() missing=()
  if grep -q -- '--idle-timeout' <<<"$help"; then
    BERTH_SERVE_FLAGS+=(--idle-timeout "$B_IDLE_S"); used+=("--idle-timeout $B_IDLE_S")
  else missing+=(--idle-timeout); fi
  if grep -q -- '--tls-handshake-timeout' <<<"$help"; then
    BERTH_SERVE_FLAGS+=(--tls-handshake-timeout "$B_TLS_S"); used+=("--tls-handshake-timeout $B_TLS_S")
  else missing+=(--tls-handshake-timeout); fi
  BERTH_FLAG_NOTE="${used[*]:+used ${used[*]}}${used[*]:+${missing[*]:+; }}${missing[*]:+not in this binary: ${missing[*]} (its defaults apply)}"
}

# berth_start DIR ADMIN_PORT LOGBASE: data in DIR, logs LOGBASE.{out,log}
berth_start() {
  local d=$1 aport=$2 lb=$3 try
  B_ADMIN=127.0.0.1:$aport; B_LOG=$lb.log
  mkdir -p "$d"
  for try in 1 2; do
    BERTH_ADMIN_PASSWORD=$ADMIN_PW "$BERTH_BIN" serve --data "$d" --admin "$B_ADMIN" \
      --no-default-ports --hostname mx.bench.test "${BERTH_SERVE_FLAGS[@]}" >"$lb.out" 2>"$lb.log" &
    B_PID=$!
    if python3 "$LIB/util.py" wait-http "http://$B_ADMIN/healthz" 60 "$B_PID" 2>>"$lb.log"; then
      return 0
    fi
    wait "$B_PID" 2>/dev/null || true
    if [ "$try" = 1 ] && [ ${#BERTH_SERVE_FLAGS[@]} -gt 2 ] \
       && grep -qiE 'idle-timeout|tls-handshake-timeout|unknown option|unexpected argument' "$lb.log"; then
      log "berth refused an optional serve flag ($(grep -iE 'timeout|option|argument' "$lb.log" | head -1)); retrying without"
      BERTH_FLAG_NOTE="refused by this binary: ${BERTH_SERVE_FLAGS[*]:2} (its defaults apply)"
      BERTH_SERVE_FLAGS=(--max-message-size "$PF_MSG_LIMIT")
      rm -rf "$d"; mkdir -p "$d"
      continue
    fi
    tail -20 "$lb.log" >&2; die "berth: /healthz did not answer"
  done
}

berth_stop() {
  [ -n "$B_PID" ] || return 0
  local brc=0
  if kill -0 "$B_PID" 2>/dev/null; then
    kill -TERM "$B_PID" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$B_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$B_PID" 2>/dev/null; then
      log "berth (pid $B_PID) did not exit 30 s after SIGTERM; SIGKILL"; kill -KILL "$B_PID" 2>/dev/null
    fi
  fi
  wait "$B_PID" 2>/dev/null || brc=$?
  [ "$brc" = 0 ] || log "berth exited with status $brc (log: $B_LOG)"
  B_PID=""
}

# ---------------------------------------------------------------- background helpers
bg_track() { BG_PIDS+=("$1"); }
bg_stop_all() {
  local p
  for p in "${BG_PIDS[@]}"; do stop_pid "$p" "helper" 5; done
  BG_PIDS=()
}
