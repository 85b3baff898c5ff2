#!/usr/bin/env bash
# CPU + NPU: every placement over CPU and NPU. NPU models compile with static shapes (NPUW LLM),
# which takes minutes per model the first time; openvino.genai's NPU speculative pipeline is
# greedy-only, so this compares greedy decoding.
#
#   scripts/compare_cpu_npu.sh PIPELINE [PIPELINE ...] [ov_spec.bench flags]
#
# Results in $OUT (default out/bench-cpu-npu).
source "$(dirname "$0")/_bench_common.sh"
exec "$PY" -m ov_spec.bench --devices CPU,NPU --sampling greedy --output "${OUT:-out/bench-cpu-npu}" "$@"
