"""Character-break flag rate of ``rolebench_eval.breaks`` on the released RoleGPT answers.

RoleGPT answers were filtered for AI-identity leaks when the dataset was built, so they
should almost never break character: every flag is either a real leak the filter missed or
a false positive of the detector. Prints, per ``rolegpt_baseline.jsonl`` under the data
folder, the answers, the flags and their rate, the flags of roles that are machines in their
story (who may say "as an AI" in character), and each flagged phrase with its role.

    python benchmarks/bench_breaks.py [--data-dir ../shared/rolebench]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

from rolebench_eval.breaks import break_match
from rolebench_eval.data import read_items

MACHINE_ROLES = {"HAL 9000", "Sonny"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    args = parser.parse_args()
    root = Path(args.data_dir)
    for path in sorted(root.rglob("rolegpt_baseline.jsonl")):
        lang = "zh" if "rolebench-zh" in path.parts else "en"
        items = read_items(path)
        start = time.perf_counter()
        flags = [(item.role, match) for item in items if (match := break_match(item.references[0], lang))]
        took = time.perf_counter() - start
        machines = sum(role in MACHINE_ROLES for role, _ in flags)
        print(f"{path.relative_to(root)}: {len(flags)} of {len(items)} answers flagged ({len(flags) / len(items):.2%}); "
              f"{machines} by machine roles, {len(flags) - machines} by the others "
              f"({(len(flags) - machines) / len(items):.2%}); {took * 1e6 / len(items):.0f} µs per answer")
        for (role, match), n in sorted(Counter(flags).items()):
            print(f"    {n:3d}  {role}: {match!r}")


if __name__ == "__main__":
    main()
