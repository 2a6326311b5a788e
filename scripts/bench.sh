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

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
if [[ -f "$VENV/.installed-requirements-dev.txt.sha256" ]]; then
    # The test environment (requirements-dev.txt includes requirements.txt) is enough.
    install_requirements requirements-dev.txt requirements.txt
else
    install_requirements requirements.txt
fi

say "Running: python -m bench.run $*"
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$VENV/bin/python" -m bench.run "$@"
