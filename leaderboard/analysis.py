"""The statistics of the measured rows: point estimates, ranks, bootstrap, tests, breakdowns.

Order matters: the ranking needs only point estimates; the pairs to test follow from the
ranking; then one bootstrap per task gives every interval, pair and breakdown at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .breakdowns import by_language, pool_groups
from .cells import (
    Stat,
    TaskMatrix,
    from_boot,
    point_stats,
    row_cells,
    task_matrix,
)
from .engine import TaskBoot, role_groups, task_bootstrap
from .inputs import TaskRun
from .model import Cell, Row
from .ranking import (
    assign_ranks,
    common_tasks,
    composite_tests,
    test_pairs,
)
from .schema import Schema
from .stats import Resampling


@dataclass
class Analysis:
    """What the renderers need beyond the rows' cells."""

    ordered: list[Row]
    score_tasks: list[str]
    breakdowns: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)
    roles_by_task: dict[str, list[str]] = field(default_factory=dict)


def _per_task(stats: dict[str, dict[str, dict[str, Stat]]], name: str) -> dict[tuple[str, str], Stat]:
    return {(t, m): by_run[name] for t, by_metric in stats.items() for m, by_run in by_metric.items()
            if name in by_run}


def _bootstrap(schema: Schema, matrices: dict[str, TaskMatrix], stats: dict, pairs: list[tuple[str, str]],
               score_tasks: list[str], resampling: Resampling):
    """Run every task's bootstrap; put the distributions into ``stats``; return boots and pair indexes.

    BLAS runs single-threaded here: the products are many and mid-sized, where threads cost
    more than they give on small machines, and one thread makes the sums bit-reproducible.
    """
    from threadpoolctl import threadpool_limits

    boots: dict[str, TaskBoot] = {}
    pair_index: dict[str, dict[tuple[str, str], int]] = {}
    for task, matrix in matrices.items():
        paper = schema.tasks[task].paper_metric
        rows = {n: i for i, n in enumerate(matrix.names)}
        usable = [p for p in pairs if p[0] in rows and p[1] in rows] if task in score_tasks else []
        pair_index[task] = {p: k for k, p in enumerate(usable)}
        with threadpool_limits(limits=1, user_api="blas"):
            tb = task_bootstrap(task, matrix, paper if paper in matrix.values else next(iter(matrix.values)),
                                [(rows[a], rows[b]) for a, b in usable], resampling,
                                breakdowns=task in score_tasks and paper in matrix.values)
        boots[task] = tb
        for metric, by_run in stats[task].items():
            for name, stat in list(by_run.items()):
                if name in rows and metric in tb.means:
                    by_run[name] = from_boot(stat.value, tb.means[metric][rows[name]], stat.n, stat.note)
    return boots, pair_index


def analyse(schema: Schema, rows: list[Row], task_runs: dict[str, dict[str, TaskRun]], baseline: str | None,
            role_names: list[str], resampling: Resampling) -> Analysis:
    """Fill the measured rows' cells, ranks and tests; returns their order and the breakdowns.

    Rows that are not comparable are shown unranked, after the ranked ones.
    """
    matrices, stats = {}, {}
    for task in schema.tasks:
        runs = {r.name: task_runs[r.name][task] for r in rows if task in task_runs[r.name]}
        if runs:
            matrix = task_matrix(runs, role_names)
            stats[task] = point_stats(runs)
            if matrix is not None:
                matrices[task] = matrix
    ranked = [r for r in rows if r.comparable]
    score_tasks = common_tasks(schema, task_runs, [r.name for r in ranked])
    for row in rows:
        row.cells.update(row_cells(schema, _per_task(stats, row.name), score_tasks))
    ordered = assign_ranks(ranked) + sorted((r for r in rows if not r.comparable), key=lambda r: r.name)
    above, versus = test_pairs(ordered, baseline)
    boots, pair_index = _bootstrap(schema, matrices, stats, above + versus, score_tasks, resampling)
    for row in rows:
        row.cells.update(row_cells(schema, _per_task(stats, row.name), score_tasks))
    tests = composite_tests(above + versus, score_tasks, matrices, boots, pair_index, schema)
    by_name = {r.name: r for r in rows}
    for (name, _), test in zip(above, tests[:len(above)]):
        by_name[name].vs_above = test
    for (name, _), test in zip(versus, tests[len(above):]):
        by_name[name].vs_baseline = test
    names = [r.name for r in rows]
    breakdowns = pool_groups(schema, names, matrices, boots, score_tasks)
    breakdowns["language"] = by_language(schema, stats, score_tasks)
    roles = {}
    for task in score_tasks:
        if task in matrices:
            for role in role_groups(matrices[task].role_codes, role_names):
                roles.setdefault(role, []).append(task)
    return Analysis(ordered, score_tasks, breakdowns, roles)
