"""Byte-level BPE tokenizer trained locally, saved as ordinary Hugging Face tokenizer files.

Byte-level (GPT-2 style) so any text round-trips, and so openvino-tokenizers can convert it.
The special tokens and the chat template exist so chat code paths can be exercised; the models
are trained on code only and do not follow chat turns.
"""

from __future__ import annotations

import json
from pathlib import Path

EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [EOS_TOKEN, "<|system|>", "<|user|>", "<|assistant|>"]
EOS_ID = 0  # special tokens come first in the vocabulary, in the order above

# Each turn is "<|role|>\n{content}<|endoftext|>\n"; the generation prompt opens an assistant
# turn. Generation stops at <|endoftext|>, which is also the eos of generation_config.json.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|endoftext|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)


def train_bpe(texts: list[str], vocab_size: int):
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on ``texts`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        # All 256 byte symbols, so no input is ever out of vocabulary.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    assert tok.token_to_id(EOS_TOKEN) == EOS_ID
    return tok


def save_tokenizer(tok, folder: Path, max_length: int) -> None:
    """Write tokenizer.json, tokenizer_config.json and chat_template.jinja into ``folder``."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        chat_template=CHAT_TEMPLATE,
        model_max_length=max_length,
    )
    fast.save_pretrained(folder)
    # transformers 5 names its own backend class here, which transformers 4 cannot load; the
    # generic fast class loads in both. Older versions also read the template only from here.
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)
    config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def encode_texts(tok, texts: list[str]) -> list[int]:
    """Token ids of ``texts`` joined by the eos token (documents end with it, as in training)."""
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(EOS_ID)
    return ids
