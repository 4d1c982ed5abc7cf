"""Benchmark: a leaderboard from 200 synthetic lm-eval result folders with per-item samples.

Usage::

    python benchmarks/bench_leaderboard.py [--models 200] [--small 10] [--repeat 3] [--keep DIR] [--profile]
    python benchmarks/bench_leaderboard.py --models 10 --keep /tmp/lb10 --profile   # the small board only

Every folder holds a ``results_*.json`` and one ``samples_<task>_*.jsonl`` per RoleBench
task, written the way lm-eval writes them (same keys and key order, invented short
texts), at the real test-set sizes: specific_en 4,750, general_en 47,500 (the estimate
of PAPER.md 1.4; that file is not in our partial copy), rolegen_general_en 5,000,
rolegen_specific_en 2,534, general_zh 1,451, specific_zh 239 items (12.4 GB for 200
runs). Each build is the whole job: bootstrap (1,000 resamples), paired tests,
breakdowns, the item browser (20 items per role) and every output.

Printed, each as the median and the min-max over ``--repeat`` builds (wall time, and the
CPU time of this process and its worker processes), next to the same run's reference:
reading the same samples files with plain ``json.loads`` of every line, on as many
processes as the build uses (the machines are shared: the reference says how fast this
machine was at that moment):

- cold: every samples file read, with an empty cache (targets on 2 cores: 200 runs <= 40 s,
  10 runs <= 5 s);
- warm: the same board again, per-item scores (and figures) from the cache (target <= 3 s);

- cold command: ``rolebench-eval leaderboard`` of the small set in a fresh interpreter with an
  empty cache, as a user runs it (imports included, from bytecode, as an install keeps it),
  against ``python -c pass`` and the same json.loads reference; ``--profile`` prints where its
  time goes (cProfile, cumulative);

then two ratios measured in the same process: the vectorised bootstrap against a plain loop
over resamples, and our samples reader against ``json.loads`` on one file; and the sizes of
the pages written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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


def _versions() -> dict[str, float]:
    """The installed tasks' versions: the synthetic runs are runs of the installed tasks."""
    from rolebench_eval.catalogue import tasks

    return {name: float(task.version) for name, task in tasks().items() if name in SIZES}


def _results(model: str, means: dict[str, dict[str, float]]) -> dict:
    results, configs, versions = {}, {}, _versions()
    for task, values in means.items():
        results[task] = {"alias": task, **{f"{m},none": v for m, v in values.items()}}
        configs[task] = {"task": task, "metadata": {"version": versions[task], "prompt_version": "1",
                                                    "data": {"origin": "local", "sha256": "5" * 64}}}
    return {"results": results, "configs": configs, "versions": {t: versions[t] for t in means},
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


def _json_loads_file(path: Path) -> int:
    with path.open("rb") as handle:
        return len([json.loads(line) for line in handle])


def json_reference(runs: list[Path], workers: int) -> float:
    """Seconds to read every samples file of ``runs`` with plain json.loads of each line."""
    files = sorted(f for run in runs for f in run.glob("samples_*.jsonl"))
    files.sort(key=lambda f: -f.stat().st_size)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        sum(pool.map(_json_loads_file, files))
    return time.perf_counter() - start


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def build(runs: list[Path], out: Path, cache: Path, n_boot: int) -> tuple[float, float, object]:
    """One build: (wall seconds, CPU seconds of this process and its workers, the board)."""
    from rolebench_eval.leaderboard.build import Options, build_leaderboard

    cpu, start = _cpu(), time.perf_counter()
    board = build_leaderboard(runs, out=out, options=Options(n_boot=n_boot, cache_dir=cache, processes=True))
    return time.perf_counter() - start, _cpu() - cpu, board


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min-max {min(values):.2f}-{max(values):.2f})"


def measure(label: str, runs: list[Path], root: Path, args, target: float | None, warm: bool) -> object:
    """Repeat cold builds (each with an empty cache) and, when asked, warm ones after each."""
    cold, cold_cpu, hot, hot_cpu, board = [], [], [], [], None
    for _ in range(args.repeat):
        cache = root / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        wall, cpu, board = build(runs, root / "site", cache, args.n_boot)
        cold.append(wall)
        cold_cpu.append(cpu)
        if warm:
            wall, cpu, board = build(runs, root / "site", cache, args.n_boot)
            hot.append(wall)
            hot_cpu.append(cpu)
    ranked = sum(r.rank is not None for r in board.measured)  # paper rows are ranked too
    if ranked != len(runs):
        raise SystemExit(f"only {ranked} of {len(runs)} runs ranked ({[r.reasons for r in board.excluded][:1]}): "
                         "the synthetic set does not match the installed tasks; delete it to regenerate")
    reference = json_reference(runs, os.cpu_count() or 1)
    goal = f"; target <= {target:g} s" if target else ""
    print(f"{label} cold: {_summary(cold)}, CPU {statistics.median(cold_cpu):.1f} s{goal}; "
          f"plain json.loads of the same files: {reference:.1f} s ({reference / statistics.median(cold):.1f}x)")
    if warm:
        print(f"{label} warm: {_summary(hot)}, CPU {statistics.median(hot_cpu):.1f} s; target <= 3 s; "
              f"plain json.loads of the same files: {reference:.1f} s ({reference / statistics.median(hot):.0f}x)")
    print(f"  ({ranked} ranked rows x {len(board.score_tasks)} tasks, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    return board


def command(runs: list[Path], root: Path, profile: bool, env: dict | None = None) -> float:
    """Wall seconds of one ``rolebench-eval leaderboard`` over ``runs`` in a fresh interpreter, empty cache."""
    import subprocess

    cache, out = root / "cache-command", root / "site-command"
    shutil.rmtree(cache, ignore_errors=True)
    argv = ["-m", "rolebench_eval.cli", "leaderboard", *map(str, runs), "--out", str(out), "--cache-dir", str(cache)]
    if profile:
        argv = ["-m", "cProfile", "-o", str(root / "command.prof"), *argv]
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).parent.parent,
                   env=env)
    return time.perf_counter() - start


def measure_command(runs: list[Path], root: Path, args) -> None:
    """The cold command (fresh interpreter, empty cache) against an empty interpreter and json.loads.

    Timed with bytecode, as a user runs it (pip compiles an installed package's modules; Python
    writes an editable one's on their first import): one untimed run writes it under the benchmark's
    folder (PYTHONPYCACHEPREFIX, whatever PYTHONDONTWRITEBYTECODE says), and the timed ones read it.
    Where this environment sets PYTHONDONTWRITEBYTECODE and no bytecode was written beside the sources,
    as on this project's machines, every start compiles the package's modules instead (about 0.3 s).
    """
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    command(runs, root, False, env)
    walls = [command(runs, root, False, env) for _ in range(args.repeat)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    empty = time.perf_counter() - start
    reference = json_reference(runs, os.cpu_count() or 1)
    print(f"{len(runs)} runs cold command (fresh interpreter with bytecode, empty cache): {_summary(walls)}; "
          f"target <= 5 s; plain json.loads of the same files: {reference:.1f} s "
          f"({reference / statistics.median(walls):.2f}x); an empty interpreter: {empty:.2f} s "
          f"(load average {os.getloadavg()[0]:.1f})")
    if args.profile:
        import pstats

        command(runs, root, True, env)
        print("  where a cold command's time goes (cProfile, cumulative, this process only):")
        pstats.Stats(str(root / "command.prof"), stream=sys.stdout).sort_stats("cumulative").print_stats(25)


def bootstrap_ratio(root: Path, n_boot: int, n_runs: int = 10) -> tuple[float, float, float, int]:
    """Vectorised bootstrap vs a loop over resamples, same runs and task, same process."""
    from threadpoolctl import threadpool_limits

    from rolebench_eval.leaderboard.bootstrap import (Resampling, TaskItems, role_groups, stratified_means_loop,
                                                      task_bootstrap)
    from rolebench_eval.outputs import read_scores

    task = "rolebench_specific_en"
    items = [read_scores(f, ("spe",)) for f in sorted(root.glob(f"*/samples_{task}_*.jsonl"))[:n_runs]]
    assert all((i.doc_ids == items[0].doc_ids).all() for i in items)
    matrix = np.stack([i.metrics["spe"] for i in items])
    roles, names = items[0].roles, items[0].role_names
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        task_items = TaskItems({"spe": matrix.astype(np.float32)}, roles, names, items[0].types)
        fast = task_bootstrap(task, task_items, "spe", [], Resampling(n_boot, 1), breakdowns=False).means["spe"]
    t_fast = time.perf_counter() - start
    groups = role_groups(roles, names)
    start = time.perf_counter()
    slow = np.stack([stratified_means_loop(row, groups, n_boot, 1, task) for row in matrix])
    t_slow = time.perf_counter() - start
    assert np.allclose(fast, slow, atol=1e-6), "vectorised and loop bootstrap disagree"
    return t_fast, t_slow, t_slow / t_fast, len(matrix)


def reading_ratio(root: Path) -> tuple[float, float, float]:
    """Our samples reader vs json.loads of every full line, on one general_en file, this process."""
    from rolebench_eval.outputs import read_scores

    path = sorted(root.glob("*/samples_rolebench_general_en_*.jsonl"))[0]
    start = time.perf_counter()
    read_scores(path, ("cus", "raw", "rougeL_f", "resp_tokens"))
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    _json_loads_file(path)
    t_json = time.perf_counter() - start
    return t_ours, t_json, t_json / t_ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--small", type=int, default=10, help="runs of the small cold build (0: skip it)")
    parser.add_argument("--repeat", type=int, default=3, help="builds per figure")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--keep", help="generate into this folder and keep it (reused when it exists)")
    parser.add_argument("--profile", action="store_true", help="profile one cold command of the small set")
    args = parser.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_leaderboard_"))
    try:
        data = root / "runs"
        if not data.exists():
            start = time.perf_counter()
            size = generate(data, args.models)
            print(f"generated {args.models} result folders, {sum(SIZES.values()):,} items each, "
                  f"{size / 1e9:.2f} GB of samples in {time.perf_counter() - start:.1f} s")
        runs = sorted(data.iterdir())[:args.models]
        board = measure(f"{len(runs)} runs", runs, root, args, 40 if len(runs) > 10 else 5, warm=True)
        for kind in ("html", "items_html", "items_data"):
            print(f"  {board.outputs[kind].name}: {board.outputs[kind].stat().st_size / 1e6:.2f} MB")
        if args.small and args.small < len(runs):
            measure(f"{args.small} runs", runs[:args.small], root, args, 5, warm=False)
        if args.small:
            measure_command(runs[:args.small], root, args)
        t_fast, t_slow, ratio, n_runs = bootstrap_ratio(data, args.n_boot)
        print(f"bootstrap of specific_en, {n_runs} runs x 4,750 items x {args.n_boot} resamples: "
              f"vectorised {t_fast:.3f} s, loop reference {t_slow:.3f} s, ratio {ratio:.1f}x")
        t_ours, t_json, ratio = reading_ratio(data)
        print(f"reading one general_en samples file (47,500 lines): ours {t_ours:.3f} s, "
              f"json.loads per line {t_json:.3f} s, ratio {ratio:.1f}x")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
