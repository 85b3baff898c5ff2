#!/usr/bin/env bash
# Install the CPU build of torch pinned in constraints.txt, never a CUDA build.
# Sources, in pip's usual order: PyTorch's CPU index ($TORCH_INDEX) and any local wheel folder or
# index that pip is configured to search. The pin carries the `+cpu` label, which PyPI does not have,
# so when neither source is reachable pip finds nothing and we stop with a clear message.
set -uo pipefail
PIP=${PIP:-pip}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
here="$(cd "$(dirname "$0")/.." && pwd)"
pin=$(grep -E '^torch==' "$here/constraints.txt" | head -n1)
if [[ -z "$pin" ]]; then
    echo "error: constraints.txt has no 'torch==...' pin" >&2
    exit 2
fi
# --retries 1 / --timeout 15: an unreachable index fails fast instead of stalling the install.
if ! "$PIP" install -q --retries 1 --timeout 15 -c "$here/constraints.txt" \
        --extra-index-url "$TORCH_INDEX" "$pin"; then
    echo "error: could not install the CPU build of torch ($pin) from $TORCH_INDEX or a local wheel" \
         "folder; install it by hand (pip install '$pin' --index-url $TORCH_INDEX) and re-run make." \
         "Refusing to fall back to PyPI's CUDA build." >&2
    exit 2
fi
