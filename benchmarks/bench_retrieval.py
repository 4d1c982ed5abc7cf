"""BM25 demonstrations: our inverted-index scoring against ``rank_bm25``'s own ``get_scores``, same process.

Retrieves the top-k demonstrations of every test question of the Chinese splits from its
role's train items (what ``rolebench_*_zh_{fewshot,dialogue}`` do) both ways, checks that the
rankings are identical and prints the times and their ratio.

    python benchmarks/bench_retrieval.py [--data-dir ../shared/rolebench] [--k 3]
"""

from __future__ import annotations

import argparse
import os
import time

from rank_bm25 import BM25Okapi

from rolebench_eval.retrieval import BM25Index, tokenize
from rolebench_eval.source import load_split


def workload(data_dir: str, split: str):
    """Per role: the train texts (question + first reference) and the test questions."""
    test, train = load_split(split, data_dir), load_split(split, data_dir, file="train")
    roles: dict[str, tuple[list[str], list[str]]] = {}
    for item in train.items:
        roles.setdefault(item.role, ([], []))[0].append(f"{item.question}\n{item.references[0]}")
    for item in test.items:
        roles[item.role][1].append(item.question)
    return roles


def ours(roles, k):
    start, ranked = time.perf_counter(), []
    for texts, questions in roles.values():
        index = BM25Index(texts, "zh")
        ranked += [index.top_k(q, k) for q in questions]
    return time.perf_counter() - start, ranked


def reference(roles, k):
    start, ranked = time.perf_counter(), []
    for texts, questions in roles.values():
        bm25 = BM25Okapi([tokenize(t, "zh") or ["\x00"] for t in texts])
        for q in questions:
            scores = bm25.get_scores(tokenize(q, "zh"))
            ranked.append(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k])
    return time.perf_counter() - start, ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ROLEBENCH_DATA_DIR", "../shared/rolebench"))
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    for split in ("specific_zh", "general_zh"):
        roles = workload(args.data_dir, split)
        t_ref, want = reference(roles, args.k)
        t_ours, got = ours(roles, args.k)
        print(f"{split}: {len(got)} queries, rank_bm25 {t_ref:.2f} s, ours {t_ours:.2f} s, "
              f"speed-up x{t_ref / t_ours:.1f}, identical rankings: {got == want}")


if __name__ == "__main__":
    main()
