#!/usr/bin/env bash
# What `podium report` costs beyond the selection it starts with: `podium select` and
# `podium report` alternately on the selection benchmark's store (100,000 pipeline-tagged trial
# runs, scripts/gen-selection-store.py, the store scripts/compare-select-speed.sh uses), the
# wall time of each round, the medians, the difference and the page's size.
#
# Usage: scripts/compare-report-speed.sh [--rounds N] [--trials N] [--config-dir DIR] [WORK_DIR]
#        (defaults: 5 rounds, 100000 trials, config, target/select-bench)
# Needs: the test venv (scripts/python-env.sh), cargo, /usr/bin/time.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
rounds=5
trials=100000
config="$repo/config"
work="$repo/target/select-bench"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
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
common=(-q --config-dir "$config" --root "$work" --tracking-uri "sqlite:///$db" --format json)

seconds() { # command… → wall seconds (exit 1 = a backbone without a champion or ranking: fine)
    /usr/bin/time -f %e -o "$work/wall" "$@" >/dev/null || [ $? -eq 1 ]
    tail -n 1 "$work/wall"
}

selects=()
reports=()
for round in $(seq "$rounds"); do
    s="$(seconds "$podium" "${common[@]}" select)"
    r="$(seconds "$podium" "${common[@]}" report --out "$work/report.html")"
    selects+=("$s")
    reports+=("$r")
    printf 'round %s: select %s s, report %s s (%+.2f s), load %s\n' "$round" "$s" "$r" \
        "$(echo "$r - $s" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ms="$(median "${selects[@]}")"
mr="$(median "${reports[@]}")"
printf 'median: select %s s, report %s s, beyond the selection %+.2f s\n' "$ms" "$mr" \
    "$(echo "$mr - $ms" | bc -l)"
echo "page: $(stat -c %s "$work/report.html") bytes ($work/report.html)"
