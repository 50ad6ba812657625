# A throwaway PostgreSQL cluster for scripts (sourced, not run): Debian's `postgresql` package
# (installed when absent), `initdb` in a temp dir, the server on a free 127.0.0.1 port with its
# socket in that dir, trust authentication, run as `postgres` when the script runs as root (the
# server refuses root). `pg_cluster_start` sets PG_BIN, PG_WORK, PG_PORT and PG_AS (the command
# prefix for the cluster's owner); `pg_cluster_stop` stops it and removes the dir (call it from
# an EXIT trap). `pg_cluster_mlflow_db NAME PYTHON` creates database NAME with MLflow's schema,
# created by mlflow itself, and prints its postgresql:// URI.
#
# Extra server settings: PG_CLUSTER_OPTIONS (e.g. "-c shared_buffers=512MB").

pg_cluster_log() { echo "pg-cluster: $*" >&2; }

pg_cluster_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -n "$found" && -x "$found/initdb" ]]; then
    echo "$found"
  elif command -v initdb >/dev/null; then
    dirname "$(command -v initdb)"
  fi
}

pg_cluster_start() {
  PG_BIN="$(pg_cluster_bin)"
  if [[ -z "$PG_BIN" ]]; then
    pg_cluster_log "installing Debian's postgresql"
    local sudo_cmd=()
    [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(pg_cluster_bin)"
  fi
  [[ -n "$PG_BIN" ]] || { pg_cluster_log "no initdb found after installing postgresql"; return 1; }
  PG_AS=()
  [[ "$(id -u)" -eq 0 ]] && PG_AS=(runuser -u postgres --)
  PG_WORK="$(mktemp -d /tmp/podium-pg.XXXXXX)"
  chmod 755 "$PG_WORK"
  mkdir -p "$PG_WORK/data"
  [[ "$(id -u)" -eq 0 ]] && chown postgres "$PG_WORK" "$PG_WORK/data"
  PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_WORK/data" -U postgres --auth=trust -E UTF8 \
    --locale=C >/dev/null
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_WORK/data" -l "$PG_WORK/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_WORK -c max_connections=200 ${PG_CLUSTER_OPTIONS:-}" \
    start >/dev/null
  pg_cluster_log "cluster in $PG_WORK on 127.0.0.1:$PG_PORT"
}

pg_cluster_stop() {
  [[ -n "${PG_WORK:-}" ]] || return 0
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_WORK/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_WORK"
  PG_WORK=""
}

pg_cluster_psql() { # database, psql args…
  local db="$1"
  shift
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_WORK" -p "$PG_PORT" -U postgres -d "$db" "$@"
}

pg_cluster_mlflow_db() { # name, python
  local name="$1" python="$2"
  pg_cluster_psql postgres -c "CREATE DATABASE \"$name\"" >/dev/null
  local uri="postgresql://postgres@127.0.0.1:$PG_PORT/$name"
  (cd "$PG_WORK" && "$python" -c '
import logging, sys
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
MlflowClient(sys.argv[1]).search_experiments()' "$uri")
  echo "$uri"
}
