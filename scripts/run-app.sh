#!/usr/bin/env bash
# The run command: bash scripts/run-app.sh [streamlit arguments...]
#
# Creates/updates .venv from requirements.txt, seeds the database with demo orders
# when it has none, then serves the Streamlit app (headless).
# Honours ORDERS_DATABASE_URL and ORDERS_DATA_DIR (see the README).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
