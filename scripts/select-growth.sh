#!/usr/bin/env bash
# How `podium select` grows with the store: time and peak memory at several sizes, on the
# SQLite file and on the same runs in PostgreSQL (one command; the stores are generated once
# and kept in the work dir).
#
# For each size N (trials; the store holds N + 4 % runs: a sweep and a refit per group of 50),
# scripts/gen-selection-store.py writes WORK/sN.db (pipeline tags, as for
# scripts/compare-select-speed.sh), scripts/sqlite-to-postgres.py copies it into database sN of
# a throwaway PostgreSQL cluster (scripts/pg-cluster.sh), and the release `podium select` runs
# ROUNDS times on each, alternating, after one untimed warm-up each. Every line carries wall time,
# CPU time, peak RSS of the podium process (the database server's own memory is not in it) and
# the load average; the champions must agree between the two stores at every size.
#
# Usage: scripts/select-growth.sh [--sizes 10000,100000,1000000] [--rounds 3]
#                                 [--config-dir DIR] [WORK_DIR]   (default target/select-growth)
# Needs: the test venv (scripts/python-env.sh), cargo, /usr/bin/time, jq, Debian's postgresql
# (installed when absent). Disk: about 5 GB per million trials for each of the two stores.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
sizes="10000,100000,1000000"
rounds=3
config="$repo/config"
work="$repo/target/select-growth"
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) sizes="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --config-dir) config="$2"; shift 2 ;;
    *) work="$1"; shift ;;
    esac
done
python="$(bash "$repo/scripts/python-env.sh")"
mkdir -p "$work"
cargo build --release -p podium-cli --manifest-path "$repo/Cargo.toml"
podium="${CARGO_TARGET_DIR:-$repo/target}/release/podium"

# shellcheck source=scripts/pg-cluster.sh
source "$repo/scripts/pg-cluster.sh"
PG_CLUSTER_OPTIONS="${PG_CLUSTER_OPTIONS:--c shared_buffers=1GB}"
trap 'pg_cluster_stop' EXIT
pg_cluster_start

load() { cut -d' ' -f1-3 /proc/loadavg; }

select_once() { # label, uri, size
    local label="$1" uri="$2" size="$3"
    /usr/bin/time -f "%e %U %S %M" -o "$work/$label.time" "$podium" select \
        --tracking-uri "$uri" --config-dir "$config" --root "$work" --format json \
        >"$work/$label.json" 2>"$work/$label.err" || [ $? -eq 1 ]
    read -r wall user sys peak <"$work/$label.time"
    printf '%s %s runs: wall %s s, cpu %.2f s, peak RSS %d MiB, load %s\n' "$label" \
        "$size" "$wall" "$(echo "$user + $sys" | bc)" "$((peak / 1024))" "$(load)"
}

summary='{champions: (.champions | map_values({trial: .champion.trial_run_id,
    refit: .champion.refit_run_id, study: .champion.study_key_hash})), errors: (.errors | keys)}'

IFS=',' read -r -a all_sizes <<<"$sizes"
for size in "${all_sizes[@]}"; do
    db="$work/s$size.db"
    if [ ! -f "$db" ]; then
        "$python" "$repo/scripts/gen-selection-store.py" "$db" --config-dir "$config" \
            --trials "$size"
    fi
    runs="$("$python" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM runs").fetchone()[0])' "$db")"
    cat "$db" >/dev/null
    uri="$(pg_cluster_mlflow_db "s$size" "$python")"
    "$python" "$repo/scripts/sqlite-to-postgres.py" "$db" "$uri"
    echo "== $size trials ($runs runs): SQLite $(du -m "$db" | cut -f1) MiB, PostgreSQL" \
        "$(pg_cluster_psql "s$size" -Atc "SELECT pg_size_pretty(pg_database_size('s$size'))")"
    # Warm-up, untimed: the file's pages and the server's buffers.
    select_once warm-sqlite "sqlite:///$db" "$runs" >/dev/null
    select_once warm-postgres "$uri" "$runs" >/dev/null
    for _ in $(seq 1 "$rounds"); do
        select_once sqlite "sqlite:///$db" "$runs"
        select_once postgres "$uri" "$runs"
    done
    if ! diff <(jq -S "$summary" "$work/sqlite.json") <(jq -S "$summary" "$work/postgres.json") \
        >/dev/null; then
        echo "champions differ at $size between SQLite and PostgreSQL" >&2
        exit 1
    fi
    echo "same champions on both stores: $(jq -c "$summary" "$work/sqlite.json")"
    pg_cluster_psql postgres -c "DROP DATABASE \"s$size\"" >/dev/null
done
