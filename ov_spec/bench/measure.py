"""Run the sweep: warm-up, then repeated timed passes over the prompts, interleaved across cases.

Interleaving is prompt-major: within each repeat, every case generates from one prompt before
the next prompt starts, in alternating order (forwards, then backwards). All cases of a repeat
run in the same stretch of time on a shared machine, so a slow spell of a few seconds hits them
alike, and the ratios between cases are taken per repeat (see :mod:`ov_spec.bench.stats`). With
case-major passes (every case over all prompts in turn) the same code's ratio to target-only
had differed by up to 20% between runs on the 2-core VM. Ctrl-C stops the loop cleanly: what
was measured so far is kept and :attr:`SweepRun.interrupted` is set."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ov_spec.bench.config import Prompt
from ov_spec.bench.runners import Outcome
from ov_spec.bench.sweep import Case
from ov_spec.errors import UserError

RunFn = Callable[[Case, str, int], Outcome]


@dataclass
class Record:
    """One timed generation of one case on one prompt."""

    case: str  # Case.id
    prompt: int  # index into the prompt list
    repeat: int
    seconds: float = 0.0
    generated: int = 0
    tokens_per_s: float = 0.0
    prompt_tokens: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # first line of the engine's error when the run failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepRun:
    """Everything the timed loop produced."""

    records: list[Record] = field(default_factory=list)
    # case id -> prompt index -> {"text", "token_ids"} of its first successful timed run
    outputs: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0


def sample_seed(base: int, repeat: int, prompt: int) -> int:
    """Seed of one generation: equal across cases, so cases see the same random streams."""
    return base + 1000 * repeat + prompt


def run_sweep(
    cases: Sequence[Case],
    prompts: Sequence[Prompt],
    run: RunFn,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    quiet: bool = False,
) -> SweepRun:
    """Measure every case on every prompt ``repeats`` times after ``warmup`` untimed runs each."""
    from tqdm.auto import tqdm

    out = SweepRun()
    start = time.perf_counter()
    total = len(cases) * (warmup + repeats * len(prompts))
    bar = tqdm(total=total, unit="gen", desc="bench", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    try:
        for case in cases:
            bar.set_postfix_str(f"warm-up {case.id}"[:60])
            for w in range(warmup):
                record, _ = _one(run, case, prompts[w % len(prompts)].text, -1, w, seed)
                if record.error:  # kept (repeat -1) so a case that cannot even start is visible
                    out.records.append(record)
                bar.update()
        for repeat in range(repeats):
            for i, prompt in enumerate(prompts):
                bar.set_postfix_str(f"{repeat + 1}/{repeats} prompt {i + 1}/{len(prompts)}")
                for case in cases if (repeat + i) % 2 == 0 else cases[::-1]:
                    record, outcome = _one(run, case, prompt.text, repeat, i, seed)
                    out.records.append(record)
                    if outcome is not None and i not in out.outputs.setdefault(case.id, {}):
                        out.outputs[case.id][i] = {"text": outcome.text, "token_ids": outcome.token_ids}
                    bar.update()
    except KeyboardInterrupt:
        out.interrupted = True
    finally:
        bar.close()
    out.seconds = time.perf_counter() - start
    return out


def _one(
    run: RunFn, case: Case, text: str, repeat: int, index: int, seed: int
) -> tuple[Record, Outcome | None]:
    record = Record(case=case.id, prompt=index, repeat=repeat)
    try:
        outcome = run(case, text, sample_seed(seed, max(repeat, 0), index))
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as err:  # an engine failure is a result (e.g. a baseline that crashes), not a stop
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        record.error = f"{type(err).__name__}: {first[:200]}"
        return record, None
    record.seconds = outcome.seconds
    record.generated = outcome.generated
    record.tokens_per_s = outcome.tokens_per_s
    record.prompt_tokens = outcome.prompt_tokens
    record.metrics = outcome.metrics
    return record, outcome
