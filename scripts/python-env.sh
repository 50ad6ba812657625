#!/usr/bin/env bash
# Creates (once) the Python virtual environment the tests use as the real peer:
# mlflow (server + client), optuna and pyyaml, pinned, under target/py-venv.
# Prints the path of the venv's python on stdout. Safe to run concurrently: a lock
# serialises installers and a stamp file marks a finished install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PODIUM_PY_VENV:-$root/target/py-venv}"
requirements="$root/scripts/requirements-test.txt"
stamp="$venv/.podium-stamp"
want="$(sha256sum "$requirements" | cut -c1-16)"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv/bin/python"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
