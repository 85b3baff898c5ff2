#!/usr/bin/env bash
# The README's benchmark, offline, end to end: build the local pipelines, then the comparison runs.
#
#   scripts/bench_local.sh            # the README run: greedy sweep, MTAD, sampling (~25 min on 2 quiet cores)
#   QUICK=1 scripts/bench_local.sh    # first look (a few minutes)
#
# Pipelines (built once into $OUT/pipelines, reused afterwards; FORCE=1 rebuilds):
#   default      tiny:default trained pair, int8_asym target + int4_sym draft (export/recipes/local-tiny.toml)
#   large-mxfp4  ~100M tiny:large target fp16, its own weights in MXFP4 as self-draft, tiny draft int8
#                (3-level ML-SpecQD cascade, export/recipes/local-large-cascade.toml)
#   large-int4   the same with an INT4 (sym, group 64) self-draft
# The local pairs themselves are built by ov_spec.tiny on first use (~10 min once, then cached).
# Results: $OUT/results/{results.md,results.csv,results.json,*.png}, $OUT/results-mtad/, $OUT/results-sampling/.
# Extra flags go to ov_spec.bench (e.g. --repeats 5).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/bench-local}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

source scripts/_export_once.sh

export_once default --recipe export/recipes/local-tiny.toml
export_once large-mxfp4 --recipe export/recipes/local-large-cascade.toml
export_once large-int4 --recipe export/recipes/local-large-cascade.toml --self-draft int4_sym

PIPES=("$OUT/pipelines/default" "$OUT/pipelines/large-mxfp4" "$OUT/pipelines/large-int4")
if [[ -n "${QUICK:-}" ]]; then
    # 4 prompts x 32 tokens, k=4, one timed pass: the machinery and a first table.
    "$PY" -m ov_spec.bench "${PIPES[@]}" --output "$OUT/results" --quick --genai-backends PA \
        --rollback-contexts 64,256 "$@"
    exit
fi
# 1. Greedy (the README table): target-only, every chain at k 2/4/8 with trim and mask rollback,
#    adaptive, confidence stop, prompt lookup; openvino.genai on the same files; 2 timed passes over
#    4 prompts (2 code, 2 prose) x 48 tokens; speed model; rollback study at 64/256/1024 prompt tokens.
common=(--num-prompts 4 --max-new-tokens 48 --repeats 2)
"$PY" -m ov_spec.bench "${PIPES[@]}" --output "$OUT/results" "${common[@]}" \
    --k 2,4,8 --rollback trim,mask --rollback-contexts 64,256,1024 "$@"
# 2. MTAD (lossy) vs plain speculative on each two-level pair at k=4, with perplexity under the target.
"$PY" -m ov_spec.bench "${PIPES[@]}" --output "$OUT/results-mtad" "${common[@]}" \
    --chains target pairs --k 4 --mtad --no-adaptive --no-ngram --min-confidence none --no-genai \
    --no-speed-model --no-rollback-study "$@"
# 3. Sampling (temperature 0.8, top-p 0.95): target-only vs the two-level pairs at k=4, both engines.
"$PY" -m ov_spec.bench "${PIPES[@]}" --output "$OUT/results-sampling" "${common[@]}" \
    --sampling sample --chains target pairs --k 4 --no-adaptive --no-ngram --min-confidence none \
    --genai-confidence none --genai-backends PA --no-speed-model --no-rollback-study "$@"
