#!/usr/bin/env bash
# Speed comparison of `podium select` with the Python MlflowClient doing the same selection
# (scripts/select_python.py) on one generated MLflow store of 100,000 trial runs tagged as the
# Python pipeline tags them (scripts/gen-selection-store.py, SQL inserts on MLflow's schema),
# read from the SQLite file and, with --rest, through a multi-worker `mlflow server` on that
# file, next to the REST page-transfer floor (scripts/rest_page_floor.py: the same candidate
# pages moved, unparsed); with --postgres, from the same runs copied into a PostgreSQL database
# (a throwaway cluster, scripts/pg-cluster.sh; the schema created by mlflow, the runs copied by
# scripts/sqlite-to-postgres.py), next to the database's own floor (scripts/pg_select_floor.py:
# the same candidate rows handed to psql and discarded). The project is the config folder's
# (config/experiment/<name>.yaml and the files it names), read by all the programs alike.
#
# Usage: scripts/compare-select-speed.sh [--rounds N] [--rest] [--postgres] [--workers W]
#                                        [--trials N] [--config-dir DIR] [WORK_DIR]
#        (defaults: 3 rounds, SQLite only, 4 workers, 100000 trials, config, target/select-bench)
# Needs: the test venv (scripts/python-env.sh), cargo, /usr/bin/time, jq; --postgres: Debian's
# postgresql (installed when absent).
# Rounds alternate podium and Python so that load from other work hits both alike; each line
# carries the load average. Fails when the champions differ.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
rounds=3
rest=0
postgres=0
workers=4
trials=100000
config="$repo/config"
work="$repo/target/select-bench"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --rest) rest=1; shift ;;
    --postgres) postgres=1; shift ;;
    --workers) workers="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --config-dir) config="$2"; shift 2 ;;
    *) work="$1"; shift ;;
    esac
done
python="$(bash "$repo/scripts/python-env.sh")"
mkdir -p "$work"
db="$work/mlflow.db"

if [ ! -f "$db" ]; then
    "$python" "$repo/scripts/gen-selection-store.py" "$db" --config-dir "$config" \
        --trials "$trials"
fi
cargo build --release -p podium-cli --manifest-path "$repo/Cargo.toml"
podium="${CARGO_TARGET_DIR:-$repo/target}/release/podium"

server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    if declare -F pg_cluster_stop >/dev/null; then pg_cluster_stop; fi
    return 0
}
trap cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }

measure() { # name, command…
    local name="$1"
    shift
    # Exit status 1 = some backbone without a champion, which the store may legitimately have.
    /usr/bin/time -v "$@" >"$work/$name.json" 2>"$work/$name.time" || [ $? -eq 1 ]
    local wall peak user sys
    wall="$(grep 'Elapsed (wall clock)' "$work/$name.time" | awk '{print $NF}')"
    user="$(grep 'User time' "$work/$name.time" | awk '{print $NF}')"
    sys="$(grep 'System time' "$work/$name.time" | awk '{print $NF}')"
    peak="$(grep 'Maximum resident set size' "$work/$name.time" | awk '{print $NF}')"
    echo "$name: wall $wall, user $user s, sys $sys s, peak RSS $((peak / 1024)) MiB, load $(load)"
}

# Same champions: trial run, refit run, study group and stable score per backbone.
summary='{champions: (.champions | map_values({trial_run_id: (.champion.trial_run_id // .trial_run_id),
    run_id: (.champion.run_id // .run_id), study_key_hash: (.champion.study_key_hash // .study_key_hash),
    stable_score: (.champion.stable_score // .stable_score)})), errors: (.errors | keys)}'
same_champions() { # podium json, python json
    if diff <(jq -S "$summary" "$1") <(jq -S "$summary" "$2") >/dev/null; then
        echo "same champions: $(jq -c "$summary" "$1")"
    else
        echo "champions differ: $1 vs $2" >&2
        exit 1
    fi
}

compare() { # label, tracking uri, [floor: rest|postgres]
    local label="$1" uri="$2" floor="${3:-}"
    for round in $(seq 1 "$rounds"); do
        measure "podium-$label" "$podium" select --tracking-uri "$uri" \
            --config-dir "$config" --root "$work" --format json
        measure "python-$label" "$python" "$repo/scripts/select_python.py" "$uri" \
            --config-dir "$config"
        case "$floor" in
        rest) echo "floor-$label: $("$python" "$repo/scripts/rest_page_floor.py" "$uri" \
                --config-dir "$config"), load $(load)" ;;
        postgres) echo "floor-$label: $("$python" "$repo/scripts/pg_select_floor.py" "$uri" \
                --config-dir "$config"), load $(load)" ;;
        esac
        same_champions "$work/podium-$label.json" "$work/python-$label.json"
    done
    echo "podium --profile ($label):"
    "$podium" select --tracking-uri "$uri" --config-dir "$config" --root "$work" \
        --format json --profile 2>&1 >/dev/null | grep -v '^\s*$' || true
}

# Warm the page cache so neither side pays for the first read of the file.
cat "$db" >/dev/null
compare sqlite "sqlite:///$db"

if [ "$rest" -eq 1 ]; then
    port=$((20000 + RANDOM % 20000))
    "$(dirname "$python")/mlflow" server --backend-store-uri "sqlite:///$db" \
        --host 127.0.0.1 --port "$port" --workers "$workers" >"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 1
    done
    compare rest "http://127.0.0.1:$port" rest
fi

if [ "$postgres" -eq 1 ]; then
    # shellcheck source=scripts/pg-cluster.sh
    source "$repo/scripts/pg-cluster.sh"
    # A database server's memory for its data (the default 128 MB would make every round read
    # the tables from the OS page cache).
    PG_CLUSTER_OPTIONS="${PG_CLUSTER_OPTIONS:--c shared_buffers=1GB}"
    pg_cluster_start
    pg_uri="$(pg_cluster_mlflow_db selection "$python")"
    "$python" "$repo/scripts/sqlite-to-postgres.py" "$db" "$pg_uri"
    echo "postgresql: $("$PG_BIN/postgres" --version), $(pg_cluster_psql selection -Atc \
        "SELECT pg_size_pretty(pg_database_size('selection'))")"
    # Warm the server's buffers so no side pays for the first read of the tables.
    "$podium" select --tracking-uri "$pg_uri" --config-dir "$config" --root "$work" \
        --format json >/dev/null 2>&1 || true
    compare postgres "$pg_uri" postgres
fi
