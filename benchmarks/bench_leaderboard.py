"""Benchmark: a leaderboard from 200 synthetic lm-eval result folders with per-item samples.

Usage::

    python benchmarks/bench_leaderboard.py [--models 200] [--n-boot 1000] [--keep DIR]

Every folder holds a ``results_*.json`` and one ``samples_<task>_*.jsonl`` per RoleBench
task, written the way lm-eval writes them (same keys and key order, invented short
texts), at the real test-set sizes: specific_en 4,750, general_en 47,500 (the estimate
of PAPER.md 1.4; that file is not in our partial copy), rolegen_general_en 5,000,
rolegen_specific_en 2,534, general_zh 1,451, specific_zh 239 items. The board is built
with the bootstrap (1,000 resamples), paired tests, breakdowns, and all outputs.

Printed: the build time (target: under 10 s on a 2-core machine) and two ratios
measured in the same process: the vectorised bootstrap against a plain loop over
resamples (the reference, on a subset of runs), and reading the samples files against
``json.loads`` of every full line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {
    "rolebench_general_en": 47_500, "rolebench_specific_en": 4_750, "rolebench_rolegen_general_en": 5_000,
    "rolebench_rolegen_specific_en": 2_534, "rolebench_general_zh": 1_451, "rolebench_specific_zh": 239,
}
DATE = "2026-01-01T00-00-00.000000"


def _roles(task: str) -> list[str]:
    if task.endswith("_zh"):
        return [f"角色{i}" for i in range(5)]
    return [f"Role {i}" for i in range(10 if "rolegen" in task else 95)]


def _prefixes(task: str) -> list[str]:
    """Everything of a samples line up to the metric fields; identical for every model."""
    roles, general = _roles(task), "general" in task
    out = []
    for i in range(SIZES[task]):
        role = roles[i % len(roles)]
        doc = {"role": role, "question": f" Synthetic question {i} for {role}?",
               "references": [f"Answer {k}." for k in range(5 if general else 1)],
               "type": [] if general else ["script_based" if i % 3 == 0 else "script_agnostic"],
               "lang": task[-2:], "kind": "general" if general else "specific",
               "system_prompt": f"You are {role}. Answer in character.", "rolegpt": None}
        doc_json = json.dumps(doc, ensure_ascii=False)
        head = {"doc_id": i, "doc": doc, "target": str(doc["references"]),
                "arguments": {"gen_args_0": {"arg_0": f"{doc['system_prompt']}\n\n{doc['question']}",
                                             "arg_1": {"until": ["\n\n"], "max_gen_toks": 256}}},
                "resps": [["A synthetic answer."]], "filtered_resps": ["A synthetic answer."], "filter": "none",
                "metrics": ["cus" if general else "spe", "rougeL_f", "resp_tokens"],
                "doc_hash": hashlib.sha256(doc_json.encode()).hexdigest(),
                "prompt_hash": "0" * 64, "target_hash": "1" * 64}
        out.append(json.dumps(head, ensure_ascii=False)[:-1])
    return out


def _results(model: str, means: dict[str, dict[str, float]]) -> dict:
    results, configs = {}, {}
    for task, values in means.items():
        results[task] = {"alias": task, **{f"{m},none": v for m, v in values.items()}}
        configs[task] = {"task": task, "metadata": {"version": 1.0, "prompt_version": "1",
                                                    "data": {"origin": "local", "sha256": "5" * 64}}}
    return {"results": results, "configs": configs, "versions": {t: 1.0 for t in means},
            "n-samples": {t: {"original": SIZES[t], "effective": SIZES[t]} for t in means},
            "config": {"model": "hf", "model_args": f"pretrained=synthetic/{model}", "limit": None},
            "model_name": f"synthetic/{model}", "date": DATE}


def generate(root: Path, n_models: int, seed: int = 0) -> int:
    """Write the synthetic folders; returns the bytes written."""
    rng = np.random.default_rng(seed)
    prefixes = {task: _prefixes(task) for task in SIZES}
    total = 0
    for m in range(n_models):
        folder = root / f"model-{m:03d}"
        folder.mkdir(parents=True)
        skill = rng.uniform(-0.1, 0.1)
        means = {}
        for task, heads in prefixes.items():
            metric = "cus" if "general" in task else "spe"
            score = np.clip(rng.normal(0.3 + skill, 0.12, len(heads)), 0, 1)
            f_score = np.clip(score * 0.8 + rng.normal(0, 0.02, len(heads)), 0, 1)
            length = rng.integers(5, 200, len(heads))
            lines = [f'{h}, "{metric}": {s!r}, "rougeL_f": {f!r}, "resp_tokens": {n}}}\n'
                     for h, s, f, n in zip(heads, score.tolist(), f_score.tolist(), length.tolist())]
            data = "".join(lines).encode("utf-8")
            (folder / f"samples_{task}_{DATE}.jsonl").write_bytes(data)
            total += len(data)
            means[task] = {metric: float(np.mean(score.tolist())), "rougeL_f": float(np.mean(f_score.tolist())),
                           "resp_tokens": float(np.mean(length))}
        (folder / f"results_{DATE}.json").write_text(json.dumps(_results(f"model-{m:03d}", means)))
    return total


def bootstrap_ratio(root: Path, n_boot: int, n_runs: int = 10) -> tuple[float, float, float, int]:
    """Vectorised bootstrap vs a loop over resamples, same runs and task, same process."""
    from threadpoolctl import threadpool_limits

    from rolebench_eval.leaderboard.engine import TaskItems, role_groups, task_bootstrap
    from rolebench_eval.leaderboard.samples import DocIndex, read_samples
    from rolebench_eval.leaderboard.stats import Resampling, stratified_means_loop

    task, index = "rolebench_specific_en", DocIndex()
    items = [read_samples(f, ("spe",), index) for f in sorted(root.glob(f"*/samples_{task}_*.jsonl"))[:n_runs]]
    assert all((i.doc_ids == items[0].doc_ids).all() for i in items)
    matrix = np.stack([i.metrics["spe"] for i in items])
    roles = items[0].roles
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        task_items = TaskItems({"spe": matrix}, roles, index.roles, items[0].types)
        fast = task_bootstrap(task, task_items, "spe", [], Resampling(n_boot, 1), breakdowns=False).means["spe"]
    t_fast = time.perf_counter() - start
    groups = role_groups(roles, index.roles)
    start = time.perf_counter()
    slow = np.stack([stratified_means_loop(row, groups, n_boot, 1, task) for row in matrix])
    t_slow = time.perf_counter() - start
    assert np.allclose(fast, slow, atol=1e-6), "vectorised and loop bootstrap disagree"
    return t_fast, t_slow, t_slow / t_fast, len(matrix)


def reading_ratio(root: Path) -> tuple[float, float, float]:
    """Our samples reader vs json.loads of every full line, on a few files."""
    from rolebench_eval.leaderboard.samples import DocIndex, read_samples

    files = sorted(root.glob("*/samples_rolebench_general_en_*.jsonl"))[:3]
    index = DocIndex()
    read_samples(files[0], ("cus",), index)  # documents parsed once, as in a real build
    start = time.perf_counter()
    for f in files:
        read_samples(f, ("cus", "rougeL_f", "resp_tokens"), index)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    for f in files:
        with f.open("rb") as handle:
            [json.loads(line) for line in handle]
    t_json = time.perf_counter() - start
    return t_ours, t_json, t_json / t_ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--keep", help="generate into this folder and keep it")
    args = parser.parse_args(argv)
    from rolebench_eval.leaderboard.build import Options, build_leaderboard

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_leaderboard_"))
    try:
        runs = root / "runs"
        if not runs.exists():
            start = time.perf_counter()
            size = generate(runs, args.models)
            print(f"generated {args.models} result folders, {sum(SIZES.values()):,} items each, "
                  f"{size / 1e9:.2f} GB of samples in {time.perf_counter() - start:.1f} s")
        cache = root / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        for label in ("cold (every samples file parsed, cache written)", "warm (per-item scores from the cache)"):
            start = time.perf_counter()
            board = build_leaderboard([runs], out=root / "site", options=Options(n_boot=args.n_boot, cache_dir=cache))
            elapsed = time.perf_counter() - start
            ranked = sum(r.rank is not None for r in board.rows)
            print(f"build_leaderboard, {label}: {elapsed:.2f} s for {ranked} ranked rows x "
                  f"{len(board.score_tasks)} tasks ({os.cpu_count()} CPUs; target < 10 s)")
        t_fast, t_slow, ratio, n_runs = bootstrap_ratio(runs, args.n_boot)
        print(f"bootstrap of specific_en, {n_runs} runs x 4,750 items x {args.n_boot} resamples: "
              f"vectorised {t_fast:.3f} s, "
              f"loop reference {t_slow:.3f} s, ratio {ratio:.1f}x")
        t_ours, t_json, ratio = reading_ratio(runs)
        print(f"reading 3 general_en samples files: ours {t_ours:.3f} s, json.loads per line {t_json:.3f} s, "
              f"ratio {ratio:.1f}x")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
