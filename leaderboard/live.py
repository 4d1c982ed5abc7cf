"""The conversations' columns (``rolebench-eval converse``, the catalogue's ``live_tasks``).

An item is one conversation; its per-item metrics are its means over its turns (``break``: its
break rate; ``spe`` where a turn asked a RoleBench item) and each turn's value (``break_d3``: the
third turn's). Everything goes through the leaderboard's one bootstrap: conversations resampled
within each character, as items within roles. Three things come out per task:

- the columns' cells (means over conversations, with their 95% intervals), like any task metric;
- the drift curves: each main metric by turn, per model, with intervals;
- per-character cells of each main metric (the ``character`` breakdown).

Replay and live are different tasks, so they never share a column, a curve or a breakdown group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rolebench_eval.catalogue import depth_metric, split_depth_metric
from rolebench_eval.catalogue import metrics as catalogue_metrics

from .bootstrap import Resampling, TaskItems, percentile_ci, role_groups, task_bootstrap
from .compute import Stat, point_stats, task_matrix, with_intervals
from .inputs import TaskRun
from .model import Cell, Row, Schema, clean

#: What the item browser scores a conversation by: its character breaks (the live metric lower is better).
BROWSER_METRIC = next(m for m, info in catalogue_metrics().items()
                      if "live" in info.families and info.main and info.higher_is_better is False)


@dataclass
class Live:
    """stats: task -> metric -> row -> Stat; curves: row -> task -> metric -> [(turn, Cell)];
    characters: row -> "character · metric · task label" -> Cell."""

    stats: dict[str, dict[str, dict[str, Stat]]] = field(default_factory=dict)
    curves: dict[str, dict[str, dict[str, list[tuple[int, Cell]]]]] = field(default_factory=dict)
    characters: dict[str, dict[str, Cell]] = field(default_factory=dict)


def _wanted(runs: dict[str, TaskRun], mains: set[str]) -> set[str]:
    """The main metrics and their per-turn values that the runs report."""
    return {m for tr in runs.values() for m in tr.values if m in mains or (split_depth_metric(m) or ("",))[0] in mains}


def _curves(stats: dict[str, dict[str, Stat]], mains: list[str]) -> dict[str, dict[str, list[tuple[int, Cell]]]]:
    """row -> metric -> [(turn, Cell)] from the per-turn stats."""
    out: dict[str, dict[str, list[tuple[int, Cell]]]] = {}
    turns = sorted((hit[1], hit[0], m) for m in stats if (hit := split_depth_metric(m)) and hit[0] in mains)
    for turn, metric, name in turns:
        for row, stat in stats[name].items():
            out.setdefault(row, {}).setdefault(metric, []).append((turn, stat.cell()))
    return out


def _characters(task: str, label: str, matrix, mains: list[str], resampling: Resampling) -> dict[str, dict[str, Cell]]:
    """row -> "character · metric · label" -> Cell: each main metric's mean over a character's conversations."""
    out: dict[str, dict[str, Cell]] = {}
    groups = role_groups(matrix.role_codes, matrix.role_names)
    for metric in (m for m in mains if m in matrix.values):
        values = matrix.values[metric]
        boot = task_bootstrap(task, TaskItems({metric: values}, matrix.role_codes, matrix.role_names,
                                              matrix.type_bits), metric, [], resampling, breakdowns=True)
        for character, pos in groups.items():
            sub = values[:, pos]
            counts = (~np.isnan(sub)).sum(axis=1)
            lo, hi = percentile_ci(boot.roles[character])
            for i, row in enumerate(matrix.names):
                if counts[i]:
                    out.setdefault(row, {})[f"{character} · {metric} · {label}"] = Cell(
                        float(np.nanmean(sub[i].astype(np.float64))), float(lo[i]), float(hi[i]), int(counts[i]))
    return out


def live_analysis(schema: Schema, rows: list[Row], task_runs: dict[str, dict[str, TaskRun]], role_names: list[str],
                  resampling: Resampling) -> Live:
    """The conversations' stats with intervals, drift curves and per-character cells (see the module docstring)."""
    live = Live()
    for task in schema.live:
        runs = {r.name: task_runs[r.name][task] for r in rows if task in task_runs[r.name]}
        mains = [m for m in schema.tasks[task].metrics if catalogue_metrics()[m].main]
        if not runs:
            continue
        wanted = _wanted(runs, set(mains))
        live.stats[task] = point_stats(runs, wanted)
        matrix = task_matrix(runs, role_names, wanted)
        if matrix is not None:
            paper = schema.tasks[task].paper_metric
            boot = task_bootstrap(task, matrix, paper if paper in matrix.values else next(iter(matrix.values)), [],
                                  resampling, breakdowns=False)
            with_intervals({task: live.stats[task]}, {task: matrix}, {task: boot})
            for row, cells in _characters(task, schema.tasks[task].label, matrix, mains, resampling).items():
                live.characters.setdefault(row, {}).update(cells)
        for row, by_metric in _curves(live.stats[task], mains).items():
            live.curves.setdefault(row, {})[task] = by_metric
    return live


# --------------------------------------------------------------------------- the item browser


def conversation_item(task: str, role: int, doc_id: int, answers: list[tuple[int, dict | None]]) -> dict:
    """One conversation in the browser: its scenario, and each model's turns (user, reply, whether it broke
    character), side by side; in live mode each model met its own user turns, so each answer carries them."""
    first = next(row for _, row in answers if row is not None)
    doc = first["doc"]
    item = {"task": task, "role": role, "doc_id": doc_id, "question": clean(f"{doc.get('scenario_kind')}: "
                                                                             f"{doc['user_turns'][0]}"),
            "references": [], "rolegpt": None, "type": clean(str(doc.get("scenario_kind"))), "depth": None,
            "scenario": clean(str(doc.get("scenario_id"))), "answers": []}
    for index, row in answers:
        if row is None or row["doc"].get("scenario_hash") != doc.get("scenario_hash"):
            continue  # not talked through, or another scenario under the same doc_id (another scenario file)
        turns = [{"user": clean(u), "reply": clean(r), "broke": bool(row.get(depth_metric(BROWSER_METRIC, n)))}
                 for n, (u, r) in enumerate(zip(row["doc"]["user_turns"], row["filtered_resps"]), 1)]
        item["answers"].append({"model": index, "text": "", "same_as_rolegpt": False, "score": row.get(BROWSER_METRIC),
                                "judges": [], "unfinished": False, "turns": turns})
    return item
