"""python -m ov_spec.export: the IR it writes, the manifest, and every bad input.

Checks look at the artefacts themselves (op types and constant element types in the IR, files
on disk) and compare outputs with an independent reference (the PyTorch model the IR came from,
openvino.genai), never with the exporter's own numbers.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ov_spec.cli import run_cli
from ov_spec.export import CompressionConfig, Recipe
from ov_spec.export.__main__ import main as export_main
from ov_spec.export.compress import weight_types
from ov_spec.export.package import TMP_MARK, Staging
from ov_spec.manifest import MANIFEST_NAME, Manifest

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "export" / "recipes"
PROMPTS = [
    "def main():\n    ",
    "import os\nimport sys\n\n",
    "class Config(object):\n",
    "    for i in range(",
    "# Copyright",
]
# One export (module fixture) covers the remaining formats: the drafts reuse one conversion.
FORMAT_DRAFTS = ["int8_sym", "int4_asym", "nf4", "int4_sym"]


# --- helpers ------------------------------------------------------------------------------------
def read_ir(folder: Path):
    import openvino as ov

    return ov.Core().read_model(folder / "openvino_model.xml")


def op_types(model) -> set[str]:
    return {op.get_type_name() for op in model.get_ops()}


def greedy_ov(xml: Path, prompt_ids: list[int], new_tokens: int, eos: set[int], request=None) -> list[int]:
    """Plain greedy decoding over the stateful IR in f32 (prefill, then one token per step)."""
    import openvino as ov

    if request is None:
        request = (
            ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        )
    request.reset_state()
    feed, past, out = np.array(prompt_ids, dtype=np.int64), 0, []
    for _ in range(new_tokens):
        n = len(feed)
        request.infer(
            {
                "input_ids": feed[None],
                "attention_mask": np.ones((1, past + n), dtype=np.int64),
                "position_ids": np.arange(past, past + n, dtype=np.int64)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
        token = int(request.get_tensor("logits").data[0, -1].argmax())
        past += n
        out.append(token)
        if token in eos:
            break
        feed = np.array([token], dtype=np.int64)
    return out


def greedy_torch(model, prompt_ids: list[int], new_tokens: int) -> list[int]:
    import torch

    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False
        )
    return out[0, len(prompt_ids) :].tolist()


def run_export_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ov_spec.export", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def assert_one_line_error(proc_or_text, *needles: str) -> str:
    stderr = proc_or_text if isinstance(proc_or_text, str) else proc_or_text.stderr
    if not isinstance(proc_or_text, str):
        assert proc_or_text.returncode == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_nothing_left(output: Path) -> None:
    assert not output.exists(), f"{output} was created"
    leftovers = [p.name for p in output.parent.iterdir() if TMP_MARK in p.name]
    assert not leftovers, leftovers


# --- the format matrix on the trained tiny pair ---------------------------------------------------
@pytest.fixture(scope="module")
def formats_pipeline(trained_pair, tmp_path_factory):
    """Six formats from ONE conversion: the trained tiny draft as fp32 "target", its mxfp4 self-draft,
    and four more copies of it as drafts (every model shares the one conversion of its source)."""
    from ov_spec.export import export_pipeline

    out = tmp_path_factory.mktemp("formats") / "pipe"
    manifest = export_pipeline(
        target="tiny:default/draft",
        drafts=["tiny:default/draft"] * len(FORMAT_DRAFTS),
        self_draft="mxfp4",
        formats={"target": "fp32", "draft": FORMAT_DRAFTS},
        output=out,
        preview_chunks=4,
        preview_tokens=64,
        quiet=True,
    )
    return out, manifest


# Element types that prove a format landed (NNCF keeps embeddings / lm_head in the backup precision:
# int8_asym (u8) for int4/nf4, mxfp8 (f8e4m3) for mxfp4).
EXPECTED_TYPES = {
    "target": ({"f32"}, {"i8", "u8", "i4", "u4", "nf4", "f4e2m1", "f8e8m0"}),
    "self_draft": ({"f4e2m1", "f8e8m0"}, {"i4", "u4", "nf4"}),
    "draft1": ({"i8"}, {"u8", "i4", "u4", "nf4", "f4e2m1"}),
    "draft2": ({"u4", "u8"}, {"i4", "nf4", "f4e2m1"}),
    "draft3": ({"nf4"}, {"i4", "u4", "f4e2m1"}),
    "draft4": ({"i4"}, {"u4", "nf4", "f4e2m1"}),
}


@pytest.mark.parametrize("name", list(EXPECTED_TYPES))
def test_format_lands_in_the_ir(formats_pipeline, name):
    folder, manifest = formats_pipeline
    model = read_ir(folder / name)
    assert {"ReadValue", "Assign"} <= op_types(model), "the KV cache must live inside the model (stateful)"
    types = weight_types(model)
    present, absent = EXPECTED_TYPES[name]
    assert present <= set(types), (name, dict(types))
    assert not (absent & set(types)), (name, dict(types))
    # Every compressed linear layer has its own low-bit weight constant: 2 layers x 7 linears.
    linears = 2 * 7
    main_type = {"self_draft": "f4e2m1", "draft1": "i8", "draft2": "u4", "draft3": "nf4", "draft4": "i4"}.get(
        name
    )
    if main_type:
        assert types[main_type] >= linears, (name, dict(types))
    entry = manifest.model(name)
    assert entry.size_bytes == (folder / name / "openvino_model.bin").stat().st_size


def test_sizes_follow_the_formats(formats_pipeline):
    _, manifest = formats_pipeline
    size = {m.name: m.size_bytes for m in manifest.models}
    # fp32 target: 4 bytes per parameter (plus a little metadata).
    target = manifest.model("target")
    assert 3.9 < size["target"] / target.num_parameters < 4.1
    assert size["self_draft"] < 0.4 * size["target"]
    assert size["draft2"] < size["draft1"]  # int4 < int8 (same draft)


def test_preview_is_recorded(formats_pipeline):
    _, manifest = formats_pipeline
    preview = manifest.preview
    assert preview["chunks"] == 4 and preview["tokens_per_chunk"] == 64
    assert "held-out" in preview["text"]
    per_model = preview["models"]
    assert set(per_model) == {m.name for m in manifest.models}
    assert "vs_uncompressed" not in per_model["target"]  # fp32 from an fp32 conversion: nothing to compare
    for name in ("self_draft", "draft1", "draft2", "draft3", "draft4"):
        entry = per_model[name]
        for key in ("vs_level_above", "vs_target", "vs_uncompressed", "text_top1", "tau_k4"):
            assert 0.0 <= entry[key] <= (5.0 if key.startswith("tau") else 1.0), (name, key, entry)
    # int8 weights barely move a trained model's argmax; mxfp4 moves it more, but agrees mostly.
    assert per_model["draft1"]["vs_uncompressed"] > 0.9
    assert per_model["self_draft"]["vs_uncompressed"] > 0.5
    assert per_model["self_draft"]["vs_level_above"] == per_model["self_draft"]["vs_target"]


def test_exported_fp32_matches_pytorch_greedy(formats_pipeline, trained_pair, random_pipeline, random_pair):
    """Greedy output of the exported fp32 IR == transformers generate() on the source checkpoint."""
    import openvino as ov
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = formats_pipeline
    cases = [
        (folder / "target", trained_pair.draft),
        (random_pipeline / "target", random_pair.target),
        (random_pipeline / "draft1", random_pair.draft),
    ]
    core = ov.Core()
    for ir_folder, checkpoint in cases:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        eos = {int(tokenizer.eos_token_id)}
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
        xml = ir_folder / "openvino_model.xml"
        request = core.compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        for prompt in PROMPTS:
            ids = tokenizer(prompt)["input_ids"]
            expected = greedy_torch(model, ids, 24)
            got = greedy_ov(xml, ids, 24, eos, request)
            assert got == expected, (ir_folder, prompt, got, expected)


# --- the fixtures the runtime uses ----------------------------------------------------------------
def test_random_pipeline_manifest(random_pipeline, random_pair):
    manifest = Manifest.read(random_pipeline)  # the runtime's own reader and checks
    assert [(m.name, m.role, m.level, m.weight_format) for m in manifest.by_level()] == [
        ("target", "target", 0, "fp32"),
        ("draft1", "draft", 1, "fp32"),
    ]
    counts = random_pair.report["params"]
    assert manifest.model("target").num_parameters == counts["target"]
    assert manifest.model("draft1").num_parameters == counts["draft"]
    tok = manifest.tokenizer
    assert tok["path"] == "tokenizer" and tok["fingerprint"].startswith("sha256:")
    assert random_pair.report["spec"]["vocab_size"] == tok["vocab_size"]
    config = json.loads((random_pair.target / "config.json").read_text())
    assert config["eos_token_id"] in tok["eos_token_ids"]
    assert manifest.max_context == config["max_position_embeddings"]
    assert {"openvino", "nncf", "optimum-intel", "transformers", "ov_spec"} <= set(manifest.versions)
    for m in manifest.models:
        sub = random_pipeline / m.path
        for name in ("openvino_model.xml", "openvino_model.bin", "config.json", "generation_config.json",
                     "openvino_tokenizer.xml", "openvino_detokenizer.xml", "tokenizer.json"):  # fmt: skip
            assert (sub / name).is_file(), sub / name
        assert {"ReadValue", "Assign"} <= op_types(read_ir(sub))
    # The recipe written beside the manifest re-makes the same plan.
    again = Recipe.load(random_pipeline / "recipe.toml")
    assert again.to_dict() == manifest.recipe


def test_trained_pipeline_is_int8(trained_pipeline):
    manifest = Manifest.read(trained_pipeline)
    for m in manifest.models:
        assert m.weight_format == "int8_asym"
        types = weight_types(read_ir(trained_pipeline / m.path))
        assert types["u8"] > 0 and "i8" not in types
        assert 0.2 < m.size_bytes / (2 * m.num_parameters) < 0.6  # about half of fp16
    assert manifest.preview["models"]["draft1"]["vs_level_above"] > 0.2  # a trained draft agrees often


def test_openvino_genai_loads_a_model_folder(random_pipeline, random_pair):
    """Each model folder is a complete optimum export: openvino.genai runs it on its own."""
    openvino_genai = pytest.importorskip("openvino_genai")
    from transformers import AutoTokenizer

    pipe = openvino_genai.LLMPipeline(str(random_pipeline / "target"), "CPU", INFERENCE_PRECISION_HINT="f32")
    config = openvino_genai.GenerationConfig(max_new_tokens=12, do_sample=False)
    config.apply_chat_template = False
    tokenizer = AutoTokenizer.from_pretrained(random_pair.target)
    prompt = "import os\n"
    eos = int(tokenizer.eos_token_id)
    expected = greedy_ov(
        random_pipeline / "target" / "openvino_model.xml", tokenizer(prompt)["input_ids"], 12, {eos}
    )
    assert pipe.generate(prompt, config) == tokenizer.decode(
        [t for t in expected if t != eos], skip_special_tokens=True
    )


# --- recipes and the format config ---------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    recipe = Recipe.load(path)
    specs = recipe.validate()
    assert specs[0].role == "target" and [s.level for s in specs] == list(range(len(specs)))


def test_flags_override_recipe():
    recipe = Recipe.load(RECIPES / "qwen2.5-1.5b-0.5b.toml")
    recipe.override(
        formats={"target": "fp16", "draft": "nf4"}, settings={"group_size": 128}, self_draft="mxfp4"
    )
    specs = {s.name: s for s in recipe.validate()}
    assert specs["target"].compression.to_dict() == {"format": "fp16"}
    assert specs["draft1"].compression.to_dict() == {"format": "nf4", "group_size": 128, "ratio": 1.0}
    assert specs["self_draft"].level == 1 and specs["draft1"].level == 2


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (CompressionConfig("int8_sym", group_size=64), "per-channel"),
        (CompressionConfig("mxfp4", group_size=64), "groups of 32"),
        (CompressionConfig("int4_sym", ratio=1.5), "ratio must be"),
        (CompressionConfig("mxfp4", awq=True), "--awq works with"),
        (CompressionConfig("int4_asym", group_size=0), "positive"),
        (CompressionConfig("int4_asym", group_size_fallback="maybe"), "fallback"),
    ],
)
def test_compression_config_validates(config, needle):
    from ov_spec.errors import UserError

    with pytest.raises(UserError, match=needle):
        config.validate()


def test_compression_config_maps_to_nncf():
    import nncf

    kwargs = CompressionConfig("int4_asym", group_size=32, ratio=0.8, awq=True).nncf_kwargs()
    assert kwargs["mode"] == nncf.CompressWeightsMode.INT4_ASYM
    assert (kwargs["group_size"], kwargs["ratio"], kwargs["awq"]) == (32, 0.8, True)
    assert CompressionConfig("int8_sym").nncf_kwargs() == {"mode": nncf.CompressWeightsMode.INT8_SYM}


def test_help_shows_role_defaults():
    proc = run_export_cli("--help")
    assert proc.returncode == 0
    for needle in ("default int8_asym", "default int4_sym", "mxfp4", "nf4", "--self-draft"):
        assert needle in proc.stdout


def test_staging_replaces_an_old_pipeline(tmp_path):
    out = tmp_path / "pipe"
    out.mkdir()
    (out / MANIFEST_NAME).write_text("{}")
    staging = Staging(out)
    (staging.path / "new").write_text("x")
    staging.publish()
    assert sorted(p.name for p in out.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


# --- bad input: exit code 2, one line, nothing left behind ----------------------------------------
def make_bad_sources(random_pair, root: Path) -> dict[str, Path]:
    """Local checkpoints that are wrong in one way each (copies of the random pair)."""
    from transformers import AutoTokenizer

    bad: dict[str, Path] = {}
    corrupt = root / "corrupt"
    shutil.copytree(random_pair.draft, corrupt)
    (corrupt / "config.json").write_text("{ not json")
    bad["corrupt"] = corrupt

    mamba = root / "mamba"
    shutil.copytree(random_pair.draft, mamba)
    config = json.loads((mamba / "config.json").read_text())
    config.update(model_type="mamba", architectures=["MambaForCausalLM"])
    (mamba / "config.json").write_text(json.dumps(config))
    bad["mamba"] = mamba

    other_vocab = root / "other_vocab"
    shutil.copytree(random_pair.draft, other_vocab)
    tokenizer = AutoTokenizer.from_pretrained(other_vocab)
    tokenizer.add_tokens(["<ov_spec_extra>"])
    tokenizer.save_pretrained(other_vocab)
    bad["other_vocab"] = other_vocab

    no_context = root / "no_context"
    shutil.copytree(random_pair.draft, no_context)
    config = json.loads((no_context / "config.json").read_text())
    # transformers fills in a default when the key is absent and rejects null: 0 is "unknown".
    config["max_position_embeddings"] = 0
    (no_context / "config.json").write_text(json.dumps(config))
    bad["no_context"] = no_context
    return bad


@pytest.fixture(scope="module")
def bad_sources(random_pair, tmp_path_factory):
    return make_bad_sources(random_pair, tmp_path_factory.mktemp("bad_sources"))


T, D = "tiny:random/target", "tiny:random/draft"
# Fail before transformers is imported: checked through the real command line (a fresh process).
CLI_CASES = {
    "missing source": (["--target", "/nonexistent/model", "--draft", D], ["does not exist"]),
    # huggingface-cli no longer downloads (issue 14): the fix must name the command that does.
    "hub id offline": (["--target", "some-org/some-model", "--draft", D], ["`hf download some-org/some-model --local-dir DIR`"]),
    "unreadable config": (["--target", T, "--draft", "{corrupt}"], ["draft1", "cannot read", "config.json"]),
    "unknown tiny preset": (["--target", "tiny:nope/target", "--draft", D], ["unknown preset 'nope'"]),
    "bad tiny role": (["--target", "tiny:random/model", "--draft", D], ["ROLE target or draft"]),
    "unknown format": (["--target", T, "--draft", D, "--target-format", "int5"], ["unknown weight format 'int5'"]),
    "flag no model accepts": (["--target", T, "--draft", D, "--target-format", "int8_sym", "--draft-format", "fp16", "--awq"], ["--awq does not apply"]),
    "awq without text": (["--target", T, "--draft", D, "--draft-format", "int4_sym", "--group-size", "8", "--awq"], ["--calibration-text"]),
    "no target": (["--draft", D], ["no target model", "--target SRC"]),
    "missing recipe": (["--recipe", "/nonexistent/recipe.toml"], ["recipe", "does not exist"]),
    "missing preview text": (["--target", T, "--draft", D, "--preview-text", "/nonexistent.txt"], ["preview text", "does not exist"]),
    "missing calibration text": (
        ["--target", T, "--draft", D, "--draft-format", "int4_sym", "--awq", "--calibration-text", "/nonexistent.txt"],
        ["calibration text", "does not exist"],
    ),
}  # fmt: skip
# Fail after reading configs and tokenizers with transformers: run in-process (same CLI entry point,
# run_cli) so each case does not pay a fresh transformers import.
INPROCESS_CASES = {
    "unsupported architecture": (["--target", T, "--draft", "{mamba}"], ["'mamba'", "supported: ", "llama"]),
    "tokenizer mismatch": (
        ["--target", T, "--draft", "{other_vocab}"],
        ["draft1 vocabulary differs from target: 513 vs 512 tokens, 1 tokens differ", "<ov_spec_extra>", "shared tokenizer"],
    ),
    "unknown context": (["--target", T, "--draft", "{no_context}"], ["context limit", "max_position_embeddings"]),
    "bad group size": (
        ["--target", T, "--draft", D, "--draft-format", "int4_sym", "--group-size", "64"],
        ["draft1", "group size 64", "intermediate_size=88", "--group-size 8"],
    ),
}  # fmt: skip


def fill(args: list[str], bad_sources: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in bad_sources.items()}) for a in args]


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_input_cli(case, bad_sources, tmp_path):
    args, needles = CLI_CASES[case]
    output = tmp_path / "out"
    proc = run_export_cli(*fill(args, bad_sources), "--output", str(output))
    assert_one_line_error(proc, *needles)
    assert_nothing_left(output)


@pytest.mark.parametrize("case", list(INPROCESS_CASES))
def test_bad_input_in_process(case, bad_sources, tmp_path, capsys):
    args, needles = INPROCESS_CASES[case]
    output = tmp_path / "out"
    assert run_cli(export_main, [*fill(args, bad_sources), "--output", str(output)]) == 2
    assert_one_line_error(capsys.readouterr().err, *needles)
    assert_nothing_left(output)


def test_bad_recipe_key(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[target]\nsource = "tiny:random/target"\nfromat = "fp16"\n')
    proc = run_export_cli("--recipe", str(recipe), "--output", str(tmp_path / "out"))
    assert_one_line_error(proc, "unknown key(s) fromat")


def test_output_not_empty(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    proc = run_export_cli("--target", T, "--draft", D, "--output", str(output))
    assert_one_line_error(proc, "exists and is not empty", "--force")
    proc = run_export_cli("--target", T, "--draft", D, "--output", str(output), "--force")
    assert_one_line_error(proc, "not an ov_spec pipeline")  # --force never deletes arbitrary folders
    assert (output / "keep.txt").read_text() == "mine"


def test_disk_full_is_one_line(monkeypatch, capsys, tmp_path, random_pair):
    import ov_spec.export.pipeline as pipeline

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "convert_checkpoint", no_space)
    output = tmp_path / "out"
    args = ["--target", T, "--draft", D, "--target-format", "fp32", "--draft-format", "fp32"]
    code = run_cli(export_main, [*args, "--output", str(output), "--quiet"])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, "no space left", "another disk")
    assert_nothing_left(output)


def test_first_ctrl_c_stops_at_the_next_stage_second_at_once(monkeypatch):
    import threading

    from ov_spec.export import report

    handlers = {}
    monkeypatch.setattr(report.signal, "signal", lambda sig, handler: handlers.__setitem__(sig, handler))
    monkeypatch.setattr(report, "INTERRUPTED", threading.Event())
    report.install_interrupt_handler(quiet=True)
    handler = handlers[signal.SIGINT]
    handler(signal.SIGINT, None)  # no exception here: it could land inside native code
    with pytest.raises(KeyboardInterrupt), report.Progress(quiet=True).stage("next step"):
        pass
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)


def test_temp_folders_of_dead_exports_are_removed(tmp_path):
    dead = tmp_path / f".pipe{TMP_MARK}999999999-abc"  # beyond any PID: that export is gone
    live = tmp_path / f".pipe{TMP_MARK}{os.getpid()}-xyz"
    other = tmp_path / f".other{TMP_MARK}999999999-abc"  # another output's: not ours to judge
    for folder in (dead, live, other):
        folder.mkdir()
    staging = Staging(tmp_path / "pipe")
    try:
        assert not dead.exists() and live.exists() and other.exists()
        assert staging.path.name.startswith(f".pipe{TMP_MARK}{os.getpid()}-")
    finally:
        staging.discard()
    odd = tmp_path / f".p[1]*{TMP_MARK}999999999-abc"  # glob characters in the output's name
    odd.mkdir()
    Staging(tmp_path / "p[1]*").discard()
    assert not odd.exists()


def test_ctrl_c_leaves_nothing(tmp_path, random_pair):
    output = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ov_spec.export",
            "--target",
            T,
            "--draft",
            D,
            "--output",
            str(output),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        # Wait until the export is converting (its temp folder exists), then interrupt it.
        deadline = time.monotonic() + 120
        while not any(TMP_MARK in p.name for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 2, stderr
    assert_one_line_error(stderr, "interrupted", "run the same command again")
    assert_nothing_left(output)


# --- a pipeline without a draft model (issue 11, item 6) ------------------------------------------
@pytest.fixture(scope="module")
def target_only_pipeline(random_pair):
    """tiny:random/target alone, fp32, through the real command line (seconds)."""
    from conftest import exported_pipeline

    return exported_pipeline(
        "random-target-only", random_pair.root, target=T, drafts=None, formats={"target": "fp32"}
    )


def test_target_only_export(target_only_pipeline):
    manifest = Manifest.read(target_only_pipeline)
    assert manifest.names() == ["target"]
    assert manifest.target.weight_format == "fp32"
    assert manifest.recipe["draft"] == [] and "self_draft" not in manifest.recipe
    assert sorted(p.name for p in target_only_pipeline.iterdir() if p.is_dir()) == ["target", "tokenizer"]
    # The recipe it records re-makes a target-only pipeline.
    recipe = Recipe.load(target_only_pipeline / "recipe.toml")
    assert [s.name for s in recipe.validate()] == ["target"]


def test_target_only_cli(tmp_path):
    output = tmp_path / "solo"
    proc = run_export_cli("--target", T, "--target-format", "fp16", "--no-preview", "--output", str(output))
    assert proc.returncode == 0, proc.stderr
    assert Manifest.read(output).names() == ["target"]


def test_target_only_generates(target_only_pipeline, random_pipeline):
    """Target-only decoding and prompt lookup run; both equal the target's greedy output elsewhere."""
    import ov_spec

    solo = ov_spec.load(target_only_pipeline, property_overrides=["target.INFERENCE_PRECISION_HINT=f32"])
    pair = ov_spec.load(random_pipeline, property_overrides=["target.INFERENCE_PRECISION_HINT=f32"])
    prompt = "def main():\n    x = 1\n    x = 1\n    x = 1\n"
    reference = pair.generate(prompt, max_new_tokens=24, use_draft=False).token_ids
    default = solo.generate(prompt, max_new_tokens=24)  # nothing to draft with: target-only
    assert default.token_ids == reference
    assert default.metrics.acceptance_rate == 0 and default.metrics.levels[0].drafted == 0
    lookup = solo.generate(
        prompt, max_new_tokens=24, ngram=True, draft_tokens=4
    )  # fixed k: "auto" may pick 0
    assert lookup.token_ids == reference
    assert lookup.metrics.levels[0].drafted > 0, "prompt lookup proposed nothing on repeating text"
    assert solo.generate(prompt, max_new_tokens=8, use_draft=False).token_ids == reference[:8]
