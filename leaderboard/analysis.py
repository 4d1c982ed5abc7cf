"""The statistics of the measured rows, in order: cells, ranks, bootstrap, tests, breakdowns, continuity.

Breakdowns (per role, per item type, per language) are, like the Score, means over the
ranked tasks of per-task means restricted to one group of items; their distributions come
from the task bootstraps, averaged over tasks resample by resample.

Multi-turn continuity (tasks ``rolebench_mt_*``; per-item metrics ``<metric>_d<depth>`` on
documents carrying ``depth`` and ``item_id``): the paired drop of the paper metric from the
first to the deepest depth, item by item (paired on ``item_id``, resampled within roles),
plus the metric and the character-break rate at every depth for the score-vs-depth plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rolebench_eval.catalogue import depth_metric, split_depth_metric
from rolebench_eval.outputs import TYPE_BITS

from .bootstrap import Resampling, TaskBoot, TaskItems, percentile_ci, role_groups, task_bootstrap
from .compute import (
    Stat,
    TaskMatrix,
    assign_ranks,
    averaged_over,
    bootstrap_tasks,
    combine,
    composite_tests,
    from_boot,
    per_task,
    point_stats,
    row_cells,
    task_matrix,
    test_pairs,
    with_intervals,
)
from .inputs import TaskRun
from .live import live_analysis
from .model import Cell, Row, Schema


@dataclass
class Analysis:
    """What the writers need beyond the rows' cells."""

    ordered: list[Row]
    score_tasks: list[str]
    column_tasks: dict[str, list[str]] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)
    roles_by_task: dict[str, list[str]] = field(default_factory=dict)
    depth_curves: dict[str, dict[str, list[tuple[int, Cell]]]] = field(default_factory=dict)
    drift_curves: dict[str, dict[str, dict[str, list[tuple[int, Cell]]]]] = field(default_factory=dict)


@dataclass
class Pool:
    """Running sums over tasks of each row's group means and their distributions."""

    names: list[str]
    n_boot: int
    value: dict[str, np.ndarray] = field(default_factory=dict)
    boot: dict[str, np.ndarray] = field(default_factory=dict)
    tasks: dict[str, np.ndarray] = field(default_factory=dict)
    items: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, group: str, rows: np.ndarray, values: np.ndarray, boot: np.ndarray, items: np.ndarray) -> None:
        if group not in self.value:
            size = len(self.names)
            self.value[group], self.tasks[group] = np.zeros(size), np.zeros(size)
            self.items[group] = np.zeros(size, dtype=np.int64)
            self.boot[group] = np.zeros((size, self.n_boot), dtype=np.float32)
        keep = items > 0
        rows = rows[keep]
        self.value[group][rows] += values[keep]
        self.boot[group][rows] += boot[keep]
        self.tasks[group][rows] += 1
        self.items[group][rows] += items[keep]

    def cells(self) -> dict[str, dict[str, Cell]]:
        """row name -> group -> Cell."""
        out: dict[str, dict[str, Cell]] = {}
        for group in sorted(self.value):
            have = np.flatnonzero(self.tasks[group])
            k = self.tasks[group][have]
            lo, hi = percentile_ci(self.boot[group][have] / k[:, None])
            for j, row in enumerate(have):
                out.setdefault(self.names[row], {})[group] = Cell(
                    float(self.value[group][row] / k[j]), float(lo[j]), float(hi[j]), int(self.items[group][row]))
        return out


def _group_means(values: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sub = values[:, positions]
    counts = (~np.isnan(sub)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(sub, axis=1, dtype=np.float64) / counts, counts


def pool_groups(schema: Schema, names: list[str], matrices: dict[str, TaskMatrix], boots: dict[str, TaskBoot],
                tasks: list[str]) -> dict[str, dict[str, dict[str, Cell]]]:
    """kind ("role", "type") -> row -> group -> Cell, over ``tasks``."""
    where = {n: i for i, n in enumerate(names)}
    n_boot = next((tb.means[m].shape[1] for tb in boots.values() for m in tb.means), 0)
    pools = {"role": Pool(names, n_boot), "type": Pool(names, n_boot)}
    for task in tasks:
        if task not in boots:
            continue
        matrix, tb = matrices[task], boots[task]
        values = matrix.values[schema.tasks[task].paper_metric]
        rows = np.array([where[n] for n in matrix.names])
        for role, pos in role_groups(matrix.role_codes, matrix.role_names).items():
            means, counts = _group_means(values, pos)
            pools["role"].add(role, rows, means, tb.roles[role], counts)
        for name, bit in TYPE_BITS.items():
            if name in tb.types:
                means, counts = _group_means(values, np.flatnonzero(matrix.type_bits & bit))
                pools["type"].add(name, rows, means, tb.types[name], counts)
    return {kind: pool.cells() for kind, pool in pools.items()}


def by_language(schema: Schema, stats: dict[str, dict[str, dict[str, Stat]]],
                tasks: list[str]) -> dict[str, dict[str, Cell]]:
    """row -> language -> Cell: the Score restricted to each language's ranked tasks."""
    out: dict[str, dict[str, Cell]] = {}
    for lang in sorted({schema.tasks[t].lang for t in tasks}):
        lang_tasks = [t for t in tasks if schema.tasks[t].lang == lang]
        per = [stats[t][schema.tasks[t].paper_metric] for t in lang_tasks]
        for name in sorted(set.intersection(*(set(p) for p in per))):
            parts = [p[name] for p in per]
            out.setdefault(name, {})[lang] = combine(parts, [1 / len(parts)] * len(parts)).cell()
    return out


# --------------------------------------------------------------------------- multi-turn continuity


def _depths(values: dict[str, float], metric: str) -> set[int]:
    return {hit[1] for m in values if (hit := split_depth_metric(m)) and hit[0] == metric}


def _by_item(runs: dict[str, TaskRun], metrics: list[str]) -> TaskItems | None:
    """runs x items matrices of ``metrics``, items being ``doc.item_id`` (each depth's value from its own doc)."""
    with_items = {n: tr.items for n, tr in runs.items() if tr.items is not None and tr.items.item_ids is not None}
    if len(with_items) != len(runs) or not runs:
        return None
    union = np.unique(np.concatenate([it.item_ids for it in with_items.values()]))
    roles = np.full(union.size, -1, dtype=np.int64)
    values = {m: np.full((len(runs), union.size), np.nan) for m in metrics}
    for row, it in enumerate(with_items.values()):
        pos = np.searchsorted(union, it.item_ids)
        roles[pos] = it.roles
        for m in metrics:
            scored = ~np.isnan(it.metrics.get(m, np.full(pos.size, np.nan)))
            values[m][row, pos[scored]] = it.metrics[m][scored]
    role_names = next(iter(with_items.values())).role_names
    return TaskItems(values, roles, role_names, np.zeros(union.size, dtype=np.uint8))


def continuity(task: str, paper: str, runs: dict[str, TaskRun], resampling: Resampling
               ) -> tuple[dict[str, dict[str, Stat]], dict[str, list[tuple[int, Cell]]]]:
    """``({"continuity"|"mt_break": {row: Stat}}, {row: [(depth, Cell)]})`` of one multi-turn task.

    A probe task (``paper`` is ``break``: it scores character breaks only) gives the break rate.
    """
    probe = paper == "break"
    depths = sorted(set.intersection(*(_depths(tr.values, paper) for tr in runs.values())))
    if len(depths) < (1 if probe else 2):
        return {}, {}
    first, last = depths[0], depths[-1]
    breaks = [m for m in (depth_metric("break", d) for d in depths) if all(m in tr.values for tr in runs.values())]
    names = list(runs)
    items = _by_item(runs, sorted({depth_metric(paper, d) for d in depths} | set(breaks)))
    if probe:
        return _probe(task, last, names, items, runs, resampling), {}
    if items is None:  # no per-item records: the aggregates, unpaired, without intervals
        note = "no per-item scores: difference of the depth means, unpaired, no interval"
        drops = {n: Stat(tr.values[depth_metric(paper, first)] - tr.values[depth_metric(paper, last)], note=note)
                 for n, tr in runs.items()}
        curves = {n: [(d, Cell(tr.values[depth_metric(paper, d)])) for d in depths] for n, tr in runs.items()}
        return {"continuity": drops}, curves
    items.values["drop"] = items.values[depth_metric(paper, first)] - items.values[depth_metric(paper, last)]
    boot = task_bootstrap(task, TaskItems({m: v.astype(np.float32) for m, v in items.values.items()},
                                          items.role_codes, items.role_names, items.type_bits),
                          "drop", [], resampling, breakdowns=False)
    out: dict[str, dict[str, Stat]] = {"continuity": {}, "mt_break": {}}
    curves: dict[str, list[tuple[int, Cell]]] = {}
    for row, name in enumerate(names):
        def stat(metric: str, note: str | None = None) -> Stat:
            scored = items.values[metric][row][~np.isnan(items.values[metric][row])]
            return from_boot(float(scored.mean()) if scored.size else np.nan, boot.means[metric][row],
                             int(scored.size), note)

        out["continuity"][name] = stat("drop", f"{paper.upper()} at depth {first} minus at depth {last}, "
                                               "paired on item_id")
        if depth_metric("break", last) in breaks:
            out["mt_break"][name] = stat(depth_metric("break", last), f"character breaks at depth {last}")
        curves[name] = [(d, stat(depth_metric(paper, d)).cell()) for d in depths]
    return {k: v for k, v in out.items() if v}, curves


def _probe(task: str, last: int, names: list[str], items: TaskItems | None, runs: dict[str, TaskRun],
           resampling: Resampling) -> dict[str, dict[str, Stat]]:
    """The character-break rate at the deepest depth of a probe task, with its interval."""
    metric = depth_metric("break", last)
    if items is None:
        return {"mt_break": {n: Stat(tr.values[metric], note="no per-item scores: no interval")
                             for n, tr in runs.items()}}
    boot = task_bootstrap(task, TaskItems({metric: items.values[metric].astype(np.float32)}, items.role_codes,
                                          items.role_names, items.type_bits), metric, [], resampling, breakdowns=False)
    out = {}
    for row, name in enumerate(names):
        scored = items.values[metric][row][~np.isnan(items.values[metric][row])]
        out[name] = from_boot(float(scored.mean()) if scored.size else np.nan, boot.means[metric][row],
                              int(scored.size), f"character breaks at depth {last} (probe)")
    return {"mt_break": out}


# --------------------------------------------------------------------------- everything, in order


def analyse(schema: Schema, rows: list[Row], task_runs: dict[str, dict[str, TaskRun]], baseline: str | None,
            role_names: list[str], resampling: Resampling) -> Analysis:
    """Fill the measured rows' cells, ranks and tests; returns their order and the breakdowns.

    Rows that are not comparable are shown unranked, after the ranked ones.
    """
    matrices, stats, curves = {}, {}, {}
    for task in schema.single_turn:
        runs = {r.name: task_runs[r.name][task] for r in rows if task in task_runs[r.name]}
        if runs:
            stats[task] = point_stats(runs, schema.interval_metrics(task))
            matrix = task_matrix(runs, role_names, schema.interval_metrics(task))
            if matrix is not None:
                matrices[task] = matrix
    for task in schema.multi_turn:
        runs = {r.name: task_runs[r.name][task] for r in rows if task in task_runs[r.name]}
        if runs:
            stats[task], curves[task] = continuity(task, schema.tasks[task].paper_metric, runs, resampling)
    live = live_analysis(schema, rows, task_runs, role_names, resampling)
    stats.update(live.stats)
    ranked = [r for r in rows if r.comparable]
    # a row of conversations only (converse folders) has no say in what the Score averages over
    column_tasks = averaged_over(schema, task_runs, [r.name for r in ranked
                                                     if any(not schema.tasks[t].live for t in task_runs[r.name])])
    for col in schema.columns:  # the multi-turn tasks that every ranked row with multi-turn runs has
        if col.kind == "continuity":
            have = [{t for t in schema.multi_turn if r.name in stats.get(t, {}).get(col.metric, {})} for r in ranked]
            have = [h for h in have if h]
            column_tasks[col.key] = [t for t in schema.multi_turn if have and all(t in h for h in have)]
    score_tasks = column_tasks.get("score", [])
    for row in rows:
        row.cells.update(row_cells(schema, per_task(stats, row.name), column_tasks))
    ordered = assign_ranks(ranked) + sorted((r for r in rows if not r.comparable), key=lambda r: r.name)
    above, versus = test_pairs(ordered, baseline)
    boots, pair_index = bootstrap_tasks(schema, matrices, above + versus, score_tasks, resampling)
    with_intervals(stats, matrices, boots)
    for row in rows:
        row.cells.update(row_cells(schema, per_task(stats, row.name), column_tasks))
    _set_tests(rows, above, versus, composite_tests(above + versus, score_tasks, matrices, boots, pair_index, schema))
    breakdowns = pool_groups(schema, [r.name for r in rows], matrices, boots, score_tasks)
    breakdowns["language"] = by_language(schema, stats, score_tasks)
    if live.characters:
        breakdowns["character"] = live.characters
    roles: dict[str, list[str]] = {}
    for task in score_tasks:
        if task in matrices:
            for role in role_groups(matrices[task].role_codes, role_names):
                roles.setdefault(role, []).append(task)
    by_row: dict[str, dict[str, list[tuple[int, Cell]]]] = {}
    for task, curve_of in curves.items():
        for name, curve in curve_of.items():
            by_row.setdefault(name, {})[task] = curve
    return Analysis(ordered, score_tasks, column_tasks, breakdowns, roles, by_row, live.curves)


def _set_tests(rows: list[Row], above: list, versus: list, tests: list) -> None:
    by_name = {r.name: r for r in rows}
    for (name, _), test in zip(above, tests[:len(above)]):
        by_name[name].vs_above = test
    for (name, _), test in zip(versus, tests[len(above):]):
        by_name[name].vs_baseline = test
