"""Wall time of `rolebench-eval run` against lm-eval's own CLI doing the same evaluation.

Both evaluate the `rolegpt` replay on one task in a fresh process. The reference is
lm-eval's CLI as a user without our wrapper runs it (`--include_path <tasks dir>`; the
replay model registered by an import first, since plain lm_eval cannot know it). It
indexes all ~15k built-in tasks; `rolebench-eval run` skips that when only RoleBench
tasks are asked for.

    python benchmarks/bench_run.py [--task rolebench_specific_en] [--data-dir ...] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rolebench_eval.tasks import TASKS_DIR

PLAIN = ("import sys, rolebench_eval.tasks.replay; from lm_eval.__main__ import cli_evaluate; "
         "sys.argv = ['lm_eval', 'run', '--include_path', sys.argv[1], *sys.argv[2:]]; cli_evaluate()")


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="rolebench_specific_en")
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "ROLEBENCH_DATA_DIR": str(Path(args.data_dir).resolve()), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    ours_bin = str(Path(sys.executable).parent / "rolebench-eval")
    times = {"rolebench-eval run": [], "lm_eval (reference)": []}
    with tempfile.TemporaryDirectory() as out:
        flags = ["--model", "rolegpt", "--tasks", args.task, "--output_path", out]
        for _ in range(args.repeats):
            times["lm_eval (reference)"].append(timed([sys.executable, "-c", PLAIN, TASKS_DIR, *flags], env))
            times["rolebench-eval run"].append(timed([ours_bin, "run", *flags], env))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, runs in times.items():
        print(f"{name:22s} median {med[name]:6.2f} s  runs {[round(t, 2) for t in runs]}")
    print(f"ratio reference / ours: {med['lm_eval (reference)'] / med['rolebench-eval run']:.2f}x on {args.task}")


if __name__ == "__main__":
    main()
