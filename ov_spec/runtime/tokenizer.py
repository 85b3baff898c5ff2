"""Tokenization without transformers: the openvino-tokenizers IRs exported beside the models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer operations with OpenVINO)

from ov_spec.errors import UserError


class Tokenizer:
    """Encode text to ids and decode ids to text with the exported tokenizer/detokenizer IRs."""

    def __init__(self, core: ov.Core, folder: Path, info: dict[str, Any]) -> None:
        # String work gains nothing from threads; waking a thread pool costs more (0.6 vs 0.2 ms).
        props = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"}
        self._encoder = core.compile_model(folder / "openvino_tokenizer.xml", "CPU", props)
        self._decoder = core.compile_model(folder / "openvino_detokenizer.xml", "CPU", props)
        self.eos_token_ids: set[int] = {int(i) for i in info.get("eos_token_ids", [])}
        self.chat_template: str | None = info.get("chat_template")
        self._special = dict(info.get("special_tokens", {}))  # bos_token etc., used by chat templates

    def encode(self, text: str) -> list[int]:
        out = self._encoder([text])
        return [int(x) for x in np.asarray(out["input_ids"])[0]]

    def decode(self, ids: Sequence[int]) -> str:
        if not ids:
            return ""
        out = self._decoder(np.asarray([list(ids)], dtype=np.int64))
        return str(out["string_output"][0])

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """Render the model's own chat template (Hugging Face Jinja format) for a generation."""
        if not self.chat_template:
            raise UserError(
                "this model has no chat template; drop --chat / chat=True and pass the raw prompt"
            )
        try:
            from jinja2.sandbox import ImmutableSandboxedEnvironment
        except ModuleNotFoundError:
            raise UserError("chat templates need jinja2: pip install jinja2 (or pass a raw prompt)") from None
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = env.from_string(self.chat_template)
        return template.render(messages=messages, add_generation_prompt=True, **self._special)


class IncrementalDecoder:
    """Turns a growing list of token ids into text chunks for streaming.

    Re-decodes the generated ids and emits only the new suffix; holds text back while it ends in
    an incomplete UTF-8 sequence (U+FFFD) so a multi-byte character is never split.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""  # text emitted so far

    def push(self, ids: Sequence[int]) -> str:
        """Add generated ids; return the text they complete (possibly empty)."""
        self.ids.extend(ids)
        full = self._tokenizer.decode(self.ids)
        if full.endswith("\ufffd"):
            return ""
        # Decoding more ids only appends text for byte-level BPE and SentencePiece alike.
        chunk = full[len(self.text) :]
        self.text = full
        return chunk
