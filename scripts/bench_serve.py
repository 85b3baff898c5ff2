#!/usr/bin/env python3
"""Load benchmark of ``python -m ov_spec.serve``: requests/s and latency against workers and decoding mode.

    python scripts/bench_serve.py PIPELINE [--workers 1,2] [--concurrency 1,4,8] [--requests 16]
        [--max-tokens 64] [--modes spec,target] [--prompts P.json] [--output DIR]

For each ``--workers`` value it starts the server as a subprocess on 127.0.0.1 (a free port),
waits for ``/health``, and for each mode (``spec``: the pipeline's default speculative chain;
``target``: target-only decoding on the same server, ``models=[target]``) and client concurrency
sends ``--requests`` streamed completions through the official openai client, after one warm-up
request. It reports requests/s, generated tokens/s, p50/p95 latency and p50 time to first token
(client-side, queue wait included), prints a Markdown table and writes ``bench_serve.json`` and
``bench_serve.md`` to ``--output``. Greedy decoding; every output is also checked to be the same
in both modes (speculative greedy decoding is lossless), and the report counts mismatches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai

from ov_spec.cli import run_cli
from ov_spec.errors import UserError
from ov_spec.manifest import Manifest

# Held-out-style code openings: the local pairs were trained on code.
DEFAULT_PROMPTS = [
    "def read_config(path):\n    ",
    "class LRUCache:\n    def __init__(self, capacity):\n        ",
    "import os\nimport sys\n\ndef main(argv):\n    ",
    "def parse_args(argv=None):\n    parser = argparse.ArgumentParser(",
    "    for i, line in enumerate(lines):\n        ",
    "def _quote(s):\n    if not s:\n        ",
    "class Token:\n    def __repr__(self):\n        ",
    "try:\n    import json\nexcept ImportError:\n    ",
]


def csv_ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_serve.py", description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="pipeline folder")
    p.add_argument("--workers", type=csv_ints, default=[1, 2], help="server --workers values (default 1,2)")
    p.add_argument("--concurrency", type=csv_ints, default=[1, 4], help="requests in flight (default 1,4)")
    p.add_argument("--requests", type=int, default=16, help="timed requests per configuration (default 16)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--modes", default="spec,target", help="spec (the pipeline's chain), target (target-only)")
    p.add_argument(
        "--prompts", type=Path, help="JSON list of prompt strings (default: 8 built-in code openings)"
    )
    p.add_argument(
        "--server-arg", action="append", default=[], help="extra argument for the server (repeatable)"
    )
    p.add_argument("--output", "-o", type=Path, default=Path("out/bench-serve"))
    return p


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m ov_spec.serve`` in a subprocess, up once /health answers 200."""

    def __init__(self, folder: Path, workers: int, extra: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "ov_spec.serve", str(folder), "--port", str(self.port)]
        cmd += ["--workers", str(workers), "--max-queue", "1024", "--log-level", "warning", *extra]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 600
        while True:
            if self.proc.poll() is not None:
                raise UserError(f"the server exited: {self.proc.stderr.read().strip()}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise UserError("the server did not become healthy within 10 minutes")
            time.sleep(0.5)

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def one_request(
    client: openai.AsyncOpenAI, model: str, prompt: str, max_tokens: int, extra: dict
) -> dict:
    start = time.perf_counter()
    ttft, text, usage = None, [], None
    stream = await client.completions.create(
        model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True, extra_body=extra
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            ttft = ttft if ttft is not None else time.perf_counter() - start
            text.append(chunk.choices[0].text)
        usage = getattr(chunk, "usage", None) or usage
    return {
        "latency_s": time.perf_counter() - start,
        "ttft_s": ttft,
        "text": "".join(text),
        "tokens": usage.completion_tokens if usage else 0,
    }


async def run_config(
    url: str, model: str, prompts: list[str], n: int, concurrency: int, max_tokens: int, extra: dict
):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    await one_request(client, model, prompts[0], max_tokens, extra)  # warm-up
    todo = [prompts[i % len(prompts)] for i in range(n)]
    results: list[dict | None] = [None] * n
    slots = asyncio.Semaphore(concurrency)

    async def worker(i: int) -> None:
        async with slots:
            results[i] = await one_request(client, model, todo[i], max_tokens, extra)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(n)))
    wall = time.perf_counter() - start
    await client.close()
    return wall, [r for r in results if r is not None], todo


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    manifest = Manifest.read(args.folder)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"spec", "target"}:
        raise UserError(f"--modes takes spec and/or target, got {args.modes!r}")
    if args.requests < 1 or args.max_tokens < 1:
        raise UserError("--requests and --max-tokens must be at least 1")
    prompts = DEFAULT_PROMPTS
    if args.prompts:
        try:
            prompts = json.loads(args.prompts.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read --prompts {args.prompts}: {err}") from None
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) and p.strip() for p in prompts)
        ):
            raise UserError(f"--prompts {args.prompts} must hold a JSON list of non-empty strings")
    target = manifest.names()[0]
    extras = {"spec": {}, "target": {"models": [target]}}
    rows = []
    for workers in args.workers:
        with Server(args.folder, workers, args.server_arg) as server:
            model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
            texts: dict[str, str] = {}  # prompt -> first output seen (greedy: the same in every mode)
            for concurrency in args.concurrency:
                for mode in modes:
                    load = os.getloadavg()[0]
                    wall, results, todo = asyncio.run(
                        run_config(
                            server.url,
                            model,
                            prompts,
                            args.requests,
                            concurrency,
                            args.max_tokens,
                            extras[mode],
                        )
                    )
                    mismatches = 0
                    for p, r in zip(todo, results):
                        mismatches += texts.setdefault(p, r["text"]) != r["text"]
                    lat = [r["latency_s"] for r in results]
                    ttft = [r["ttft_s"] for r in results if r["ttft_s"] is not None]
                    row = {
                        "workers": workers,
                        "mode": mode,
                        "concurrency": concurrency,
                        "requests": len(results),
                        "requests_per_s": len(results) / wall,
                        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
                        "p50_latency_s": statistics.median(lat),
                        "p95_latency_s": percentile(lat, 0.95),
                        "p50_ttft_s": statistics.median(ttft) if ttft else None,
                        "output_mismatches": mismatches,
                        "load_before": load,
                    }
                    rows.append(row)
                    print(
                        f"workers={workers} {mode:6s} concurrency={concurrency}: {row['requests_per_s']:.2f} req/s, "
                        f"{row['tokens_per_s']:.1f} tok/s, p50 {row['p50_latency_s']:.3f} s, "
                        f"p95 {row['p95_latency_s']:.3f} s, mismatches {mismatches}",
                        file=sys.stderr,
                    )
    header = (
        "| workers | decoding | concurrency | req/s | tok/s | p50 latency (s) | p95 latency (s) | p50 TTFT (s) |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header] + [
        f"| {r['workers']} | {'speculative' if r['mode'] == 'spec' else 'target-only'} | {r['concurrency']} | "
        f"{r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | {r['p50_latency_s']:.3f} | {r['p95_latency_s']:.3f} | "
        f"{(r['p50_ttft_s'] or 0):.3f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()}
    args.output.mkdir(parents=True, exist_ok=True)
    report = {
        "pipeline": str(args.folder),
        "models": manifest.names(),
        "max_tokens": args.max_tokens,
        "requests": args.requests,
        "machine": machine,
        "rows": rows,
    }
    (args.output / "bench_serve.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / "bench_serve.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
