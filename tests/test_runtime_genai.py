"""openvino.genai as an independent reference: its target-only greedy output on the same IR.

genai runs its own tokenizer, cache management and sampling code (C++), so agreement with it
checks ov_spec's target-only path; the speculative path must then equal both.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest

import ov_spec

genai = pytest.importorskip("openvino_genai")

PROMPTS = [
    "def foo(x):",
    "import os\nimport sys\n",
    "class Config:\n    def __init__(self, path):",
    "for i in range(10):\n    print(",
    "# Parse the command line\nparser = argparse.",
    "    return self._",
]
MAX_NEW = 32


@pytest.mark.parametrize("backend", ["SDPA", "PA"])
def test_ov_spec_equals_openvino_genai_target_only(random_pipeline, backend):
    pipe = ov_spec.load(random_pipeline, rollback="trim")  # strict: its speculative runs must be exact
    reference = genai.LLMPipeline(str(random_pipeline / "target"), "CPU", ATTENTION_BACKEND=backend)
    config = genai.GenerationConfig(max_new_tokens=MAX_NEW, do_sample=False)
    for prompt in PROMPTS:
        ids = pipe.tokenizer.encode(prompt)
        assert list(reference.get_tokenizer().encode(prompt).input_ids.data[0]) == ids  # same tokenizer IR
        inputs = genai.TokenizedInputs(
            ov.Tensor(np.array([ids], dtype=np.int64)), ov.Tensor(np.ones((1, len(ids)), dtype=np.int64))
        )
        want = list(reference.generate(inputs, config).tokens[0])
        assert pipe.generate(prompt, max_new_tokens=MAX_NEW, use_draft=False).token_ids == want
        for k in (2, 5):
            assert pipe.generate(prompt, max_new_tokens=MAX_NEW, draft_tokens=k).token_ids == want


def test_bench_times_genai_without_its_prefix_cache(random_pipeline):
    """genai's paged-attention pipeline caches prompt prefixes across calls, which would let its
    repeats of a benchmark prompt skip the prefill that ov_spec pays: the bench turns it off."""
    from ov_spec.bench.config import BenchConfig
    from ov_spec.bench.runners import GenaiRunner
    from ov_spec.bench.sweep import Case, Variant
    from ov_spec.manifest import Manifest

    config = BenchConfig(pipelines=[str(random_pipeline)])
    variant = Variant("v", random_pipeline, Manifest.read(random_pipeline))
    runner = GenaiRunner(config, {"v": variant})
    seen: dict = {}

    class Capture:
        def __init__(self, path, device, **kwargs):
            seen.update(kwargs)

    runner._genai = type("G", (), {"LLMPipeline": Capture, "SchedulerConfig": genai.SchedulerConfig})
    runner.pipeline(Case(variant="v", engine="genai", chain=("target",), devices=("CPU",), backend="PA"))
    assert seen["scheduler_config"].enable_prefix_caching is False
    seen.clear()
    runner.pipeline(Case(variant="v", engine="genai", chain=("target",), devices=("CPU",), backend="SDPA"))
    assert "scheduler_config" not in seen  # the stateful SDPA pipeline caches nothing
