#!/usr/bin/env bash
# Eight benchmark workers against a PostgreSQL-backed `mlflow server` (not part of CI).
#
# Installs Debian's postgresql when absent, starts a throwaway cluster on 127.0.0.1 in a temp
# dir (as the `postgres` user when run as root), puts mlflow + psycopg2-binary in a venv of its
# own (target/pg-venv; the shared test venv is not touched), starts
# `mlflow server --backend-store-uri postgresql://…` and runs the ignored test binary
# `pg_workers` of podium-bench: WORKERS workers × CHAMPIONS champions, then checks exactly one
# FINISHED run per key, no RUNNING run and no live claim. Everything is stopped and removed on
# exit. PODIUM_PY_VENV (the Python of the final claim listing) is honoured as by the tests;
# unset, scripts/python-env.sh creates target/py-venv.
#
# Usage: scripts/pg-mlflow-server.sh            # 8 workers × 12 champions
#        WORKERS=8 CHAMPIONS=24 scripts/pg-mlflow-server.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers="${WORKERS:-8}"
champions="${CHAMPIONS:-12}"

log() { echo "pg-mlflow: $*" >&2; }

pg_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -n "$found" && -x "$found/initdb" ]]; then
    echo "$found"
  elif command -v initdb >/dev/null; then
    dirname "$(command -v initdb)"
  fi
}

bin="$(pg_bin)"
if [[ -z "$bin" ]]; then
  log "installing Debian's postgresql"
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq postgresql >/dev/null
  bin="$(pg_bin)"
fi
[[ -n "$bin" ]] || { log "no initdb found after installing postgresql"; exit 1; }

# The server refuses to run as root: run the cluster as `postgres` then.
as_pg=()
if [[ "$(id -u)" -eq 0 ]]; then
  as_pg=(runuser -u postgres --)
fi

work="$(mktemp -d /tmp/podium-pg.XXXXXX)"
chmod 755 "$work"
data="$work/data"
mkdir -p "$data" "$work/artifacts"
[[ "$(id -u)" -eq 0 ]] && chown postgres "$data" "$work"
pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mlflow_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mlflow_pid=""

cleanup() {
  if [[ -n "$mlflow_pid" ]]; then
    # The server leads its own process group (setsid): stop it whole.
    kill -TERM -- "-$mlflow_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 -- "-$mlflow_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$mlflow_pid" 2>/dev/null || true
  fi
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log "cluster in $data on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$work/postgres.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$work -c max_connections=200" \
  start >/dev/null
"${as_pg[@]}" "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres mlflow

venv="$root/target/pg-venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import mlflow, psycopg2' 2>/dev/null; then
  log "creating $venv (mlflow from scripts/requirements-test.txt + psycopg2-binary)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$root/scripts/requirements-test.txt" psycopg2-binary
fi

url="http://127.0.0.1:$mlflow_port"
log "mlflow server on $url (backend postgresql://127.0.0.1:$pg_port/mlflow)"
setsid "$venv/bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" \
  --backend-store-uri "postgresql+psycopg2://postgres@127.0.0.1:$pg_port/mlflow" \
  --artifacts-destination "$work/artifacts" --serve-artifacts --workers 4 \
  >"$work/mlflow.log" 2>&1 &
mlflow_pid=$!
for _ in $(seq 600); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 "$mlflow_pid" 2>/dev/null || { cat "$work/mlflow.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$url/health" >/dev/null || { log "server did not come up"; cat "$work/mlflow.log" >&2; exit 1; }

log "$workers workers × $champions champions"
cd "$root"
PODIUM_PG_TRACKING_URI="$url" PODIUM_PG_WORKERS="$workers" PODIUM_PG_CHAMPIONS="$champions" \
  cargo test -q -p podium-bench --test pg_workers -- --ignored --nocapture
