#!/usr/bin/env bash
# CPU + GPU: every model of every chain on every device (target GPU + draft CPU, both GPU, ...),
# next to openvino.genai with the same placement. Needs an Intel GPU with its OpenVINO driver.
#
#   scripts/compare_cpu_gpu.sh PIPELINE [PIPELINE ...] [ov_spec.bench flags]
#   e.g. scripts/compare_cpu_gpu.sh out/qwen --k 4,8 --property GPU_ENABLE_SDPA_OPTIMIZATION=YES
#
# Results in $OUT (default out/bench-cpu-gpu).
source "$(dirname "$0")/_bench_common.sh"
exec "$PY" -m ov_spec.bench --devices CPU,GPU --output "${OUT:-out/bench-cpu-gpu}" "$@"
