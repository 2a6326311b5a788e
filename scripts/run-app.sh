#!/usr/bin/env bash
# The run command: bash scripts/run-app.sh [streamlit arguments...]
#
# Creates/updates .venv from requirements.txt, seeds the database with demo orders
# when it has none, then serves the Streamlit app (headless).
# Honours ORDERS_DATABASE_URL and ORDERS_DATA_DIR (see the README).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV="$REPO_ROOT/.venv"

say() { printf '==> %s\n' "$*"; }

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
install_requirements requirements.txt

say "Database: ${ORDERS_DATABASE_URL:-sqlite in ${ORDERS_DATA_DIR:-data}/orders.db}"
existing=$("$VENV/bin/python" -m orders_core orders --limit 1 --json 2>/dev/null) || existing=""
if [[ -z "$existing" || "$(tr -d '[:space:]' <<<"$existing")" == "[]" ]]; then
    say "No orders yet: seeding 5000 demo orders"
    "$VENV/bin/python" -m orders_core seed --orders 5000
fi

say "Starting Streamlit"
exec "$VENV/bin/streamlit" run app.py --server.headless true \
    --browser.gatherUsageStats false "$@"
