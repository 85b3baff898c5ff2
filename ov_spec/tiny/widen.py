"""Function-preserving widening of a Llama model (Net2Net style).

The wide model computes the same logits as the narrow one: it costs what a big model costs
(for benchmarks) while predicting like the trained small one.

How: the residual stream is zero-padded from ``h`` to ``H`` dims and nothing ever writes into
the new dims, so they stay zero. RMSNorm then sees ``mean(x^2)`` shrunk by ``h / H``; scaling
its weights by ``sqrt(h / H)`` and eps by ``h / H`` gives exactly the old output. New attention
heads and MLP units read the (zero) new dims and their outputs are multiplied by zero columns of
``o_proj`` / ``down_proj``. Every weight matrix of a Llama therefore widens the same way: the
old matrix is the top-left block, the rest is zero. Head order is kept, and the GQA group size
(heads per kv head) must not change, so old head ``i`` still reads old kv head ``i // group``.
Finally, optional small noise on the zero entries keeps quantizers from seeing all-zero rows
and columns; it perturbs the logits only slightly (the build reports by how much).
"""

from __future__ import annotations

import math

from ov_spec.errors import UserError


def widen_llama(
    model,
    hidden_size: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    noise: float = 0.0,
    seed: int = 0,
):
    """A wider copy of the LlamaForCausalLM ``model`` with the same function.

    ``noise`` is the std of the noise added to new (zero) matrix entries, relative to the std of
    the original matrix; 0 gives logits equal to the original's up to float rounding.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    old = model.config
    h = old.hidden_size
    head_dim = getattr(old, "head_dim", None) or h // old.num_attention_heads
    group = old.num_attention_heads // old.num_key_value_heads
    checks = [
        (hidden_size >= h, f"hidden_size {hidden_size} < {h}"),
        (num_heads * head_dim == hidden_size, f"num_heads * head_dim ({head_dim}) != hidden_size"),
        (num_heads >= old.num_attention_heads, "fewer attention heads than the source"),
        (num_kv_heads >= old.num_key_value_heads, "fewer kv heads than the source"),
        (num_heads == num_kv_heads * group, f"heads per kv head must stay {group}"),
        (intermediate_size >= old.intermediate_size, "smaller intermediate_size than the source"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"cannot widen: {message}; choose sizes at least as large as the source's")

    ratio = h / hidden_size
    config_dict = old.to_dict()
    config_dict.update(
        hidden_size=hidden_size,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate_size,
        rms_norm_eps=old.rms_norm_eps * ratio,
    )
    config = LlamaConfig.from_dict(config_dict)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the init is overwritten below; seeded so nothing is left random
        wide = LlamaForCausalLM(config).float()

    generator = torch.Generator().manual_seed(seed)
    source = dict(model.named_parameters())
    norm_scale = math.sqrt(ratio)
    with torch.no_grad():
        # named_parameters lists a tied lm_head once, under the embedding's name.
        for name, param in wide.named_parameters():
            src = source[name].detach().float()
            if src.ndim == 1:  # RMSNorm weight
                param.fill_(norm_scale)
                param[: src.shape[0]] = src * norm_scale
                continue
            rows, cols = src.shape
            new = torch.zeros(param.shape)
            if noise > 0:
                new.normal_(0.0, noise * float(src.std()), generator=generator)
            new[:rows, :cols] = src
            param.copy_(new)
    wide.tie_weights()
    return wide.eval()
