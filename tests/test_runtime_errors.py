"""Bad input to the runtime: one-line errors that name the fix, exit code 2 from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ov_spec
from ov_spec.errors import UserError
from ov_spec.manifest import MANIFEST_NAME


@pytest.fixture(scope="module")
def pipe(random_pipeline):
    return ov_spec.load(random_pipeline)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ov_spec.generate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": -3}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"draft_tokens": -1}, "draft_tokens"),
        ({"draft_tokens": [2, 2, 2]}, "draft_tokens"),
        ({"models": ["draft1"]}, "start with the target"),
        ({"models": ["target", "nope"]}, "no model named 'nope'"),
        ({"stop": [""]}, "stop strings"),
        ({"min_confidence": 1.5}, "min_confidence"),
    ],
)
def test_bad_options(pipe, options, needle):
    with pytest.raises(UserError, match=needle):
        pipe.generate("def f():", **options)


def test_empty_prompt(pipe):
    for prompt in ("", "   \n", []):
        with pytest.raises(UserError, match="empty"):
            pipe.generate(prompt)


def test_token_ids_out_of_range(pipe):
    with pytest.raises(UserError, match="token ids"):
        pipe.generate([1, pipe.vocab_size + 5])


def test_prompt_longer_than_context(pipe):
    with pytest.raises(UserError, match="context"):
        pipe.generate([5] * (pipe.max_context - 3), max_new_tokens=10)


def test_not_a_pipeline(tmp_path):
    with pytest.raises(UserError, match="not an ov_spec pipeline"):
        ov_spec.load(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        ov_spec.load(tmp_path / "missing")


def test_incompatible_manifest_version(random_pipeline, tmp_path):
    manifest = json.loads((random_pipeline / MANIFEST_NAME).read_text())
    manifest["format_version"] = 99
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="version 99"):
        ov_spec.load(tmp_path)


def test_manifest_from_a_newer_minor_version_loads(random_pipeline, tmp_path):
    manifest = json.loads((random_pipeline / MANIFEST_NAME).read_text())
    manifest["added_later"] = {"x": 1}
    for entry in manifest["models"]:
        entry["vocab_size"] = 512
    for child in random_pipeline.iterdir():
        if child.name != MANIFEST_NAME:
            (tmp_path / child.name).symlink_to(child)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert ov_spec.load(tmp_path).generate("def f():", max_new_tokens=4).text is not None


def test_malformed_manifest(random_pipeline, tmp_path):
    manifest = json.loads((random_pipeline / MANIFEST_NAME).read_text())
    del manifest["models"][0]["path"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="malformed"):
        ov_spec.load(tmp_path)


def test_missing_model_file(random_pipeline, tmp_path):
    manifest = json.loads((random_pipeline / MANIFEST_NAME).read_text())
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="missing"):
        ov_spec.load(tmp_path)


@pytest.mark.parametrize(
    ("devices", "needle"),
    [
        ({"models": {"target": {"device": "GPU"}}}, "not available here; present: CPU"),
        ({"models": {"target": {"device": "HETERO:NPU,CPU"}}}, "'NPU' is not available"),
        ({"models": {"target": {"properties": {"NO_SUCH_PROPERTY": 1}}}}, "no property 'NO_SUCH_PROPERTY'"),
        ({"models": {"ghost": {"device": "CPU"}}}, "names model 'ghost'"),
        ({"defaults": {"device": "CPU", "colour": "red"}}, "unknown keys"),
        ({"gpu": {}}, "unknown sections"),
    ],
)
def test_bad_device_config(random_pipeline, devices, needle):
    with pytest.raises(UserError, match=needle):
        ov_spec.load(random_pipeline, devices=devices)


def test_bad_property_value_is_one_line(random_pipeline):
    with pytest.raises(UserError, match="could not compile"):
        ov_spec.load(
            random_pipeline, devices={"defaults": {"properties": {"INFERENCE_PRECISION_HINT": "int3"}}}
        )


def test_device_config_file_and_overrides(random_pipeline, tmp_path):
    config = tmp_path / "devices.toml"
    config.write_text(
        '[defaults]\ndevice = "CPU"\n[models.target]\nproperties = { INFERENCE_PRECISION_HINT = "f32" }\n'
    )
    pipe = ov_spec.load(random_pipeline, devices=config, property_overrides=["draft1.NUM_STREAMS=1"])
    assert pipe.placements["target"].properties == {"INFERENCE_PRECISION_HINT": "f32"}
    assert pipe.placements["draft1"].properties == {"NUM_STREAMS": "1"}
    assert (
        pipe.models["target"]
        .request.get_compiled_model()
        .get_property("INFERENCE_PRECISION_HINT")
        .to_string()
        == "f32"
    )


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_json(random_pipeline):
    proc = run_cli(str(random_pipeline), "--prompt", "def f(x):", "--max-new-tokens", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"text", "token_ids", "metrics", "finish_reason"}
    assert len(out["token_ids"]) <= 8 and "acceptance_rate" in out["metrics"]


def test_cli_streams_text_and_baseline_matches(random_pipeline):
    spec = run_cli(str(random_pipeline), "--prompt", "import os", "--max-new-tokens", "12", "--json")
    base = run_cli(
        str(random_pipeline), "--prompt", "import os", "--max-new-tokens", "12", "--json", "--no-draft"
    )
    assert json.loads(spec.stdout)["token_ids"] == json.loads(base.stdout)["token_ids"]
    streamed = run_cli(str(random_pipeline), "--prompt", "import os", "--max-new-tokens", "12")
    assert streamed.returncode == 0
    assert streamed.stdout.rstrip("\n") == json.loads(spec.stdout)["text"]
    assert "tok/s" in streamed.stderr


def test_cli_ngram_flags_pick_the_drafter(random_pipeline):
    """Unset: the default drafter (draft1 or prompt lookup per pass); --no-ngram: draft1 alone;
    --ngram --models target: prompt lookup alone. Each output is the target-only one."""
    common = [str(random_pipeline), "--prompt", "import os", "--max-new-tokens", "12", "--json"]
    base = json.loads(run_cli(*common, "--no-draft").stdout)["token_ids"]
    for extra, chain in (
        ([], ["target", "draft1|ngram"]),
        (["--no-ngram"], ["target", "draft1"]),
        (["--ngram", "--models", "target"], ["target", "ngram"]),
    ):
        proc = run_cli(*common, *extra, "--rollback", "trim")  # strict: equality must hold exactly
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["metrics"]["auto"]["chain"] == chain and out["token_ids"] == base, extra


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--prompt", ""], ["empty"]),
        (["--prompt", "x", "--max-new-tokens", "0"], ["max_new_tokens"]),
        (["--prompt", "x", "--temperature", "-1"], ["temperature"]),
        (["--prompt", "x", "--device", "target=NPU"], ["NPU", "present: CPU"]),
        (["--prompt", "x", "--devices", "/nonexistent.toml"], ["does not exist"]),
        (["--prompt-file", "/nonexistent.txt"], ["cannot read prompt file"]),
    ],
)
def test_cli_user_errors(random_pipeline, args, needles):
    assert_user_error(run_cli(str(random_pipeline), *args), *needles)


def test_cli_not_a_pipeline(tmp_path: Path):
    assert_user_error(run_cli(str(tmp_path), "--prompt", "x"), "not an ov_spec pipeline")


# -- issue 14: one draft-length rule, damaged folders, messages ----------------------------------------
@pytest.mark.parametrize("k", [0, 17, 100, -1, 2.5, "five"])
def test_draft_tokens_bound_is_one_rule_for_generate_cli_and_bench(pipe, random_pipeline, k):
    from ov_spec.bench.config import BenchConfig
    from ov_spec.runtime.limits import MAX_DRAFT_TOKENS

    with pytest.raises(UserError) as api:
        pipe.generate("def f():", max_new_tokens=4, draft_tokens=k)
    with pytest.raises(UserError) as bench:
        BenchConfig.load(overrides={"pipelines": [str(random_pipeline)], "draft_tokens": [k]})
    if isinstance(k, int):  # (the bench's file reader rejects other types first, in its own words)
        assert str(api.value) == str(bench.value)  # the same rule, word for word
    assert f"1..{MAX_DRAFT_TOKENS}" in str(api.value) or "use_draft=False" in str(api.value)
    if k == 0:
        assert "use_draft=False" in str(api.value) and "auto" in str(api.value)
    with pytest.raises(UserError):
        pipe.generate("def f():", max_new_tokens=4, draft_tokens=[4, k] if k != "five" else [k])


def test_draft_tokens_at_the_bound_and_auto_are_accepted(pipe):
    from ov_spec.runtime.limits import MAX_DRAFT_TOKENS

    assert pipe.generate([5, 6, 7], max_new_tokens=3, draft_tokens=MAX_DRAFT_TOKENS).token_ids
    assert pipe.generate([5, 6, 7], max_new_tokens=3, draft_tokens="auto").metrics.draft_tokens == "auto"


@pytest.mark.parametrize(("k", "needle"), [("100", "1..16"), ("0", "--no-draft")])
def test_cli_draft_tokens_out_of_range(random_pipeline, k, needle):
    assert_user_error(run_cli(str(random_pipeline), "--prompt", "x", "--draft-tokens", k), needle)


def test_cli_json_reports_the_auto_choice(random_pipeline):
    proc = run_cli(str(random_pipeline), "--prompt", "def f(x):", "--max-new-tokens", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)["metrics"]
    assert metrics["draft_tokens"] == "auto"
    assert set(metrics["auto"]) >= {"chain", "first_k", "predicted_tokens_per_s", "measured_tokens_per_s"}


def test_constants_have_one_definition():
    from ov_spec.bench import config, speed, speed_model
    from ov_spec.runtime import limits, stateful

    assert stateful.STATEFUL_ROLLBACKS is limits.STATEFUL_ROLLBACKS
    assert config.ROLLBACK_CHOICES is limits.ROLLBACK_CHOICES
    assert range(1, limits.MAX_DRAFT_TOKENS + 1) == speed.K_RANGE
    assert speed_model.best_k(0.999, 0.0) == limits.MAX_DRAFT_TOKENS


def test_chain_length_mismatch_message(pipe):
    with pytest.raises(UserError) as err:
        pipe.generate("def f():", draft_tokens=[2, 2])
    message = str(err.value)
    assert "1 verifying level " in message and "levels" not in message.split("has")[1].split("(")[0]
    assert "pass one length per verifying level" in message


def test_levels_are_the_verifying_levels_and_name_their_drafter(pipe):
    m = pipe.generate([5, 6, 7, 8], max_new_tokens=8, draft_tokens=2).metrics
    assert [lv.name for lv in m.levels] == ["target"]  # the lowest drafter verifies nothing
    assert m.levels[0].drafter == "draft1"


def test_prompt_lookup_time_is_draft_time(pipe):
    from ov_spec.runtime import proposers

    slow = proposers.NgramProposer._lookup

    def lookup(self, seq, k):  # a measurable search
        import time

        time.sleep(0.002)
        return slow(self, seq, k)

    proposers.NgramProposer._lookup = lookup
    try:
        m = pipe.generate([5, 6, 5, 6, 5, 6, 5], max_new_tokens=12, models=["target"], ngram=True,
                          draft_tokens=4).metrics  # fmt: skip
    finally:
        proposers.NgramProposer._lookup = slow
    assert m.draft_s >= 0.002 * m.target_passes  # no draft model, yet the search is drafting
    assert abs(m.draft_s + m.target_s + m.rollback_s + m.other_s - m.total_s) < 1e-6


def test_mean_draft_length_is_one_definition(pipe):
    """Passes where prompt lookup found nothing count as 0 in both the runtime and the bench."""
    from ov_spec.bench.measure import Record
    from ov_spec.bench.stats import Summary, _pool_ov_spec
    from ov_spec.bench.sweep import Case

    result = pipe.generate([9, 8, 7, 6, 5, 9, 8, 40, 41], max_new_tokens=24, models=["target"], ngram=True,
                           draft_tokens=4)  # fmt: skip
    level = result.metrics.levels[0]
    assert level.draft_lengths.get(0, 0) > 0  # some passes drafted nothing
    assert sum(level.draft_lengths.values()) == level.passes
    assert level.mean_draft_length == pytest.approx(level.drafted / level.passes)
    case = Case(variant="v", engine="ov_spec", chain=("target",), devices=("CPU",), k=4, ngram=True)
    summary = Summary(case)
    _pool_ov_spec(summary, [Record(case.id, 0, 0, generated=24, metrics=result.metrics.to_dict())])
    assert summary.levels[0].mean_draft_length == pytest.approx(level.mean_draft_length)


def test_damaged_weights_are_one_line_naming_the_file(random_pipeline, tmp_path):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(random_pipeline, folder, ignore=shutil.ignore_patterns(".ov_spec"))
    weights = folder / "draft1" / "openvino_model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match="draft1/openvino_model.bin"):
        ov_spec.load(folder)
    assert_user_error(run_cli(str(folder), "--prompt", "x"), "draft1/openvino_model.bin", "re-export")


def test_unreadable_ir_is_one_line(random_pipeline, tmp_path):
    import shutil

    folder = tmp_path / "bad-xml"
    shutil.copytree(random_pipeline, folder, ignore=shutil.ignore_patterns(".ov_spec"))
    xml = folder / "target" / "openvino_model.xml"
    xml.write_text(xml.read_text()[:200])
    assert_user_error(run_cli(str(folder), "--prompt", "x"), "target/openvino_model.xml")
