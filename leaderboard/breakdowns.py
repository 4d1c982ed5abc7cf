"""Per-role, per-item-type and per-language breakdowns of the paper metric, with intervals.

Each breakdown cell is, like the Score, a mean over the ranked tasks of per-task means
restricted to one group of items (a role, an item type, a language). The distributions
come from the task bootstraps (``engine``); a group's tasks are averaged resample by
resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import Stat, TaskMatrix, combine
from .engine import TaskBoot, role_groups
from .model import Cell
from .samples import TYPE_BITS
from .schema import Schema
from .stats import percentile_ci


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
            boot = self.boot[group][have] / k[:, None]
            lo, hi = percentile_ci(boot)
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
        per_task = [stats[t][schema.tasks[t].paper_metric] for t in lang_tasks]
        for name in sorted(set.intersection(*(set(p) for p in per_task))):
            parts = [p[name] for p in per_task]
            out.setdefault(name, {})[lang] = combine(parts, [1 / len(parts)] * len(parts)).cell()
    return out
