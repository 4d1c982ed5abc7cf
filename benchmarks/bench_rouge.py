"""Paper-faithful ROUGE-L: ours against the PyPI `rouge` package (pltrdy), same process.

Scores every (RoleGPT answer, reference) pair of the local RoleBench test files with
both implementations and prints the times, their ratio and the largest difference.

    python benchmarks/bench_rouge.py [--data-dir ../shared/rolebench]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rouge import Rouge

from rolebench_eval.catalogue import splits
from rolebench_eval.data import read_baseline, read_items
from rolebench_eval.metrics import cjk_split, rouge_l


def pairs(root: Path):
    """(answer, reference, lang) for every reference of every item that has a RoleGPT answer."""
    out = {}
    for name, split in splits().items():
        test, base = root / split.dir / "test.jsonl", root / split.dir / "rolegpt_baseline.jsonl"
        if test.is_file() and base.is_file():
            answers = read_baseline(base)
            out[name] = [(answers[(i.role, i.question)], ref, split.lang)
                         for i in read_items(test) if (i.role, i.question) in answers for ref in i.references]
    return out


def time_it(fn, work):
    start = time.perf_counter()
    values = [fn(h, r, lang) for h, r, lang in work]
    return time.perf_counter() - start, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    root = Path(parser.parse_args().data_dir)
    scorer = Rouge(metrics=["rouge-l"], stats=["r"])

    def reference(h, r, lang):
        pre = cjk_split if lang == "zh" else str
        return scorer.get_scores(pre(h), pre(r))[0]["rouge-l"]["r"]

    def ours(h, r, lang):
        return rouge_l(h, [r], lang)

    total_ours = total_ref = 0.0
    for name, work in pairs(root).items():
        t_ref, v_ref = time_it(reference, work)
        t_ours, v_ours = time_it(ours, work)
        diff = max(abs(a - b) for a, b in zip(v_ours, v_ref))
        total_ours, total_ref = total_ours + t_ours, total_ref + t_ref
        print(json.dumps({"split": name, "pairs": len(work), "rouge_s": round(t_ref, 3), "ours_s": round(t_ours, 3),
                          "speedup": round(t_ref / t_ours, 1), "max_abs_diff": diff}))
    print(f"all splits: rouge {total_ref:.2f} s, ours {total_ours:.2f} s, speedup {total_ref / total_ours:.1f}x")


if __name__ == "__main__":
    main()
