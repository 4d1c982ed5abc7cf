"""Paper-faithful ROUGE-L: ours against the PyPI `rouge` package (pltrdy), same process.

Two measurements on the local RoleBench test files (every item that has a RoleGPT answer):

1. pairs: every (RoleGPT answer, reference) pair scored by both implementations of the
   paper metric; prints the times, their ratio and the largest difference (must be 0);
2. items: the task's whole per-item scoring (``process_results``: paper metric, ``raw``
   when the item has one, ``rougeL_f`` and ``resp_tokens``) against the `rouge` package
   computing the paper metric alone (max over the item's references), the reference run.

    python benchmarks/bench_rouge.py [--data-dir ../shared/rolebench] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from rouge import Rouge

from rolebench_eval.catalogue import splits
from rolebench_eval.data import read_baseline, read_items
from rolebench_eval.metrics import cjk_split, rouge_l
from rolebench_eval.tasks.task import process_results


def items(root: Path) -> dict[str, list[tuple[str, list[str], str, str]]]:
    """(RoleGPT answer, references, lang, kind) of every item that has a RoleGPT answer, per split."""
    out = {}
    for name, split in splits().items():
        test, base = root / split.dir / "test.jsonl", root / split.dir / "rolegpt_baseline.jsonl"
        if test.is_file() and base.is_file():
            answers = read_baseline(base)
            out[name] = [(answers[(i.role, i.question)], list(i.references), split.lang, split.kind)
                         for i in read_items(test) if (i.role, i.question) in answers]
    return out


def time_it(fn, work, repeat: int):
    """Median seconds over ``repeat`` runs, and the values of the last run."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        values = [fn(*w) for w in work]
        times.append(time.perf_counter() - start)
    return statistics.median(times), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the median is reported")
    args = parser.parse_args()
    scorer = Rouge(metrics=["rouge-l"], stats=["r"])

    def pltrdy(h, r, lang):
        pre = cjk_split if lang == "zh" else str
        return scorer.get_scores(pre(h), pre(r))[0]["rouge-l"]["r"]

    totals = {"pairs_ref": 0.0, "pairs_ours": 0.0, "items_ref": 0.0, "items_ours": 0.0}
    for name, work in items(Path(args.data_dir)).items():
        pairs = [(h, r, lang) for h, refs, lang, _ in work for r in refs]
        t_ref, v_ref = time_it(pltrdy, pairs, args.repeat)
        t_ours, v_ours = time_it(lambda h, r, lang: rouge_l(h, [r], lang), pairs, args.repeat)
        diff = max(abs(a - b) for a, b in zip(v_ours, v_ref))
        docs = [({"references": refs, "lang": lang, "kind": kind}, [h]) for h, refs, lang, kind in work]
        t_iref, _ = time_it(lambda h, refs, lang, kind: max(pltrdy(h, r, lang) for r in refs), work, args.repeat)
        t_items, _ = time_it(process_results, docs, args.repeat)
        for key, value in zip(totals, (t_ref, t_ours, t_iref, t_items)):
            totals[key] += value
        print(json.dumps({"split": name, "pairs": len(pairs), "rouge_s": round(t_ref, 3), "ours_s": round(t_ours, 3),
                          "speedup": round(t_ref / t_ours, 1), "max_abs_diff": diff, "items": len(work),
                          "rouge_items_s": round(t_iref, 3), "process_results_s": round(t_items, 3),
                          "process_results_speedup": round(t_iref / t_items, 1)}))
    print(f"all splits, paper metric per pair: rouge {totals['pairs_ref']:.2f} s, ours {totals['pairs_ours']:.2f} s, "
          f"speedup {totals['pairs_ref'] / totals['pairs_ours']:.1f}x")
    print(f"all splits, whole per-item scoring (process_results) against rouge's paper metric alone: "
          f"rouge {totals['items_ref']:.2f} s, ours {totals['items_ours']:.2f} s, "
          f"speedup {totals['items_ref'] / totals['items_ours']:.1f}x")


if __name__ == "__main__":
    main()
