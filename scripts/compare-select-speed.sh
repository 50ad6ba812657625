#!/usr/bin/env bash
# Speed comparison of `podium select` with the Python MlflowClient doing the same selection
# (scripts/select_python.py) on one generated MLflow SQLite store of 100,000 trial runs.
#
# Usage: scripts/compare-select-speed.sh [WORK_DIR]   (default: target/select-bench)
# Needs: the test venv (scripts/python-env.sh), a release build of podium, /usr/bin/time.
# Prints wall time and peak memory of both, and fails when the champions differ.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$repo/target/select-bench}"
python="$(bash "$repo/scripts/python-env.sh")"
mkdir -p "$work"
db="$work/mlflow.db"

if [ ! -f "$db" ]; then
    "$python" "$repo/scripts/gen-selection-store.py" "$db"
fi
cargo build --release -p podium-cli --manifest-path "$repo/Cargo.toml"
podium="${CARGO_TARGET_DIR:-$repo/target}/release/podium"

measure() { # name, command…
    local name="$1"
    shift
    # Exit status 1 = some backbone without a champion, which the store may legitimately have.
    /usr/bin/time -v "$@" >"$work/$name.json" 2>"$work/$name.time" || [ $? -eq 1 ]
    local wall peak
    wall="$(grep 'Elapsed (wall clock)' "$work/$name.time" | awk '{print $NF}')"
    peak="$(grep 'Maximum resident set size' "$work/$name.time" | awk '{print $NF}')"
    echo "$name: wall $wall, peak RSS $((peak / 1024)) MiB"
}

# Warm the page cache so neither side pays for the first read of the file.
cat "$db" >/dev/null
measure podium "$podium" select --tracking-uri "sqlite:///$db" --config-dir "$repo/config" \
    --root "$work" --format json
measure python "$python" "$repo/scripts/select_python.py" "sqlite:///$db" \
    --config-dir "$repo/config"

# Same champions: trial run, refit run, study group and stable score per backbone.
summary='{champions: (.champions | map_values({trial_run_id: (.champion.trial_run_id // .trial_run_id),
    run_id: (.champion.run_id // .run_id), study_key_hash: (.champion.study_key_hash // .study_key_hash),
    stable_score: (.champion.stable_score // .stable_score)})), errors: (.errors | keys)}'
if diff <(jq -S "$summary" "$work/podium.json") <(jq -S "$summary" "$work/python.json"); then
    echo "same champions:"
    jq -c "$summary" "$work/podium.json"
else
    echo "champions differ" >&2
    exit 1
fi
