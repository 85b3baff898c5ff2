"""The quick start's main job (``python -m ov_spec.demo``) on the seconds-fast random pair."""

from __future__ import annotations

import re

import pytest

from ov_spec import demo
from ov_spec.errors import UserError


def test_demo_runs_end_to_end(random_pair, tmp_path, capsys):
    out = tmp_path / "pipe"
    args = ["--preset", "random", "--output", str(out), "--max-new-tokens", "12", "--repeats", "1"]
    assert demo.main(args) == 0
    printed = capsys.readouterr().out
    assert "identical to target-only greedy output: 4/4 prompts" in printed
    assert re.search(r"acceptance rate: \d+\.\d%", printed)
    assert re.search(r"speedup: \d+\.\d\dx", printed)
    assert (out / "ov_spec.json").is_file()


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


def test_bad_repeats_is_a_user_error_before_any_work():
    with pytest.raises(UserError, match="--repeats must be at least 1"):
        demo.main(["--repeats", "0"])
