"""The runtime's tokenizer (openvino-tokenizers IRs) against the Hugging Face tokenizer it came from."""

from __future__ import annotations

import pytest

import ov_spec
from ov_spec.runtime.tokenizer import IncrementalDecoder

TEXTS = ["def f(x):\n    return x + 1\n", "naïve café — “quotes” 😀 漢字", "   leading spaces\tand tabs", "a"]


@pytest.fixture(scope="module")
def pipe(random_pipeline):
    return ov_spec.load(random_pipeline)


@pytest.fixture(scope="module")
def hf(random_pipeline):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(random_pipeline / "tokenizer")


@pytest.mark.parametrize("text", TEXTS)
def test_encode_decode_match_hugging_face(pipe, hf, text):
    ids = pipe.tokenizer.encode(text)
    assert ids == hf(text)["input_ids"]
    assert pipe.tokenizer.decode(ids) == hf.decode(ids, skip_special_tokens=True) == text


def test_incremental_decoding_never_splits_a_character(pipe):
    text = TEXTS[1]
    ids = pipe.tokenizer.encode(text)
    decoder = IncrementalDecoder(pipe.tokenizer)
    chunks = [decoder.push([i]) for i in ids]
    assert "".join(chunks) == text
    assert all("\ufffd" not in c for c in chunks)


def test_chat_template_matches_hugging_face(pipe, hf):
    messages = [{"role": "user", "content": "Write a function."}]
    want = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert pipe.tokenizer.apply_chat_template(messages) == want
    result = pipe.generate("Write a function.", chat=True, max_new_tokens=4)
    assert result.prompt_token_ids == hf(want)["input_ids"]
