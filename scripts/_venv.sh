# Shared by scripts/demo and scripts/test: make .venv with Python 3.11+ and install
# the project into it (again only when pyproject.toml changed).
# Usage: source scripts/_venv.sh; ensure_venv "EXTRAS"   (EXTRAS: "", "[demo]" or "[dev]")
ensure_venv() {
  local extras="$1"
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    for candidate in python3 python3.13 python3.12 python3.11; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        py="$candidate"; break
      fi
    done
  fi
  if [ -z "$py" ]; then
    echo "error: datatrail needs Python 3.11 or newer; install it or set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $("$py" --version)" >&2
    "$py" -m venv .venv
  fi
  local stamp=".venv/.datatrail-installed${extras}"
  local want
  want="$(cat pyproject.toml | "$py" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
  # An install with the dev extras (which include the demo's) also serves the plain and the
  # demo one (scripts/demo after scripts/test).
  if { [ -z "$extras" ] || [ "$extras" = "[demo]" ]; } && [ -f ".venv/.datatrail-installed[dev]" ] && [ "$(cat ".venv/.datatrail-installed[dev]")" = "$want" ]; then
    return 0
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing datatrail${extras} into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
    echo "$want" > "$stamp"
  fi
}
