#!/usr/bin/env bash
# The benchmark command: bash scripts/bench.sh [python -m bench.run arguments...]
#
# Works on a fresh clone with only python3: creates .venv and installs
# requirements.txt (again only when it changed), exactly as scripts/test.sh does, then
# runs the benchmarks. The default is the full run: a database of 1,000,000 orders
# (built once through orders_core.demo.seed, cached in bench/work/), every
# measurement three times, results in bench/results/latest.json and a markdown table.
#   bash scripts/bench.sh --orders 20000 --repeat 1          # a quick look
#   bash scripts/bench.sh --only queries export              # some measurements
#   ORDERS_DATABASE_URL=postgresql+psycopg://u:p@host/db bash scripts/bench.sh   # + PostgreSQL
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV="$REPO_ROOT/.venv"

say() { printf '==> %s\n' "$*"; }

# The same two steps as scripts/test.sh (kept in step with it by hand).
ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        return
    fi
    [[ -e "$VENV" ]] && { say "Recreating broken .venv"; rm -rf "$VENV"; }
    local py
    py=$(command -v python3.11 || command -v python3) || { echo "python3 not found" >&2; exit 1; }
    say "Creating .venv with $("$py" --version 2>&1)"
    "$py" -m venv "$VENV"
}

install_requirements() {
    local req=$1 stamp="$VENV/.installed-$(basename "$1").sha256" want
    want=$( { cat "$@"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        say "Python packages up to date ($req)"
        return
    fi
    say "Installing Python packages from $req"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
}

ensure_venv
if [[ -f "$VENV/.installed-requirements-dev.txt.sha256" ]]; then
    # The test environment (requirements-dev.txt includes requirements.txt) is enough.
    install_requirements requirements-dev.txt requirements.txt
else
    install_requirements requirements.txt
fi

say "Running: python -m bench.run $*"
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$VENV/bin/python" -m bench.run "$@"
