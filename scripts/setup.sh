# Sourced by scripts/run and scripts/test: make .venv (Python >= 3.11) and install
# dnnlab with its test tools into it, again only when pyproject.toml changes.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "dnnlab needs Python >= 3.11; set PYTHON=/path/to/python3.11 and run again" >&2
    exit 1
  fi
  "$python" -m venv "$venv"
fi
stamp="$venv/.dnnlab-installed"
want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $venv (once) ..." >&2
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$root[test]"
  echo "$want" > "$stamp"
fi
