"""Training loops: the target on next-token loss, the draft partly by distillation from it.

A run has a fixed number of steps (so the same seed gives the same weights); a wall-clock
deadline can only cut it short, and the result says so.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

from ov_spec.tiny.presets import TrainSpec


@dataclass
class TrainResult:
    """What a training run did."""

    steps_planned: int
    steps_done: int
    tokens_seen: int
    # The training objective (for a distilled draft: the CE/KL mix); None if no step ran.
    first_loss: float | None
    last_loss: float | None  # mean of the last 10 steps
    seconds: float
    budget_hit: bool
    autocast: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def bf16_autocast_available() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 / AMX): then bf16 trains ~1.5x faster.

    Without it bf16 is emulated and slower than float32, so training stays in float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def numerics_fingerprint() -> dict[str, Any]:
    """What decides the training arithmetic, hence the trained bytes, on this machine.

    Measured: the thread count does not change a single byte (1, 2 and 4 threads give identical
    weights), but the instruction set torch and oneDNN dispatch to does (``ATEN_CPU_CAPABILITY=avx2``
    or ``ONEDNN_MAX_CPU_ISA=AVX2`` on an AVX-512 machine, or bf16 autocast off, each give other
    weights of the same quality). A build is therefore byte-reproducible on CPUs of the same kind
    only, and these values are part of the cache key.
    """
    import torch

    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_autocast": bf16_autocast_available(),
        "amx": _cpu_has("amx_tile"),
    }


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return flag in f.read().split()
    except OSError:
        return False


class WindowSampler:
    """Random fixed-length windows from one token stream, in an order fixed by the seed."""

    def __init__(self, tokens, seq_len: int, seed: int):
        import torch

        assert tokens.numel() > seq_len + 1, "not enough training tokens for one window"
        self.tokens = tokens
        self.seq_len = seq_len
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, batch_size: int):
        """``[batch_size, seq_len + 1]`` int64 windows (inputs are ``[:, :-1]``, labels ``[:, 1:]``)."""
        import torch

        high = self.tokens.numel() - self.seq_len - 1
        starts = torch.randint(0, high, (batch_size,), generator=self.generator)
        offsets = torch.arange(self.seq_len + 1)
        return self.tokens[starts[:, None] + offsets[None, :]].long()


def _optimizer(model, spec: TrainSpec):
    import torch

    # No weight decay on norms (1-D): decaying them toward 0 just fights the normalisation.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": spec.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=(0.9, 0.95), eps=1e-8)


def lr_at(step: int, spec: TrainSpec) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak (short runs need the high peak)."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _loss(model, inputs, labels, teacher, distill_weight: float, use_bf16: bool):
    """Next-token cross-entropy, mixed with KL(teacher || model) when a teacher is given."""
    import torch
    import torch.nn.functional as F

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        logits = model(input_ids=inputs).logits
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(input_ids=inputs).logits
    # Losses in float32: bf16 log-softmax over the vocabulary loses too much precision.
    logits = logits.float()
    vocab = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1))
    if teacher is None:
        return loss
    kl = F.kl_div(
        F.log_softmax(logits, dim=-1).reshape(-1, vocab),
        F.log_softmax(teacher_logits.float(), dim=-1).reshape(-1, vocab),
        log_target=True,
        reduction="batchmean",
    )
    return (1.0 - distill_weight) * loss + distill_weight * kl


def train_model(
    model,
    tokens,
    spec: TrainSpec,
    seed: int,
    deadline: float | None = None,
    teacher=None,
    progress: bool = False,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in place on windows of ``tokens`` (a 1-D int tensor).

    With ``teacher`` and ``spec.distill_weight > 0`` the loss is
    ``(1 - w) * CE(labels) + w * KL(teacher || model)``. ``deadline`` is a ``time.monotonic()``
    value; reaching it stops training early (``budget_hit``).
    """
    import torch

    use_bf16 = bf16_autocast_available()
    sampler = WindowSampler(tokens, spec.seq_len, seed)
    optimizer = _optimizer(model, spec)
    distill = teacher is not None and spec.distill_weight > 0
    if teacher is not None:
        teacher.eval()
    model.train()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        # In a log file (no terminal) every redraw is a new line: redraw rarely there.
        interval = 0.1 if sys.stderr.isatty() else 30.0
        bar = tqdm(
            total=spec.steps,
            desc=desc,
            unit="step",
            leave=False,
            mininterval=interval,
            maxinterval=max(interval, 10.0),
        )

    losses: list[float] = []
    start = time.monotonic()
    budget_hit = False
    steps_done = 0
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout-free, but keep any stray randomness seeded too
            for step in range(spec.steps):
                if deadline is not None and time.monotonic() >= deadline:
                    budget_hit = True
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, spec)
                window = sampler.batch(spec.batch_size)
                inputs, labels = window[:, :-1], window[:, 1:]
                loss = _loss(
                    model, inputs, labels, teacher if distill else None, spec.distill_weight, use_bf16
                )
                loss.backward()
                # Clipping keeps the high-learning-rate start of these short runs stable.
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                steps_done += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()  # also on Ctrl-C, so the error message starts on a clean line
    model.eval()
    tail = losses[-10:]
    return TrainResult(
        steps_planned=spec.steps,
        steps_done=steps_done,
        tokens_seen=steps_done * spec.batch_size * spec.seq_len,
        first_loss=round(losses[0], 4) if losses else None,
        last_loss=round(sum(tail) / len(tail), 4) if tail else None,
        seconds=round(time.monotonic() - start, 2),
        budget_hit=budget_hit,
        autocast="bf16" if use_bf16 else "off",
    )
