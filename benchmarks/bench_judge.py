"""Benchmark: the judge pass against local OpenAI-compatible servers with 200 ms latency per request.

    python benchmarks/bench_judge.py [--n 1000] [--concurrency 32] [--serial-n 100] [--reference-n 50]

Builds synthetic lm-eval samples files of RoleBench items (invented text), starts the
scripted test server (tests/fixtures/llm/fake_openai_server.py) with a fixed latency per
request, and times full ``judge_outputs`` passes with the ``rubric`` judge (one request per
item, so N judgments):

1. a one-at-a-time server (capacity 1, like a CPU ``transformers serve``) with the default
   ``--concurrency auto``: ``--serial-n`` judgments against the serial bound N x latency, and
   the requests the server computed for a client that had already given up (abandoned);
2. a server that takes 64 requests at once, ``--n`` judgments with ``auto`` and with a fixed
   ``--concurrency``, both against the bound N x latency / concurrency;
3. concurrency 1 on ``--reference-n`` items (extrapolated linearly, as printed), and a fully
   cached rerun.

Everything runs in this process except the servers; no network beyond 127.0.0.1.
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
    (model_dir / f"results_{date}.json").write_text(json.dumps({"results": {}, "model_name": f"bench/model-{tag}"}))
    return model_dir


def timed_pass(inputs: Path, url: str, work: Path, concurrency: int | str) -> tuple[float, dict]:
    """Wall time of one full judge pass (read, render, request, parse, statistics, write) and its summary."""
    from rolebench_eval.judges.run import JudgeOptions, judge_outputs

    opts = JudgeOptions(judge="rubric", model="bench-judge", base_url=url, out=work / "out",
                        cache=work / "cache.sqlite", concurrency=concurrency, progress=False)
    start = time.perf_counter()
    report = judge_outputs([inputs], opts)
    elapsed = time.perf_counter() - start
    assert report.batch.stopped is None, report.batch.stopped
    return elapsed, report.summaries[0] | {"n_sent": report.batch.n_sent, "peak": report.batch.peak_concurrency,
                                           "retries": report.batch.n_retries}


def serial_server(tmp: Path, n: int, latency: float) -> list[str]:
    """Scenario 1: capacity 1, ``auto``; its lines for the report."""
    with _fake_server_class()({"default_reply": REPLY, "capacity": 1}, tmp / "server1", latency) as srv:
        t_auto, summary = timed_pass(write_samples(tmp / "serial", n, "s"), srv.url, tmp / "serial_run", "auto")
        assert summary["n_parsed"] == n
        abandoned, computed = srv.count("abandoned"), srv.count("ok")
    bound = n * latency
    return [f"one-at-a-time server (capacity 1), {n} judgments, --concurrency auto (the default):",
            f"  {t_auto:.2f} s; serial bound {n} x {latency} = {bound:.2f} s; ratio to bound {t_auto / bound:.2f}x "
            f"(target <= 1.2x); abandoned requests {abandoned} (target 0); server computed {computed} answers "
            f"for {n} judgments; most in flight at once {summary['peak']}; retries {summary['retries']}"]


def wide_server(tmp: Path, args, latency: float) -> list[str]:
    """Scenarios 2 and 3: capacity 64, ``auto`` and a fixed concurrency; reference and cached rerun."""
    n, conc = args.n, args.concurrency
    bound = n * latency / conc
    with _fake_server_class()({"default_reply": REPLY, "capacity": 64}, tmp / "server64", latency) as srv:
        big, small = write_samples(tmp / "in", n, "a"), write_samples(tmp / "in1", args.reference_n, "b")
        t_auto, auto = timed_pass(big, srv.url, tmp / "auto", "auto")
        assert auto["n_sent"] == n and auto["n_parsed"] == n
        t_cached, cached = timed_pass(big, srv.url, tmp / "auto", "auto")
        assert cached["n_sent"] == 0 and cached["n_parsed"] == n
        t_fixed, fixed = timed_pass(big, srv.url, tmp / "fixed", conc)
        assert fixed["n_sent"] == n
        t_ref, ref = timed_pass(small, srv.url, tmp / "ref", 1)
        assert ref["n_sent"] == args.reference_n
        t_one = t_ref * n / args.reference_n
        requests_seen = srv.count("ok")
    return [f"server taking 64 requests at once, {n} judgments (bound for concurrency {conc}: {n} x {latency} / "
            f"{conc} = {bound:.2f} s):",
            f"  --concurrency auto: {t_auto:.2f} s; ratio to bound {t_auto / bound:.2f}x (target <= 1.5x); "
            f"most in flight at once {auto['peak']}",
            f"  --concurrency {conc} (reference, same process): {t_fixed:.2f} s; ratio to bound {t_fixed / bound:.2f}x",
            f"  concurrency 1: measured {t_ref:.2f} s on {args.reference_n} judgments; EXTRAPOLATED linearly to "
            f"{n}: {t_one:.1f} s; speed-up of auto: {t_one / t_auto:.1f}x",
            f"  fully cached rerun of the {n}: {t_cached:.2f} s, 0 requests "
            f"(server saw {requests_seen} requests in all = {n} + {n} + {args.reference_n})"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32, help="the fixed concurrency of the reference run")
    parser.add_argument("--serial-n", type=int, default=100, help="judgments for the one-at-a-time server")
    parser.add_argument("--reference-n", type=int, default=50, help="items for the concurrency-1 reference")
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with _fake_server_class()({"default_reply": REPLY}, tmp / "warm_server", args.latency) as srv:
            t_warm, _ = timed_pass(write_samples(tmp / "warm", 1, "w"), srv.url, tmp / "warm", 1)
        lines = serial_server(tmp, args.serial_n, args.latency) + wide_server(tmp, args, args.latency)
    print(f"judge pass, rubric protocol, server latency {args.latency * 1000:.0f} ms/request")
    print(f"  (timed after a 1-judgment warm-up pass, {t_warm:.2f} s, that pays the one-time imports of "
          "openai and scipy; every timed pass opens its own connections)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
