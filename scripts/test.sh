#!/usr/bin/env bash
# The test command: bash scripts/test.sh [pytest arguments...]
#
# Works on a fresh Debian machine with only python3: creates .venv, installs
# requirements-dev.txt (again only when it changed), installs Debian's Chromium and
# PostgreSQL 15 server binaries when missing and we are root, runs ruff and mypy, then
# pytest.
# Exits non-zero when a test fails, and also when no test was collected.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv
install_requirements requirements-dev.txt requirements.txt

# --- System packages: Chromium for browser tests, PostgreSQL 15 server ----------------
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium fonts-liberation)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=(postgresql)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        say "Installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    else
        say "WARNING: missing ${missing[*]} (not root, so not installing):" \
            "run: sudo apt-get install ${missing[*]}"
    fi
fi

# --- Lint and types (pyproject.toml): a finding fails the run -------------------------
say "Running: ruff check and ruff format --check"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "Running: mypy"
"$VENV/bin/mypy"

# --- Tests ---------------------------------------------------------------------------
# Two worker processes (pytest-xdist) by default, CI's two cores: each module stays on one
# worker, all browser tests on one (tests/conftest.py). ORDERS_TEST_WORKERS=0 runs in this
# process; arguments that choose workers themselves (-n, -p no:xdist) are left alone.
parallel=(-n "${ORDERS_TEST_WORKERS:-2}" --dist loadfile)
for arg in "$@"; do
    case $arg in -n | -n* | --numprocesses* | no:xdist | --dist*) parallel=() ;; esac
done
[[ ${ORDERS_TEST_WORKERS:-2} == 0 ]] && parallel=()
say "Running: pytest ${parallel[*]} $*"
status=0
"$VENV/bin/python" -m pytest "${parallel[@]}" "$@" || status=$?
if ((status == 5)); then
    echo "ERROR: pytest collected no tests; treating that as a failure." >&2
    exit 1
fi
exit "$status"
