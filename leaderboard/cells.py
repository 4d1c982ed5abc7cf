"""From runs to cells: aligned per-item matrices, statistics and the schema's derived columns.

A :class:`Stat` carries a value, its 95% interval and the bootstrap distribution behind
it, so derived columns (means over tasks, the seen-unseen gap) get their intervals by
combining distributions resample by resample rather than by adding up error bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .engine import TaskItems, role_groups
from .inputs import TaskRun
from .model import Cell
from .schema import Column, Schema
from .stats import percentile_ci


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


@dataclass
class TaskMatrix(TaskItems):
    """The per-item scores of all runs of one task, on the union of their doc ids.

    Items are in role order (roles sorted by name, then doc id), the order the bootstrap
    resamples in; values are float32 (the exact means come from the runs' own float64 scores).
    ``role_codes`` is -1 for items without a role.
    """

    names: list[str] = field(default_factory=list)
    doc_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def task_matrix(runs: dict[str, TaskRun], role_names: list[str]) -> TaskMatrix | None:
    """Align the runs of one task that have per-item scores; None when none has any."""
    with_items = {name: tr.items for name, tr in runs.items() if tr.items is not None}
    metrics = sorted({m for items in with_items.values() for m, v in items.metrics.items() if not np.isnan(v).all()})
    if not metrics:
        return None
    names = list(with_items)
    union = np.unique(np.concatenate([with_items[n].doc_ids for n in names]))
    roles = np.full(union.size, -1, dtype=np.int64)
    types = np.zeros(union.size, dtype=np.uint8)
    for name in reversed(names):  # the first run's documents win
        pos = np.searchsorted(union, with_items[name].doc_ids)
        roles[pos], types[pos] = with_items[name].roles, with_items[name].types
    order = np.concatenate(list(role_groups(roles, role_names).values()))
    where = np.empty_like(order)
    where[order] = np.arange(order.size)
    values = {}
    for metric in metrics:
        matrix = np.full((len(names), union.size), np.nan, dtype=np.float32)
        for row, name in enumerate(names):
            matrix[row, where[np.searchsorted(union, with_items[name].doc_ids)]] = with_items[name].metrics[metric]
        values[metric] = matrix
    return TaskMatrix(values, roles[order], role_names, types[order], names, union[order])


def point_stats(runs: dict[str, TaskRun]) -> dict[str, dict[str, Stat]]:
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
                out.setdefault(metric, {})[name] = Stat(float(scored.mean()), n=int(scored.size), note=note)
    return out


def combine(stats: list[Stat], weights: list[float]) -> Stat:
    """Weighted sum of stats, resample by resample (no interval unless all have distributions)."""
    value = float(sum(w * s.value for s, w in zip(stats, weights)))
    n = sum(s.n for s in stats) if all(s.n is not None for s in stats) else None
    if any(s.boot is None for s in stats):
        return Stat(value, n=n)
    return from_boot(value, sum(w * s.boot for s, w in zip(stats, weights)), n)


def _mean(stats: list[Stat | None]) -> Stat | None:
    if not stats or any(s is None for s in stats):
        return None
    return combine(stats, [1 / len(stats)] * len(stats))


def column_stat(col: Column, schema: Schema, got: dict[str, Stat], tasks: dict[tuple[str, str], Stat],
                score_tasks: list[str]) -> Stat | None:
    """The value of ``col`` for one row.

    Args:
        col: The column.
        schema: Task metadata (paper metric of each task).
        got: The row's stats of the columns computed so far, by key.
        tasks: The row's per-task stats, by (task, metric).
        score_tasks: The ranked tasks.
    """
    paper = {t: info.paper_metric for t, info in schema.tasks.items()}
    if col.kind == "task_metric":
        return tasks.get((col.task, col.metric))
    if col.kind == "mean_of":
        return _mean([got.get(k) for k in col.of])
    if col.kind == "score":
        return _mean([tasks.get((t, paper[t])) for t in score_tasks])
    if col.kind == "task_mean":
        return _mean([tasks.get((t, col.metric)) for t in score_tasks])
    if col.kind == "gap":
        pairs = [(tasks.get((a, paper[a])), tasks.get((b, paper[b]))) for a, b in col.pairs
                 if a in score_tasks and b in score_tasks]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            return None
        k = len(pairs)
        return combine([s for pair in pairs for s in pair], [w / k for _ in pairs for w in (1, -1)])
    return None  # "paper" columns are reported only; judge columns are filled elsewhere


def reported_stat(col: Column, schema: Schema, tasks: dict[tuple[str, str], float],
                  score_tasks: list[str]) -> Stat | None:
    """Score and gap of a reported row, computed from the published cells (no intervals)."""
    if col.kind not in ("score", "gap"):
        return None
    as_stats = {key: Stat(value) for key, value in tasks.items()}
    return column_stat(col, schema, {}, as_stats, score_tasks)


def row_cells(schema: Schema, per_task: dict[tuple[str, str], Stat], score_tasks: list[str]) -> dict[str, Cell]:
    """All static cells of one measured row."""
    got: dict[str, Stat] = {}
    for col in schema.columns:
        stat = column_stat(col, schema, got, per_task, score_tasks)
        if stat is not None:
            got[col.key] = stat
    return {key: stat.cell() for key, stat in got.items()}
