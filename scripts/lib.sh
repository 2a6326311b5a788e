# Shared by scripts/test.sh, run-app.sh and bench.sh (sourced, not run): the project's
# virtualenv. Sourcing it moves to the repository root and sets REPO_ROOT and VENV.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$(pwd)
VENV="$REPO_ROOT/.venv"

say() { printf '==> %s\n' "$*"; }

# ensure_venv: create .venv with python3.11 or python3 unless a working one is there.
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
