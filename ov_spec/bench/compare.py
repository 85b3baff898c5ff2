"""Conclusions from the summaries: the recommendation and the findings (measured ratios).

Every comparison is made inside one *group*: the same target files on the same target device,
greedy decoding, measured in the same run on the same prompts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ov_spec.bench.speed import AnalyticFit, IdealRow
from ov_spec.bench.stats import Summary
from ov_spec.bench.sweep import Case, Variant, rollback_suffix


@dataclass
class Finding:
    """One conclusion and its number (a ratio where there is one).

    The bench reports measurements and ratios only; judging them against the project's own goals
    is done outside it (the README's results section).
    """

    topic: str
    text: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fastest(summaries: Sequence[Summary], where: Callable[[Case], bool] = lambda c: True) -> Summary | None:
    """The measured summary with the highest median tokens/s among cases ``where`` accepts."""
    ok = [s for s in summaries if s.runs and s.tokens_per_s > 0 and where(s.case)]
    return max(ok, key=lambda s: s.tokens_per_s) if ok else None


def recommend(summaries: Sequence[Summary], fits: Sequence[AnalyticFit]) -> dict[str, Any]:
    """The fastest configuration measured, and what the analytic model predicts for ones not run."""
    best = fastest(summaries)
    lossless = fastest(summaries, lambda c: c.lossless)
    predictions = []
    for fit in fits:
        run_ks = set(fit.measured)
        predictions.append(
            {
                "variant": fit.variant,
                "chain": fit.chain,
                "devices": fit.devices,
                "alpha": fit.alpha,
                "c": fit.c,
                "best_k": fit.best_k,
                "predicted_speedup": fit.best_predicted,
                "measured_at_best_k": fit.measured.get(fit.best_k),
                "not_run": fit.best_k not in run_ks,
            }
        )
    predictions.sort(key=lambda p: -p["predicted_speedup"])
    return {
        "fastest": _brief(best),
        "fastest_lossless": _brief(lossless),
        "predictions": predictions,
    }


def _brief(s: Summary | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "id": s.case.id,
        "tokens_per_s": s.tokens_per_s,
        "speedup": s.speedup,
        "lossless": s.case.lossless,
        "acceptance_rate": s.acceptance_rate,
    }


def findings(
    summaries: Sequence[Summary],
    ideal: Sequence[IdealRow],
    variants: Sequence[Variant],
    outputs: dict[str, dict[int, dict]],
) -> list[Finding]:
    """All comparisons the README reports, per group of same target files and device."""
    groups: dict[tuple, list[Summary]] = defaultdict(list)
    for s in summaries:
        groups[(s.case.target_key, s.case.devices[0], s.case.sampling)].append(s)
    by_label = {v.label: v for v in variants}
    largest = max(variants, key=lambda v: v.manifest.target.num_parameters)
    out: list[Finding] = []
    for (_, device, sampling), members in groups.items():
        name = "/".join(dict.fromkeys(s.case.variant for s in members)) + f" @{device}"
        if sampling != "greedy":
            out += _sampling_findings(name, members)
            continue
        out += _engine_findings(name, members, outputs)
        out += _method_findings(name, members, by_label)
        if any(s.case.variant == largest.label for s in members):
            out += _ideal_findings(name, [r for r in ideal if r.variant == largest.label])
    return out


def _ratio_text(a: Summary, b: Summary) -> str:
    return f"{a.case.label} {a.tokens_per_s:.1f} tok/s vs {b.case.label} {b.tokens_per_s:.1f} tok/s"


def _engine_findings(name: str, members: list[Summary], outputs: dict) -> list[Finding]:
    """ov_spec vs openvino.genai, and whether outputs equal target-only outputs."""
    out = []
    ov_best = fastest(members, lambda c: c.engine == "ov_spec" and c.speculative and c.lossless)
    g_best = fastest(members, lambda c: c.engine == "genai" and c.speculative)
    if ov_best and g_best:
        r = ov_best.tokens_per_s / g_best.tokens_per_s
        out.append(
            Finding(
                f"{name}: fastest ov_spec vs fastest genai speculative",
                f"{r:.2f}x ({_ratio_text(ov_best, g_best)})",
                r,
            )
        )
    pairs = []
    for g in members:
        c = g.case
        if c.engine != "genai" or not c.k or c.confidence or c.ngram or len(c.chain) != 2 or not g.runs:
            continue
        twin = fastest(  # the faster rollback mode when both were run
            members,
            lambda x, c=c: _plain(x) and x.chain == c.chain and x.k == c.k and x.devices == c.devices,
        )
        if twin:
            pairs.append((twin.tokens_per_s / g.tokens_per_s, twin, g))
    if pairs:
        worst = min(pairs, key=lambda p: p[0])
        detail = ", ".join(f"{'+'.join(t.case.chain)} k={t.case.k}: {r:.2f}x" for r, t, _ in pairs)
        out.append(
            Finding(
                f"{name}: ov_spec vs genai, same draft and k",
                f"worst {worst[0]:.2f}x; {detail}",
                worst[0],
            )
        )
    ov_t = fastest(members, lambda c: c.engine == "ov_spec" and not c.speculative)
    g_ts = [s for s in members if s.case.engine == "genai" and not s.case.speculative and s.runs]
    if ov_t and g_ts:
        g_t = max(g_ts, key=lambda s: s.tokens_per_s)
        r = ov_t.tokens_per_s / g_t.tokens_per_s
        each = ", ".join(f"{s.case.backend or 'default'} {s.tokens_per_s:.1f}" for s in g_ts)
        out.append(
            Finding(
                f"{name}: ov_spec target-only vs genai target-only",
                f"{r:.2f}x of genai's fastest target-only (ov_spec {ov_t.tokens_per_s:.1f} tok/s; genai {each} tok/s)",
                r,
            )
        )
        same = _cross_engine_equal(outputs.get(ov_t.case.id, {}), outputs.get(g_t.case.id, {}))
        if same is not None:
            out.append(
                Finding(
                    f"{name}: ov_spec target-only text == genai target-only text",
                    f"{same[0]}/{same[1]} prompts identical (independent check of greedy decoding)",
                    same[0] / same[1] if same[1] else None,
                )
            )
    for engine in ("ov_spec", "genai"):
        spec = [
            s
            for s in members
            if s.case.engine == engine and s.case.speculative and s.case.lossless and s.matches
        ]
        if not spec:
            continue
        same = sum(sum(1 for m in s.matches if m) for s in spec)
        total = sum(sum(1 for m in s.matches if m is not None) for s in spec)
        diff = [
            f"{s.case.label} ({s.matches_text})"
            for s in spec
            if s.match_rate is not None and s.match_rate < 1
        ]
        out.append(
            Finding(
                f"{name}: {engine} speculative output == its target-only output",
                f"{same}/{total} (config x prompt) identical"
                + (f"; differing: {', '.join(diff[:6])}" if diff else "; all identical"),
                same / total if total else None,
            )
        )
    return out


def _cross_engine_equal(a: dict[int, dict], b: dict[int, dict]) -> tuple[int, int] | None:
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return sum(a[i]["text"] == b[i]["text"] for i in common), len(common)


def _method_findings(name: str, members: list[Summary], variants: dict[str, Variant]) -> list[Finding]:
    """Cascade vs pairs, self-draft formats, adaptive, prompt lookup, MTAD, confidence stop."""
    out = []
    ov = [s for s in members if s.case.engine == "ov_spec" and s.runs]

    def best(pred: Callable[[Case], bool]) -> Summary | None:
        return fastest(ov, pred)

    cascade = best(lambda c: c.lossless and len(c.chain) > 2)
    pair = best(lambda c: c.lossless and len(c.chain) == 2)
    if cascade and pair:
        r = cascade.tokens_per_s / pair.tokens_per_s
        out.append(
            Finding(f"{name}: 3-level cascade vs best 2-level", f"{r:.2f}x ({_ratio_text(cascade, pair)})", r)
        )
    formats: dict[str, Summary] = {}
    for s in ov:
        entry = _self_draft(s.case, variants)
        if (
            entry
            and s.case.lossless
            and (entry not in formats or s.tokens_per_s > formats[entry].tokens_per_s)
        ):
            formats[entry] = s
    if len(formats) > 1:
        parts = [
            f"{fmt}: {s.tokens_per_s:.1f} tok/s ({s.case.variant}: {s.case.label}"
            + (f", speedup {s.speedup:.2f}x)" if s.speedup else ")")
            for fmt, s in sorted(formats.items(), key=lambda kv: -kv[1].tokens_per_s)
        ]
        pair_acc = {
            fmt: s.acceptance_rate
            for fmt, s in _self_draft_pairs(ov, variants).items()
            if s.acceptance_rate is not None
        }
        acc = ", ".join(f"{fmt} {a:.0%}" for fmt, a in pair_acc.items())
        out.append(
            Finding(
                f"{name}: self-draft weight formats (best chain using each)",
                "; ".join(parts) + (f"; acceptance of target+self_draft: {acc}" if acc else ""),
            )
        )
    for s in ov:
        c = s.case
        if not c.adaptive:
            continue
        fixed = best(
            lambda x, c=c: (
                _plain(x) and x.chain == c.chain and x.devices == c.devices and x.rollback == c.rollback
            )
        )
        if fixed:
            r = s.tokens_per_s / fixed.tokens_per_s
            out.append(
                Finding(
                    f"{name}: adaptive vs best fixed k, {'+'.join(c.chain)}{rollback_suffix(c.rollback)}",
                    f"{r:.2f}x (adaptive {s.tokens_per_s:.1f} tok/s, mean k {s.mean_draft_length or 0:.1f}; "
                    f"best fixed {fixed.case.mode} {fixed.tokens_per_s:.1f} tok/s)",
                    r,
                )
            )
    for engine in ("ov_spec", "genai"):
        lookup = fastest(members, lambda c, e=engine: c.engine == e and c.method == "prompt lookup")
        if lookup and lookup.speedup is not None:
            acc = f", acceptance {lookup.acceptance_rate:.0%}" if lookup.acceptance_rate is not None else ""
            out.append(
                Finding(
                    f"{name}: prompt lookup ({engine})",
                    f"best {lookup.case.mode}: {lookup.tokens_per_s:.1f} tok/s, "
                    f"{lookup.speedup:.2f}x vs ov_spec target-only{acc}",
                    lookup.speedup,
                )
            )
    for s in ov:
        c = s.case
        if not c.mtad:
            continue
        plain = next(
            (
                x
                for x in ov
                if _plain(x.case)
                and (x.case.variant, x.case.chain, x.case.k, x.case.devices, x.case.rollback)
                == (c.variant, c.chain, c.k, c.devices, c.rollback)
            ),
            None,
        )
        if plain:
            r = s.tokens_per_s / plain.tokens_per_s
            ppl = ""
            if s.perplexity is not None and plain.perplexity is not None:
                ppl = f"; perplexity under the target {s.perplexity:.2f} vs {plain.perplexity:.2f} (plain = target's greedy text)"
            out.append(
                Finding(
                    f"{name}: MTAD vs plain, {c.variant} {'+'.join(c.chain)} k={c.k}",
                    f"{r:.2f}x speed (acceptance {s.acceptance_rate or 0:.0%} vs {plain.acceptance_rate or 0:.0%}){ppl}",
                    r,
                )
            )
    for s in ov:
        c = s.case
        if not c.confidence:
            continue
        g = fastest(
            members,
            lambda x, c=c: (
                x.engine == "genai" and x.confidence and (x.variant, x.chain) == (c.variant, c.chain)
            ),
        )
        vs = f"; genai conf={g.case.confidence:g}: {g.tokens_per_s:.1f} tok/s" if g else ""
        out.append(
            Finding(
                f"{name}: confidence stop, {c.variant} {'+'.join(c.chain)}{rollback_suffix(c.rollback)}",
                f"ov_spec {c.mode}: {s.tokens_per_s:.1f} tok/s, mean k {s.mean_draft_length or 0:.1f}{vs}",
                s.tokens_per_s / g.tokens_per_s if g else None,
            )
        )
    return out


def _plain(c: Case) -> bool:
    """An ov_spec run with a model draft at a fixed k (no adaptive, confidence, MTAD, lookup)."""
    return c.engine == "ov_spec" and c.k > 0 and not (c.adaptive or c.confidence or c.mtad or c.ngram)


def _self_draft(case: Case, variants: dict[str, Variant]) -> str | None:
    """Weight format of the self-draft in a case's chain, if it has one."""
    manifest = variants[case.variant].manifest
    for name in case.chain[1:]:
        entry = manifest.model(name)
        if entry.role == "self_draft":
            return entry.weight_format
    return None


def _self_draft_pairs(ov: list[Summary], variants: dict[str, Variant]) -> dict[str, Summary]:
    """The best plain [target, self_draft] run per self-draft format."""
    out: dict[str, Summary] = {}
    for s in ov:
        fmt = _self_draft(s.case, variants)
        better = fmt is not None and (fmt not in out or s.tokens_per_s > out[fmt].tokens_per_s)
        if better and len(s.case.chain) == 2 and _plain(s.case):
            out[fmt] = s
    return out


def _ideal_findings(name: str, rows: Sequence[IdealRow]) -> list[Finding]:
    """Measured / ideal on the largest target."""
    model_rows = [r for r in rows if r.td_source == "step_costs"]
    if not model_rows:
        return []
    best = max(model_rows, key=lambda r: r.measured)
    detail = ", ".join(f"{r.chain} k={r.k}: {r.ratio:.0%}" for r in model_rows)
    overhead = sum(r.overhead_per_iter_ms for r in model_rows) / len(model_rows)
    return [
        Finding(
            f"{name}: measured / zero-overhead ideal (largest target)",
            f"{best.ratio:.0%} for the fastest ({best.chain} k={best.k}: {best.measured:.2f}x measured, "
            f"{best.ideal:.2f}x ideal); {detail}; loop overhead {overhead:.2f} ms per iteration",
            best.ratio,
        )
    ]


def _sampling_findings(name: str, members: list[Summary]) -> list[Finding]:
    ov = fastest(members, lambda c: c.engine == "ov_spec" and c.speculative and c.lossless)
    g = fastest(members, lambda c: c.engine == "genai" and c.speculative)
    if not ov:
        return []
    text = (
        f"ov_spec best {ov.case.label}: {ov.tokens_per_s:.1f} tok/s ({ov.speedup or 0:.2f}x vs target-only)"
    )
    if g:
        text += f"; genai best {g.case.label}: {g.tokens_per_s:.1f} tok/s"
    return [Finding(f"{name}: sampling", text, ov.tokens_per_s / g.tokens_per_s if g else None)]
