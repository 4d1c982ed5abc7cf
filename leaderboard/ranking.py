"""Ranking the measured rows and the paired tests that say which differences are real.

The Score averages the paper metric over the tasks every ranked row has. Each ranked
row is tested against the row ranked just above it and against the baseline with a
paired bootstrap: per task, the per-item differences on the items both runs scored
(matched by ``doc_id``) are resampled (the task's own resamples, see ``engine``), and
the task means are averaged like the Score. A 95% interval of the difference that
contains 0 marks the two rows as tied.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from .cells import TaskMatrix
from .engine import TaskBoot
from .inputs import TaskRun
from .model import Row
from .schema import Schema
from .stats import PairedTest, paired_test


def common_tasks(schema: Schema, runs: dict[str, dict[str, TaskRun]], names: list[str]) -> list[str]:
    """Schema tasks (in schema order) whose paper metric every one of ``names`` has."""
    if not names:
        return []
    have = [{t for t, tr in runs[n].items() if schema.tasks[t].paper_metric in tr.values} for n in names]
    shared = reduce(set.intersection, have)
    return [t for t in schema.tasks if t in shared]


def assign_ranks(rows: list[Row]) -> list[Row]:
    """Sort by Score (best first, then by name) and give competition ranks (equal scores share one)."""
    def key(row: Row):
        score = row.value("score")
        return (score is None, -(score or 0.0), row.name)

    ordered = sorted(rows, key=key)
    previous, rank = None, 0
    for i, row in enumerate(ordered):
        score = row.value("score")
        if score is None:
            row.rank = None
            continue
        if score != previous:
            rank, previous = i + 1, score
        row.rank = rank
    return ordered


def test_pairs(ordered: list[Row], baseline: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(row, row just above) for every ranked row after the first, and (row, baseline)."""
    ranked = [r for r in ordered if r.rank is not None]
    above = [(r.name, ranked[i - 1].name) for i, r in enumerate(ranked) if i > 0]
    versus = [(r.name, baseline) for r in ranked if baseline is not None and r.name != baseline]
    return above, versus


def composite_tests(pairs: list[tuple[str, str]], tasks: list[str], matrices: dict[str, TaskMatrix],
                    boots: dict[str, TaskBoot], pair_index: dict[str, dict[tuple[str, str], int]],
                    schema: Schema) -> list[PairedTest | None]:
    """Paired tests averaged over ``tasks``; None where a run lacks per-item scores on one of them."""
    out: list[PairedTest | None] = []
    for pair in pairs:
        if not tasks or any(pair not in pair_index.get(t, {}) for t in tasks):
            out.append(None)
            continue
        diff, boot, n_items = 0.0, 0.0, 0
        for task in tasks:
            matrix, metric = matrices[task], schema.tasks[task].paper_metric
            a, b = matrix.names.index(pair[0]), matrix.names.index(pair[1])
            d = matrix.values[metric][a].astype(np.float64) - matrix.values[metric][b]
            d = d[~np.isnan(d)]
            if d.size == 0:
                break
            diff += d.mean() / len(tasks)
            boot = boot + boots[task].pairs[pair_index[task][pair]] / len(tasks)
            n_items += d.size
        else:
            out.append(paired_test(pair[1], diff, boot, n_items))
            continue
        out.append(None)
    return out
