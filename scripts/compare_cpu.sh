#!/usr/bin/env bash
# CPU only: every chain, draft length, adaptive/confidence/prompt lookup, next to openvino.genai.
#
#   scripts/compare_cpu.sh PIPELINE [PIPELINE ...] [ov_spec.bench flags]
#   e.g. scripts/compare_cpu.sh out/qwen --k 2,4,8 --repeats 5
#
# Results in $OUT (default out/bench-cpu): results.md / .csv / .json and plots.
source "$(dirname "$0")/_bench_common.sh"
exec "$PY" -m ov_spec.bench --devices CPU --output "${OUT:-out/bench-cpu}" "$@"
