"""Merge time against the single run's scoring time, in one process.

Runs the `rolegpt` replay on one task once whole and once as N shards (in process, through
`rolebench_eval.evaluate`), then times, each `--repeats` times:

- scoring: what the single run spends on scores, i.e. the task's `process_results` on every
  logged answer plus lm-eval's aggregation of the per-item values (`mean`, `mean_stderr`);
- merge: `rolebench-eval merge` of the N parts (read, check, recompute, write the folder).

    python benchmarks/bench_merge.py [--task rolebench_specific_zh] [--shards 3] [--data-dir ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def score(samples: list[dict]) -> None:
    """The single run's scoring: per-item scores, then lm-eval's aggregation of each metric."""
    from lm_eval.api.metrics import mean, mean_stderr

    from rolebench_eval.tasks.task import process_results

    values: dict[str, list[float]] = {}
    for sample in samples:
        for name, value in process_results(sample["doc"], sample["filtered_resps"]).items():
            values.setdefault(name, []).append(value)
    for items in values.values():
        mean(items), mean_stderr(items)


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    import rolebench_eval
    from rolebench_eval.outputs.merge import merge_parts, read_parts, write_merged
    from rolebench_eval.tasks.runner import group_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="rolebench_specific_zh")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = dict(model="rolegpt", tasks=[args.task], data_dir=args.data_dir, log_samples=True)
        single = rolebench_eval.evaluate(**run, output_path=root / "single")
        parts = [root / f"part{k}" for k in range(args.shards)]
        for k, part in enumerate(parts):
            rolebench_eval.evaluate(**run, output_path=part, metadata={"shard": f"{k}/{args.shards}"})
        samples = json.loads(json.dumps(single["samples"][args.task], default=str))
        scoring = timed(lambda: score(samples), args.repeats)
        outs = iter(root / f"merged{i}" for i in range(args.repeats))
        merging = timed(lambda: write_merged(merge_parts(read_parts(parts), group_config), next(outs)), args.repeats)
    med_score, med_merge = statistics.median(scoring), statistics.median(merging)
    print(f"{args.task}: {len(samples)} items, {args.shards} shards, medians of {args.repeats}")
    print(f"single run's scoring  {med_score:7.3f} s  runs {[round(t, 3) for t in scoring]}")
    print(f"merge of the shards   {med_merge:7.3f} s  runs {[round(t, 3) for t in merging]}")
    print(f"ratio merge / scoring: {med_merge / med_score:.2f}")


if __name__ == "__main__":
    main()
