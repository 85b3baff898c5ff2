#!/usr/bin/env bash
# CPU + GPU + NPU: every placement of every chain over all three devices (3^levels per chain:
# 9 for a pair, 27 for a 3-level cascade), greedy (see compare_cpu_npu.sh).
# For a shorter run pass explicit placements instead, e.g.
#   --placement target=GPU,draft1=NPU target=GPU,draft1=CPU target=CPU,draft1=NPU
#
#   scripts/compare_all.sh PIPELINE [PIPELINE ...] [ov_spec.bench flags]
#
# Results in $OUT (default out/bench-all).
source "$(dirname "$0")/_bench_common.sh"
exec "$PY" -m ov_spec.bench --devices CPU,GPU,NPU --sampling greedy --output "${OUT:-out/bench-all}" "$@"
