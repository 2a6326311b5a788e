#!/usr/bin/env bash
# The test command: bash scripts/test.sh [pytest arguments...]
#
# Works on a fresh Debian machine with only python3: creates .venv, installs
# requirements-dev.txt (again only when it changed), installs Debian's Chromium and
# PostgreSQL 15 server binaries when missing and we are root, then runs pytest.
# Exits non-zero when a test fails, and also when no test was collected.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV="$REPO_ROOT/.venv"

say() { printf '==> %s\n' "$*"; }

# --- Python environment ------------------------------------------------------------
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

# install_requirements FILE [OTHER FILES IT INCLUDES...]: pip install -r FILE, skipped
# when a stamp in .venv shows the files (and the venv's Python) unchanged since.
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

# --- Tests ---------------------------------------------------------------------------
say "Running: pytest $*"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if ((status == 5)); then
    echo "ERROR: pytest collected no tests; treating that as a failure." >&2
    exit 1
fi
exit "$status"
