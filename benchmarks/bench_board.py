"""The example board on 1 worker against 2 workers: wall time of the whole grid, cold, as a ratio.

Runs `rolebench-eval board examples/board_replay.yaml` (the replay and lm-eval's `dummy` on the Chinese tasks,
two shards per task: 8 runs, 4 merges, one leaderboard) into a fresh folder with `--jobs 1`, then with
`--jobs 2`, each `--repeats` times, alternating, and prints the median times and their ratio. A ratio near 2 needs
2 idle cores; the merges and the leaderboard wait for the runs they read.

    python benchmarks/bench_board.py [--spec examples/board_replay.yaml] [--data-dir ...] [--repeats 1]
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

REPO = Path(__file__).resolve().parent.parent


def board(spec: str, data_dir: str, jobs: int) -> float:
    """Seconds of wall time for the whole board, built into a new folder."""
    env = {**os.environ, "ROLEBENCH_DATA_DIR": data_dir, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rolebench_eval.cli", "board", spec, "--out", str(Path(tmp) / "b"),
                        "--jobs", str(jobs)], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(REPO / "examples" / "board_replay.yaml"))
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", str(REPO.parent / "shared" / "rolebench")))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for jobs in times:
            times[jobs].append(board(args.spec, args.data_dir, jobs))
    one, two = (statistics.median(times[j]) for j in (1, 2))
    print(f"board {Path(args.spec).name}, {args.repeats} run(s) each, median wall time:")
    print(f"  1 worker : {one:7.1f} s\n  2 workers: {two:7.1f} s\n  ratio 1/2: {one / two:.2f}x  ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
