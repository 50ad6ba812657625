#!/usr/bin/env bash
# Eight benchmark workers against a PostgreSQL-backed `mlflow server` (not part of CI; the CI
# tests run smaller fleets on PostgreSQL: crates/podium-cli/tests/postgres.rs).
#
# Starts a throwaway cluster (scripts/pg-cluster.sh: Debian's postgresql, installed when absent),
# has mlflow create its schema there (the test venv, scripts/python-env.sh, holds mlflow and the
# PostgreSQL drivers), starts `mlflow server --backend-store-uri postgresql+psycopg2://…` and runs
# the ignored test binary `pg_workers` of podium-bench: WORKERS workers × CHAMPIONS champions,
# then checks exactly one FINISHED run per key, no RUNNING run and no live claim. Everything is
# stopped and removed on exit. PODIUM_PY_VENV is honoured as by the tests.
#
# Usage: scripts/pg-mlflow-server.sh            # 8 workers × 12 champions
#        WORKERS=8 CHAMPIONS=24 scripts/pg-mlflow-server.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workers="${WORKERS:-8}"
champions="${CHAMPIONS:-12}"
# shellcheck source=scripts/pg-cluster.sh
source "$root/scripts/pg-cluster.sh"

log() { echo "pg-mlflow: $*" >&2; }

python="$(bash "$root/scripts/python-env.sh")"
mlflow_pid=""
cleanup() {
  if [[ -n "$mlflow_pid" ]]; then
    # The server leads its own process group (setsid): stop it whole.
    kill -TERM -- "-$mlflow_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 -- "-$mlflow_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$mlflow_pid" 2>/dev/null || true
  fi
  pg_cluster_stop
}
trap cleanup EXIT

pg_cluster_start
backend="$(pg_cluster_mlflow_db mlflow "$python")"
mkdir -p "$PG_WORK/artifacts"
mlflow_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$mlflow_port"
log "mlflow server on $url (backend $backend)"
setsid "$(dirname "$python")/mlflow" server --host 127.0.0.1 --port "$mlflow_port" \
  --backend-store-uri "${backend/postgresql:/postgresql+psycopg2:}" \
  --artifacts-destination "$PG_WORK/artifacts" --serve-artifacts --workers 4 \
  >"$PG_WORK/mlflow.log" 2>&1 &
mlflow_pid=$!
for _ in $(seq 600); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 "$mlflow_pid" 2>/dev/null || { cat "$PG_WORK/mlflow.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$url/health" >/dev/null || { log "server did not come up"; cat "$PG_WORK/mlflow.log" >&2; exit 1; }

log "$workers workers × $champions champions"
cd "$root"
PODIUM_PG_TRACKING_URI="$url" PODIUM_PG_WORKERS="$workers" PODIUM_PG_CHAMPIONS="$champions" \
  cargo test -q -p podium-bench --test pg_workers -- --ignored --nocapture
