"""Long prompts, target-only: ov_spec vs openvino.genai time to first token and per output token.

    python scripts/long_prompt_ttft.py PIPELINE [--tokens 100,800] [--repeats 3]

Each prompt is a fresh slice of the standard library's source of about N tokens. genai runs
twice per prompt: with its default scheduler (prefix caching on, so the second call of the
same prompt skips its prefill) and with ``enable_prefix_caching = False`` (what the benchmark
uses); ov_spec has no prefix cache. Medians over repeats, side by side in one process.
"""

from __future__ import annotations

import argparse
import email.message
import http.client
import inspect
import json
import statistics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pipeline")
    p.add_argument("--tokens", default="100,800")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=32)
    args = p.parse_args()
    import openvino_genai as g

    import ov_spec

    pipe = ov_spec.load(args.pipeline)
    target = str(pipe.folder / pipe.manifest.target.path)
    cached = g.LLMPipeline(target, "CPU")
    scheduler = g.SchedulerConfig()
    scheduler.enable_prefix_caching = False
    uncached = g.LLMPipeline(target, "CPU", scheduler_config=scheduler)
    ids = pipe.tokenizer.encode(
        inspect.getsource(json.decoder) + inspect.getsource(email.message) + inspect.getsource(http.client)
    )
    cfg = g.GenerationConfig(max_new_tokens=args.max_new_tokens, apply_chat_template=False)
    for n in (int(x) for x in args.tokens.split(",")):
        rows = []
        for r in range(args.repeats + 1):  # the first round warms up
            prompt = pipe.tokenizer.decode(ids[r * 997 : r * 997 + n])
            m = pipe.generate(prompt, max_new_tokens=args.max_new_tokens, use_draft=False).metrics
            cached.generate([prompt], cfg)
            again = cached.generate([prompt], cfg).perf_metrics  # the same prompt: prefix cache hit
            fresh = uncached.generate([prompt], cfg).perf_metrics
            if r:
                rows.append(
                    (
                        m.ttft_s * 1e3,
                        fresh.get_ttft().mean,
                        again.get_ttft().mean,
                        m.tpot_s * 1e3,
                        fresh.get_tpot().mean,
                    )
                )
        med = [statistics.median(x[i] for x in rows) for i in range(5)]
        print(
            f"{n} prompt tokens: TTFT ov_spec {med[0]:.0f} ms, genai {med[1]:.0f} ms (prefix cache off), "
            f"{med[2]:.0f} ms (a repeated prompt, cache on); TPOT ov_spec {med[3]:.1f} ms, genai {med[4]:.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
