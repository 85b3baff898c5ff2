"""Streamed text is the final text, whatever how tokens were grouped into steps."""

from __future__ import annotations

import pytest

import ov_spec
from ov_spec.runtime.stops import StopText

# "é" is two UTF-8 bytes; a byte-level tokenizer can split them across tokens.
_PIECES = {1: b"ab", 2: b"c\xc3", 3: b"\xa9d", 4: b"X"}


def _decode(ids):
    return b"".join(_PIECES[i] for i in ids).decode("utf-8", errors="replace")


@pytest.mark.parametrize("stops", [[], ["zz"]])
def test_complete_text_before_an_incomplete_character_is_not_lost(stops):
    state = StopText(_decode, stops)
    sent = state.push([1]) + state.push([2])  # "abc" + half of "é"
    assert sent.startswith("ab") and "\ufffd" not in sent
    sent += state.finish()  # generation ends here: the rest goes out as decoded
    assert sent == state.text == _decode([1, 2])
    state = StopText(_decode, stops)
    sent = state.push([1]) + state.push([2]) + state.push([3]) + state.finish()
    assert sent == state.text == "abcéd"


def test_stream_equals_generate_equals_decode(random_pipeline):
    """The prompt where a speculative step ended in a split character (found by the server tests)."""
    pipe = ov_spec.load(random_pipeline)
    prompt = "import os\nimport sys\n\ndef main(argv):\n    "
    for options in ({"use_draft": False}, {"draft_tokens": 4}, {"draft_tokens": 1}):
        plain = pipe.generate(prompt, max_new_tokens=8, **options)
        chunks: list[str] = []
        streamed = pipe.generate(prompt, max_new_tokens=8, streamer=chunks.append, **options)
        assert streamed.token_ids == plain.token_ids
        assert "".join(chunks) == streamed.text == plain.text == pipe.tokenizer.decode(plain.token_ids)
