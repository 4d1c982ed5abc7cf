"""Benchmark: the judge pass against a local OpenAI-compatible server with 200 ms latency.

    python benchmarks/bench_judge.py [--n 1000] [--concurrency 32] [--reference-n 50]

Builds a synthetic lm-eval samples file of N RoleBench items (invented text), starts the
scripted test server (tests/fixtures/llm/fake_openai_server.py) with a fixed latency per
request, and times the full ``judge_outputs`` pass with the ``rubric`` judge (one
request per item, so N judgments): at the given concurrency, at concurrency 1 (on
``--reference-n`` items, extrapolated linearly, as printed), and a fully cached rerun.
Everything runs in this process except the server; no network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPLY = json.dumps({"style": 4, "knowledge": 3, "instruction": 5, "character_break": False, "reason": "ok"})


def _fake_server_class():
    path = ROOT / "tests" / "fixtures" / "llm" / "fake_openai_server.py"
    spec = importlib.util.spec_from_file_location("fake_openai_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeServer


def write_samples(folder: Path, n: int, tag: str) -> Path:
    """An lm-eval-style output folder with ``n`` invented role-specific items."""
    model_dir = folder / f"bench__model-{tag}"
    model_dir.mkdir(parents=True)
    date = "2026-01-01T00-00-00.000000"
    with open(model_dir / f"samples_rolebench_specific_en_{date}.jsonl", "w", encoding="utf-8") as handle:
        for i in range(n):
            doc = {"role": "Captain Brine", "question": f" Question {tag}-{i}: what does barnacle {i} know? ",
                   "references": [f" Barnacle {i} knows the tide turns at dawn near the red lighthouse"],
                   "type": ["script_agnostic"], "lang": "en", "kind": "specific",
                   "system_prompt": "You are Captain Brine, a gruff invented sea captain.",
                   "rolegpt": f"Arr, barnacle {i} knows the tide"}
            row = {"doc_id": i, "doc": doc, "filtered_resps": [f"Arr, barnacle {i} whispers of the tide at dawn"]}
            handle.write(json.dumps(row) + "\n")
    (model_dir / f"results_{date}.json").write_text(json.dumps({"model_name": f"bench/model-{tag}"}))
    return model_dir


def timed_pass(inputs: Path, url: str, work: Path, concurrency: int) -> tuple[float, dict]:
    """Wall time of one full judge pass (read, render, request, parse, statistics, write) and its summary."""
    from rolebench_eval.judges.run import JudgeOptions, judge_outputs

    opts = JudgeOptions(judge="rubric", model="bench-judge", base_url=url, out=work / "out",
                        cache=work / "cache.sqlite", concurrency=concurrency, progress=False)
    start = time.perf_counter()
    report = judge_outputs([inputs], opts)
    elapsed = time.perf_counter() - start
    assert report.batch.stopped is None, report.batch.stopped
    return elapsed, report.summaries[0] | {"n_sent": report.batch.n_sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reference-n", type=int, default=50, help="items for the concurrency-1 reference")
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    ideal = args.n * args.latency / args.concurrency
    with tempfile.TemporaryDirectory() as tmp, \
            _fake_server_class()({"default_reply": REPLY}, Path(tmp) / "server", args.latency) as srv:
        tmp = Path(tmp)
        big, small = write_samples(tmp / "in", args.n, "a"), write_samples(tmp / "in1", args.reference_n, "b")
        t_warm, _ = timed_pass(write_samples(tmp / "warm", 1, "w"), srv.url, tmp / "warm", 1)
        t_conc, summary = timed_pass(big, srv.url, tmp / "run", args.concurrency)
        assert summary["n_sent"] == args.n and summary["n_parsed"] == args.n
        t_cached, cached = timed_pass(big, srv.url, tmp / "run", args.concurrency)
        assert cached["n_sent"] == 0 and cached["n_parsed"] == args.n
        t_ref, ref = timed_pass(small, srv.url, tmp / "ref", 1)
        assert ref["n_sent"] == args.reference_n
        t_one = t_ref * args.n / args.reference_n
        requests_seen = srv.count("ok") - 1
    print(f"judge pass, rubric protocol, {args.n} judgments, server latency {args.latency * 1000:.0f} ms/request")
    print(f"  (timed after a 1-judgment warm-up pass, {t_warm:.2f} s, that pays the one-time imports of "
          "openai, tenacity and scipy; every timed pass opens its own connections)")
    print(f"  concurrency {args.concurrency}: {t_conc:.2f} s; ideal bound {args.n} x {args.latency} / "
          f"{args.concurrency} = {ideal:.2f} s; ratio to ideal {t_conc / ideal:.2f}x (target <= 1.5x)")
    print(f"  concurrency 1: measured {t_ref:.2f} s on {args.reference_n} judgments; EXTRAPOLATED linearly to "
          f"{args.n}: {t_one:.1f} s; speed-up of concurrency {args.concurrency}: {t_one / t_conc:.1f}x")
    print(f"  fully cached rerun of the {args.n}: {t_cached:.2f} s, 0 requests "
          f"(server saw {requests_seen} requests in all = {args.n} + {args.reference_n})")


if __name__ == "__main__":
    main()
