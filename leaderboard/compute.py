"""From runs to cells: per-task matrices, point estimates, ranks, bootstrap intervals, paired tests.

Order matters: the ranking needs only point estimates; the pairs to test follow from the
ranking; then one bootstrap per task (``bootstrap.task_bootstrap``) gives every interval,
pair and breakdown at once. A :class:`Stat` carries a value, its 95% interval and the
bootstrap distribution behind it, so derived columns (means over tasks, the seen-unseen
gap) get their intervals by combining distributions resample by resample rather than by
adding up error bars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import reduce

import numpy as np

from .bootstrap import Resampling, TaskBoot, TaskItems, paired_test, percentile_ci, role_groups, task_bootstrap
from .inputs import TaskRun
from .model import Cell, Column, PairedTest, Row, Schema


@dataclass
class Stat:
    """A value with its bootstrap distribution (None when there are no per-item scores)."""

    value: float
    boot: np.ndarray | None = None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    note: str | None = None

    def cell(self) -> Cell:
        """The value and interval, without the distribution."""
        return Cell(self.value, self.lo, self.hi, self.n, self.note)


def from_boot(value: float, boot: np.ndarray, n: int | None, note: str | None = None) -> Stat:
    """A Stat whose interval is the percentile interval of ``boot``."""
    lo, hi = percentile_ci(boot[None, :])
    return Stat(float(value), boot, float(lo[0]), float(hi[0]), n, note)


def combine(stats: list[Stat], weights: list[float]) -> Stat:
    """Weighted sum of stats, resample by resample (no interval unless all have distributions)."""
    value = float(sum(w * s.value for s, w in zip(stats, weights)))
    n = sum(s.n for s in stats) if all(s.n is not None for s in stats) else None
    if any(s.boot is None for s in stats):
        return Stat(value, n=n)
    return from_boot(value, sum(w * s.boot for s, w in zip(stats, weights)), n)


def mean_stat(stats: list[Stat | None]) -> Stat | None:
    """The mean of ``stats``; None when one is missing."""
    if not stats or any(s is None for s in stats):
        return None
    return combine(stats, [1 / len(stats)] * len(stats))


@dataclass
class TaskMatrix(TaskItems):
    """The per-item scores of all runs of one task, on the union of their doc ids.

    Items are in role order (roles sorted by name, then doc id), the order the bootstrap
    resamples in; values are float32 (the exact means come from the runs' own float64 scores).
    ``role_codes`` is -1 for items without a role.
    """

    names: list[str] = field(default_factory=list)
    doc_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def task_matrix(runs: dict[str, TaskRun], role_names: list[str], wanted: set[str]) -> TaskMatrix | None:
    """Align the runs of one task that have per-item scores of ``wanted`` metrics; None when none has any."""
    items = {name: tr.items for name, tr in runs.items() if tr.items is not None}
    metrics = sorted({m for it in items.values() for m, v in it.metrics.items()
                      if m in wanted and not np.isnan(v).all()})
    if not metrics:
        return None
    names = list(items)
    first = items[names[0]]
    same = all(np.array_equal(items[n].doc_ids, first.doc_ids) for n in names[1:])  # the usual case
    union = first.doc_ids if same else np.unique(np.concatenate([items[n].doc_ids for n in names]))
    roles, types = np.full(union.size, -1, dtype=np.int64), np.zeros(union.size, dtype=np.uint8)
    for name in reversed(names):  # the first run's documents win
        pos = slice(None) if same else np.searchsorted(union, items[name].doc_ids)
        roles[pos], types[pos] = items[name].roles, items[name].types
    order = np.concatenate(list(role_groups(roles, role_names).values()))
    where = np.empty_like(order)
    where[order] = np.arange(order.size)
    values = {}
    for metric in metrics:
        matrix = np.full((len(names), union.size), np.nan, dtype=np.float32)
        for row, name in enumerate(names):
            if metric in items[name].metrics:
                if same:
                    matrix[row] = items[name].metrics[metric][order]
                else:
                    matrix[row, where[np.searchsorted(union, items[name].doc_ids)]] = items[name].metrics[metric]
        values[metric] = matrix
    return TaskMatrix(values, roles[order], role_names, types[order], names, union[order])


def point_stats(runs: dict[str, TaskRun], intervals: set[str]) -> dict[str, dict[str, Stat]]:
    """metric -> run -> Stat without intervals: exact per-item means, else the results' aggregate."""
    out: dict[str, dict[str, Stat]] = {}
    for name, tr in runs.items():
        for metric, value in tr.values.items():
            scores = tr.items.metrics.get(metric) if tr.items is not None else None
            if scores is None:
                out.setdefault(metric, {})[name] = Stat(value, note="no per-item scores (run without "
                                                                    "--log_samples): no interval")
                continue
            scored = scores[~np.isnan(scores)]
            if scored.size:
                note = (f"{scored.size} of {tr.n_original} items scored"
                        if tr.n_original and scored.size < tr.n_original else None)
                if metric == "raw" and tr.raw_coverage:
                    note = f"{note} ({tr.raw_coverage})" if note else tr.raw_coverage
                if metric not in intervals:
                    note = "; ".join(filter(None, [note, "descriptive: no interval"]))
                out.setdefault(metric, {})[name] = Stat(float(scored.mean()), n=int(scored.size), note=note)
    return out


def column_stat(col: Column, schema: Schema, got: dict[str, Stat], tasks: dict[tuple[str, str], Stat],
                column_tasks: dict[str, list[str]]) -> Stat | None:
    """The value of ``col`` for one row.

    Args:
        col: The column.
        schema: Task metadata (paper metric of each task).
        got: The row's stats of the columns computed so far, by key.
        tasks: The row's per-task stats, by (task, metric).
        column_tasks: The tasks each averaging column averages over ("score": the ranked tasks).
    """
    paper = {t: info.paper_metric for t, info in schema.tasks.items()}
    over = column_tasks.get(col.key, [])
    if col.kind == "task_metric":
        return tasks.get((col.task, col.metric))
    if col.kind == "mean_of":
        return mean_stat([got.get(k) for k in col.of])
    if col.kind == "score":
        return mean_stat([tasks.get((t, paper[t])) for t in over])
    if col.kind in ("task_mean", "continuity"):
        parts = [tasks.get((t, col.metric)) for t in over]
        stat = mean_stat(parts)
        if stat is not None:
            stat.note = ("descriptive: no interval" if not col.interval else
                         "; ".join(f"{t}: {s.note}" for t, s in zip(over, parts) if s.note) or None)
        return stat
    if col.kind == "gap":
        pairs = [(tasks.get((a, paper[a])), tasks.get((b, paper[b]))) for a, b in col.pairs
                 if a in over and b in over]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            return None
        k = len(pairs)
        return combine([s for pair in pairs for s in pair], [w / k for _ in pairs for w in (1, -1)])
    return None  # "paper" columns are reported only; judge columns are filled elsewhere


def row_cells(schema: Schema, per_task: dict[tuple[str, str], Stat], column_tasks: dict[str, list[str]]
              ) -> dict[str, Cell]:
    """All static cells of one row."""
    got: dict[str, Stat] = {}
    for col in schema.columns:
        stat = column_stat(col, schema, got, per_task, column_tasks)
        if stat is not None:
            got[col.key] = stat
    return {key: stat.cell() for key, stat in got.items()}


def averaged_over(schema: Schema, runs: dict[str, dict[str, TaskRun]], names: list[str]) -> dict[str, list[str]]:
    """Column key -> the tasks it averages over: those every one of ``names`` has a value for.

    The Score and the seen-unseen gap average the paper metric over the single-turn tasks;
    a ``task_mean`` column its metric over the Score's tasks that have it (RAW: the general
    ones); a ``continuity`` column its metric over the multi-turn tasks.
    """
    def common(tasks: list[str], metric_of) -> list[str]:
        if not names:
            return []
        have = [{t for t in tasks if t in runs[n] and metric_of(t) in runs[n][t].values} for n in names]
        shared = reduce(set.intersection, have)
        return [t for t in tasks if t in shared]

    score = common(schema.single_turn, lambda t: schema.tasks[t].paper_metric)
    out = {}
    for col in schema.columns:
        if col.kind in ("score", "gap"):
            out[col.key] = score
        elif col.kind == "task_mean":
            out[col.key] = common(score, lambda t, m=col.metric: m)
        elif col.kind == "continuity":
            out[col.key] = common(schema.multi_turn, lambda t, m=col.metric: m)
    return out


def assign_ranks(rows: list[Row]) -> list[Row]:
    """Sort by Score (best first, then by name) and give competition ranks (equal scores share one)."""
    ordered = sorted(rows, key=lambda r: (r.value("score") is None, -(r.value("score") or 0.0), r.name))
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
                out.append(None)
                break
            diff += d.mean() / len(tasks)
            boot = boot + boots[task].pairs[pair_index[task][pair]] / len(tasks)
            n_items += d.size
        else:
            out.append(paired_test(pair[1], diff, boot, n_items))
    return out


def bootstrap_tasks(schema: Schema, matrices: dict[str, TaskMatrix], pairs: list[tuple[str, str]],
                    score_tasks: list[str], resampling: Resampling
                    ) -> tuple[dict[str, TaskBoot], dict[str, dict[tuple[str, str], int]]]:
    """Every task's bootstrap; returns the boots and each task's pair indexes.

    BLAS runs single-threaded: the products are many and mid-sized, where BLAS threads cost
    more than they give on small machines, and one thread per product makes the sums
    bit-reproducible; the blocks of roles of a task run in parallel threads instead, one per
    CPU (numpy releases the GIL), and are added up in a fixed order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    pair_index: dict[str, dict[tuple[str, str], int]] = {}
    jobs = {}
    for task, matrix in matrices.items():
        paper = schema.tasks[task].paper_metric
        rows = {n: i for i, n in enumerate(matrix.names)}
        usable = [p for p in pairs if p[0] in rows and p[1] in rows] if task in score_tasks else []
        pair_index[task] = {p: k for k, p in enumerate(usable)}
        metric = paper if paper in matrix.values else next(iter(matrix.values))
        jobs[task] = (task, matrix, metric, [(rows[a], rows[b]) for a, b in usable], resampling,
                      task in score_tasks and paper in matrix.values)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        boots = {task: task_bootstrap(*job, pool=pool) for task, job in jobs.items()}
    return boots, pair_index


def with_intervals(stats: dict[str, dict[str, dict[str, Stat]]], matrices: dict[str, TaskMatrix],
                   boots: dict[str, TaskBoot]) -> None:
    """Give every per-task Stat with per-item scores its bootstrap distribution and interval."""
    for task, tb in boots.items():
        rows = {n: i for i, n in enumerate(matrices[task].names)}
        for metric, by_run in stats[task].items():
            if metric not in tb.means:
                continue
            lo, hi = percentile_ci(tb.means[metric])  # every run's interval in one call
            for name, stat in list(by_run.items()):
                if name in rows:
                    i = rows[name]
                    by_run[name] = Stat(stat.value, tb.means[metric][i], float(lo[i]), float(hi[i]), stat.n,
                                        stat.note)


def per_task(stats: dict[str, dict[str, dict[str, Stat]]], name: str) -> dict[tuple[str, str], Stat]:
    """One row's stats by (task, metric)."""
    return {(t, m): by_run[name] for t, by_metric in stats.items() for m, by_run in by_metric.items()
            if name in by_run}
