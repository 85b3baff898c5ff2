# Shared by the compare_*.sh scripts (sourced, not run): pick the Python, print usage without arguments.
# Paths on the command line are taken relative to the current folder.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
repo="$(dirname "$(dirname "$script")")"
PY=${PY:-$repo/.venv/bin/python}
[[ -x "$PY" ]] || PY=python3
if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,/^source /p' "$script" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi
