"""The offline model pair builder (ov_spec.tiny): recipes, split, cache, CLI, widening, loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ov_spec.errors import UserError
from ov_spec.tiny import TinyPair, build_pair, pair_folder, param_counts, preset_spec
from ov_spec.tiny.presets import PRESETS, count_params

MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "ov_spec.tiny", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _leftovers(cache: Path) -> list[str]:
    """Everything in a cache folder except lock files."""
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if not p.name.endswith(".lock"))


# --- recipes (nothing built) -------------------------------------------------------------------
def test_import_is_light():
    code = "import sys, ov_spec, ov_spec.tiny; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_default_sizes():
    counts = param_counts("default")
    assert counts["target"] >= 5_000_000
    assert counts["draft"] <= counts["target"] / 10
    assert param_counts("large")["target"] >= 100_000_000
    assert param_counts("large")["draft"] == counts["draft"]  # the large pair reuses the default draft


def test_param_formula_matches_transformers():
    import torch
    from transformers import LlamaForCausalLM

    from ov_spec.tiny.models import llama_config

    for spec in PRESETS.values():
        for model_spec in (spec.target, spec.draft):
            config = llama_config(model_spec, spec.vocab_size, spec.max_position_embeddings)
            with torch.device("meta"):  # no memory, no init: just the shapes
                model = LlamaForCausalLM(config)
            assert model.num_parameters() == count_params(model_spec, spec.vocab_size), (
                spec.name,
                model_spec,
            )


def test_large_is_a_valid_widening_of_default():
    default, large = preset_spec("default"), preset_spec("large")
    w = large.widen
    assert large.base_preset == "default" and w is not None
    assert (
        w.hidden_size == large.target.hidden_size and w.num_heads * default.target.head_dim == w.hidden_size
    )
    assert w.num_heads // w.num_kv_heads == default.target.num_heads // default.target.num_kv_heads
    assert large.target.num_layers == default.target.num_layers


# --- bad inputs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"preset": "huge"}, "unknown preset"),
        ({"preset": "random", "budget_s": 0}, "budget"),
        ({"preset": "random", "budget_s": -3.0}, "budget"),
        ({"preset": "random", "seed": -1}, "seed"),
    ],
)
def test_bad_inputs_raise_user_error(tmp_path, kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        build_pair(cache_dir=tmp_path / "cache", **kwargs)
    assert not (tmp_path / "cache").exists()


def test_unwritable_cache_raises_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    # A path below a regular file cannot be created, even by root (chmod would not stop root).
    with pytest.raises(UserError, match="not writable"):
        build_pair("random", cache_dir=blocker / "cache")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--preset", "huge"], "unknown preset"),
        (["--preset", "random", "--budget", "0"], "budget"),
        (["--preset", "random", "--budget", "-5"], "budget"),
        (["--preset", "random", "--seed", "x"], "--seed"),
        (["--preset", "random", "--cache", "{blocker}/cache"], "not writable"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, fragment):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    cache = tmp_path / "cache"
    args = [a.replace("{blocker}", str(blocker)) for a in args]
    if "--cache" not in args:
        args += ["--cache", str(cache)]
    proc = _cli(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert _leftovers(cache) == [] and not (blocker.parent / "blocker" / "cache").exists()


# --- held-out split ----------------------------------------------------------------------------
def test_heldout_files_never_in_training():
    from ov_spec.tiny.corpus import is_heldout, load_corpus

    corpus = load_corpus()
    assert corpus.heldout and corpus.train
    assert not set(corpus.heldout) & set(corpus.train)
    assert all(is_heldout(name) for name in corpus.heldout)
    assert not any(is_heldout(name) for name in corpus.train)
    # The text itself, not just the name: no held-out file appears inside any training text
    # (the stdlib repeats some boilerplate files; the split drops them from the held-out set).
    training_text = "\0".join(corpus.train.values())
    for name, text in corpus.heldout.items():
        assert text.strip() not in training_text, name
    # Everything the tokenizer and the models can be trained on comes from corpus.train.
    train_texts = set(corpus.train.values())
    assert set(corpus.train_slice(None)) <= train_texts
    assert set(corpus.shuffled_train(seed=1, max_bytes=2_000_000)) <= train_texts


def test_heldout_txt_is_heldout_code(random_pair):
    from ov_spec.tiny.build import HELDOUT_CHARS
    from ov_spec.tiny.corpus import load_corpus

    corpus = load_corpus()
    text = random_pair.heldout.read_text(encoding="utf-8")
    assert len(text) > 50_000
    assert text == corpus.heldout_sample(HELDOUT_CHARS)
    assert random_pair.report["corpus"]["heldout_files"] == sorted(corpus.heldout)


# --- the random pair: files, loading, determinism, cache -----------------------------------------
def test_random_pair_loads_offline(random_pair):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    for folder in (random_pair.target, random_pair.draft):
        for name in MODEL_FILES:
            assert (folder / name).is_file(), folder / name
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (random_pair.target / name).read_bytes() == (random_pair.draft / name).read_bytes()

    tok = AutoTokenizer.from_pretrained(random_pair.target)
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id == tok.eos_token_id
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert chat == "<|user|>\nhi<|endoftext|>\n<|assistant|>\n"
    code = "def add(a, b):\n    return a + b\n"
    assert tok.decode(tok(code)["input_ids"]) == code

    gen = json.loads((random_pair.target / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.eos_token_id
    for folder in (random_pair.target, random_pair.draft):
        assert AutoConfig.from_pretrained(folder).architectures == ["LlamaForCausalLM"]
        model = AutoModelForCausalLM.from_pretrained(folder)
        ids = torch.tensor([tok(code)["input_ids"]])
        out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
        assert out.shape[1] >= ids.shape[1] + 1


def test_random_target_and_draft_disagree(random_pair):
    # Distinct seeds: a random pair must not look like a perfect draft.
    assert random_pair.report["eval"]["agreement"] < 0.5


def _folder_bytes(pair: TinyPair) -> dict[str, bytes]:
    files = {}
    for sub in ("target", "draft"):
        for path in sorted((pair.root / sub).iterdir()):
            files[f"{sub}/{path.name}"] = path.read_bytes()
    files["heldout.txt"] = pair.heldout.read_bytes()
    return files


def test_random_build_is_deterministic(tmp_path):
    a = build_pair("random", seed=3, cache_dir=tmp_path / "a")
    b = build_pair("random", seed=3, cache_dir=tmp_path / "b")
    c = build_pair("random", seed=4, cache_dir=tmp_path / "c")
    assert a.root.name == b.root.name and a.root != b.root
    assert _folder_bytes(a) == _folder_bytes(b)
    ca = _folder_bytes(c)
    assert ca["target/model.safetensors"] != _folder_bytes(a)["target/model.safetensors"]
    assert (
        ca["target/tokenizer.json"] == _folder_bytes(a)["target/tokenizer.json"]
    )  # tokenizer ignores the seed


def test_second_call_is_instant_and_same(tmp_path):
    first = build_pair("random", cache_dir=tmp_path)
    start = time.monotonic()
    second = build_pair("random", cache_dir=tmp_path)
    assert time.monotonic() - start < 1.0
    assert second == first
    assert first.root == pair_folder("random", 0, tmp_path)
    entries = [p.name for p in (tmp_path / "tiny").iterdir() if not p.name.endswith(".lock")]
    assert entries == [first.root.name]  # no temp folders left beside it


def test_concurrent_builds_make_one_folder(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "ov_spec.tiny", "--preset", "random", "--cache", str(tmp_path), "--json"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    results = [json.loads(out) for out, _ in outs]
    assert results[0]["root"] == results[1]["root"]
    # One build: both callers got the report of the same build.
    assert results[0]["report"]["build_id"] == results[1]["report"]["build_id"]
    entries = [p.name for p in (tmp_path / "tiny").iterdir() if not p.name.endswith(".lock")]
    assert entries == [Path(results[0]["root"]).name]
    assert TinyPair.from_folder(Path(results[0]["root"])).report["preset"] == "random"


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    from ov_spec.tiny import build as stages

    def explode(out: Path, *args, **kwargs):
        (out / "target").mkdir()
        (out / "target" / "half-written").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "build_trained_or_random", explode)
    with pytest.raises(KeyboardInterrupt):
        build_pair("random", cache_dir=tmp_path)
    assert _leftovers(tmp_path) == ["tiny"]


def test_stale_temp_folders_are_cleaned(tmp_path):
    final = pair_folder("random", 0, tmp_path)
    stale = final.parent / f".{final.name}.tmp-dead"
    (stale / "target").mkdir(parents=True)
    build_pair("random", cache_dir=tmp_path)
    assert not stale.exists()


def test_budget_cut_builds_are_replaced_by_bigger_budgets(tmp_path):
    from ov_spec.tiny import _reusable
    from ov_spec.tiny.cache import REPORT_NAME

    def reusable(report: dict, budget: float | None) -> bool:
        (tmp_path / REPORT_NAME).write_text(json.dumps(report))
        return _reusable(tmp_path, budget)

    assert reusable({"budget_hit": False, "budget_s": 10}, None)
    assert reusable({"budget_hit": True, "budget_s": 10}, 5)
    assert not reusable({"budget_hit": True, "budget_s": 10}, 20)
    assert not reusable({"budget_hit": True, "budget_s": 10}, None)


def test_training_is_deterministic():
    import torch

    from ov_spec.tiny.models import new_model
    from ov_spec.tiny.presets import TrainSpec
    from ov_spec.tiny.train import train_model

    spec = preset_spec("random")
    tokens = torch.randint(0, spec.vocab_size, (5000,), generator=torch.Generator().manual_seed(0))
    train = TrainSpec(steps=4, batch_size=2, seq_len=32, lr=1e-2, warmup_steps=1, distill_weight=0.5)

    def run(seed: int) -> dict:
        teacher = new_model(spec.target, spec.vocab_size, 128, seed=1)
        student = new_model(spec.draft, spec.vocab_size, 128, seed=2)
        result = train_model(student, tokens, train, seed=seed, teacher=teacher)
        assert result.steps_done == 4 and not result.budget_hit
        return student.state_dict()

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_deadline_stops_training():
    import time as _time

    import torch

    from ov_spec.tiny.models import new_model
    from ov_spec.tiny.presets import TrainSpec
    from ov_spec.tiny.train import train_model

    spec = preset_spec("random")
    tokens = torch.randint(0, spec.vocab_size, (5000,))
    model = new_model(spec.draft, spec.vocab_size, 128, seed=0)
    train = TrainSpec(steps=1000, batch_size=2, seq_len=32, lr=1e-3, warmup_steps=1)
    result = train_model(model, tokens, train, seed=0, deadline=_time.monotonic() + 0.5)
    assert result.budget_hit and 0 < result.steps_done < 1000


# --- widening ----------------------------------------------------------------------------------
def test_widening_preserves_logits(random_pair):
    import torch

    from ov_spec.tiny.models import load_model
    from ov_spec.tiny.widen import widen_llama

    small = load_model(random_pair.target)
    cfg = small.config
    kwargs = dict(
        hidden_size=cfg.hidden_size * 4,
        num_heads=cfg.num_attention_heads * 4,
        num_kv_heads=cfg.num_key_value_heads * 4,
        intermediate_size=cfg.intermediate_size * 3,
    )
    ids = torch.randint(0, cfg.vocab_size, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = small(input_ids=ids).logits
        exact = widen_llama(small, noise=0.0, **kwargs)
        assert exact.num_parameters() > 10 * small.num_parameters()
        assert torch.allclose(exact(input_ids=ids).logits, ref, atol=1e-4, rtol=1e-4)
        noisy = widen_llama(small, noise=1e-3, seed=1, **kwargs)
        out = noisy(input_ids=ids).logits
    assert (out - ref).abs().max() < 0.05
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.95
    # Noise went on the new entries, so a quantizer sees no all-zero rows.
    q = noisy.model.layers[0].self_attn.q_proj.weight
    assert (q[cfg.hidden_size :].abs().sum(-1) > 0).all()


def test_widening_rejects_inconsistent_sizes(random_pair):
    from ov_spec.tiny.models import load_model
    from ov_spec.tiny.widen import widen_llama

    small = load_model(random_pair.target)
    cfg = small.config
    with pytest.raises(UserError, match="heads per kv head"):
        widen_llama(
            small,
            hidden_size=cfg.hidden_size * 2,
            num_heads=cfg.num_attention_heads * 2,
            num_kv_heads=cfg.num_key_value_heads,
            intermediate_size=cfg.intermediate_size,
        )


# --- the training pipeline, on a scaled-down "default" recipe (seconds) -------------------------
@pytest.fixture
def cheap_default(monkeypatch):
    """Swap the "default" recipe for the same pipeline (growth, widening, distillation) in miniature."""
    import dataclasses

    from ov_spec.tiny import presets
    from ov_spec.tiny.presets import GrowthSpec, ModelSpec, TrainSpec

    small = ModelSpec(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=88)
    train = TrainSpec(steps=6, batch_size=2, seq_len=64, lr=3e-3, warmup_steps=2)
    spec = dataclasses.replace(
        presets.PRESETS["default"],
        vocab_size=512,
        tokenizer_train_bytes=300_000,
        data_bytes=300_000,
        target=ModelSpec(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=176),
        draft=dataclasses.replace(small, num_layers=1),
        growth=GrowthSpec(narrow=small, train=train, noise=0.02, draft_from_narrow=True),
        target_train=train,
        draft_train=dataclasses.replace(train, distill_weight=0.8),
        eval_windows=4,
        eval_seq_len=64,
    )
    monkeypatch.setitem(presets.PRESETS, "default", spec)
    return spec


def test_training_pipeline_runs_every_stage(tmp_path, cheap_default):
    pair = build_pair("default", cache_dir=tmp_path)
    report = pair.report
    assert set(report["training"]) == {"narrow", "target", "draft"}
    assert all(r["steps_done"] == r["steps_planned"] == 6 for r in report["training"].values())
    assert not report["budget_hit"]
    assert report["params"]["target"] == count_params(cheap_default.target, 512)
    # Deterministic, whatever the thread count (measured: 1, 2 and 4 threads give the same bytes).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        again = build_pair("default", cache_dir=tmp_path / "again")
    finally:
        torch.set_num_threads(threads)
    assert _folder_bytes(again) == _folder_bytes(pair)


def test_cache_key_names_what_decides_the_arithmetic(monkeypatch, tmp_path):
    """Another CPU instruction set trains other bytes (measured), so it must be another folder."""
    from ov_spec.tiny import train

    here = pair_folder("default", cache_dir=tmp_path)
    real = train.numerics_fingerprint()
    monkeypatch.setattr(train, "numerics_fingerprint", lambda: {**real, "cpu_capability": "AVX2"})
    assert pair_folder("default", cache_dir=tmp_path) != here
    monkeypatch.setattr(
        train, "numerics_fingerprint", lambda: {**real, "bf16_autocast": not real["bf16_autocast"]}
    )
    assert pair_folder("default", cache_dir=tmp_path) != here


def test_budget_cap_stops_training(tmp_path, cheap_default):
    pair = build_pair("default", cache_dir=tmp_path, budget_s=0.001)
    report = pair.report
    assert report["budget_hit"] and report["budget_s"] == 0.001
    assert all(r["steps_done"] < r["steps_planned"] for r in report["training"].values())
    assert (pair.target / "model.safetensors").is_file()  # still a complete, loadable pair
    # A later call without a budget does not settle for the cut-short build.
    full = build_pair("default", cache_dir=tmp_path)
    assert full.root == pair.root and not full.report["budget_hit"]


# --- the trained pair (built once, cached) -----------------------------------------------------
@pytest.mark.slow
def test_trained_pair_quality(trained_pair):
    report = trained_pair.report
    assert report["preset"] == "default" and not report["budget_hit"]
    assert report["params"]["target"] >= 5_000_000
    assert report["params"]["draft"] <= report["params"]["target"] / 10
    ev = report["eval"]
    assert ev["ppl_target"] < ev["ppl_draft"] < 2 * ev["ppl_target"]
    assert ev["agreement"] >= 0.5
    assert {"target", "draft"} <= set(report["training"])
    for stage in report["training"].values():
        assert stage["steps_done"] == stage["steps_planned"]
        assert stage["last_loss"] < stage["first_loss"]


def _paren_after_def_rate(pair) -> float:
    """Share of held-out ``def name(`` cases where the target's top-1 next token starts with ``(``,
    teacher-forced on up to 96 tokens of the code before it."""
    import re

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair.target)
    model = AutoModelForCausalLM.from_pretrained(pair.target)
    text = pair.heldout.read_text(encoding="utf-8")
    ends = [m.end(1) for m in re.finditer(r"\bdef (\w+)\(", text)][:48]
    assert len(ends) >= 32
    hits = 0
    with torch.no_grad():
        for end in ends:
            ids = tok(text[max(0, end - 400) : end])["input_ids"][-96:]
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            hits += tok.decode([int(logits.argmax())]).startswith("(")
    return hits / len(ends)


@pytest.mark.slow
def test_trained_pair_learned_code_syntax(trained_pair, random_pair):
    """What any honest build learns, over many held-out cases rather than one lucky continuation:
    a function name is followed by its parameter list. Measured 22/48 on the default build here
    (the model often continues the name instead); chance is 1 in 2048, and the random pair, the
    negative control, must stay near it."""
    assert _paren_after_def_rate(trained_pair) >= 0.25
    assert _paren_after_def_rate(random_pair) < 0.05
