#!/usr/bin/env bash
# A throwaway PostgreSQL on a free loopback port, trust auth, data in a temp dir.
#
#   source scripts/throwaway-postgres.sh      # starts it, exports GUESTLIST_TEST_DATABASE_URL,
#                                             # stops it when the sourcing shell exits (trap EXIT)
#   scripts/throwaway-postgres.sh CMD ARGS... # runs CMD with GUESTLIST_TEST_DATABASE_URL set, then stops it
#   scripts/throwaway-postgres.sh             # starts it, prints the URL, stops on Ctrl-C
#
# Uses Debian's server binaries (/usr/lib/postgresql/*/bin); installs the `postgresql` package with
# apt-get only when no initdb is found there (needs root). As root, the server runs as `postgres`.

_tpg_log() { echo "throwaway-postgres: $*" >&2; }

_tpg_find_bindir() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && best="$d"
  done
  # Highest version wins: the glob sorts 13 < 15 < 16 lexically, which holds for two-digit majors.
  [[ -n "$best" ]] && echo "$best"
}

_tpg_install() {
  if [[ $(id -u) -ne 0 ]]; then
    _tpg_log "no initdb under /usr/lib/postgresql/*/bin and not root: install Debian's postgresql package"
    return 1
  fi
  _tpg_log "installing Debian's postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

_tpg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

throwaway_pg_start() {
  local bindir
  bindir=$(_tpg_find_bindir) || true
  if [[ -z "$bindir" ]]; then
    _tpg_install || return 1
    bindir=$(_tpg_find_bindir) || { _tpg_log "postgresql installed but no initdb found"; return 1; }
  fi

  local as=()
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || { _tpg_log "running as root but there is no postgres user"; return 1; }
    as=(runuser -u postgres --)
  fi

  THROWAWAY_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/throwaway-pg.XXXXXX")
  THROWAWAY_PG_SOCKET=$(mktemp -d /tmp/throwaway-pg-sock.XXXXXX)
  THROWAWAY_PG_BINDIR=$bindir
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$THROWAWAY_PG_DIR" "$THROWAWAY_PG_SOCKET"; fi

  "${as[@]}" "$bindir/initdb" -D "$THROWAWAY_PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$THROWAWAY_PG_DIR/initdb.log" 2>&1 \
    || { cat "$THROWAWAY_PG_DIR/initdb.log" >&2; _tpg_log "initdb failed"; return 1; }

  local port attempt
  for attempt in 1 2 3; do
    port=$(_tpg_free_port)
    # Durability is pointless for a throwaway cluster; these make tests faster.
    if "${as[@]}" "$bindir/pg_ctl" -D "$THROWAWAY_PG_DIR/data" -l "$THROWAWAY_PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $THROWAWAY_PG_SOCKET -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      break
    fi
    port=""
    _tpg_log "start on port attempt $attempt failed; retrying"
  done
  if [[ -z "$port" ]]; then
    tail -20 "$THROWAWAY_PG_DIR/server.log" >&2 || true
    return 1
  fi
  THROWAWAY_PG_PORT=$port

  local i
  for i in $(seq 1 100); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
    sleep 0.1
  done
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres || { _tpg_log "not ready"; return 1; }

  export GUESTLIST_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  # psql/createdb for the harnesses, even when Debian's client wrappers aren't on PATH.
  export PATH="$PATH:$bindir"
  _tpg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready at $GUESTLIST_TEST_DATABASE_URL"
}

throwaway_pg_stop() {
  [[ -n "${THROWAWAY_PG_DIR:-}" && -d "${THROWAWAY_PG_DIR:-}" ]] || return 0
  local as=()
  [[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$THROWAWAY_PG_BINDIR/pg_ctl" -D "$THROWAWAY_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$THROWAWAY_PG_DIR" "$THROWAWAY_PG_SOCKET"
  THROWAWAY_PG_DIR=""
  _tpg_log "stopped"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced.
  throwaway_pg_start || return 1
  trap throwaway_pg_stop EXIT
else
  set -euo pipefail
  throwaway_pg_start
  trap throwaway_pg_stop EXIT
  trap 'exit 130' INT TERM
  if [[ $# -gt 0 ]]; then
    "$@"
  else
    echo "GUESTLIST_TEST_DATABASE_URL=$GUESTLIST_TEST_DATABASE_URL"
    echo "Ctrl-C to stop."
    while true; do sleep 3600; done
  fi
fi
