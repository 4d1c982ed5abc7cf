"""The main job: replay RoleGPT on RoleBench and set the scores beside the paper's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rolebench_eval.catalogue import get_task, tasks
from rolebench_eval.data import HUB_REPO
from rolebench_eval.errors import InputError
from rolebench_eval.paper import reported
from rolebench_eval.source import DataSource

log = logging.getLogger(__name__)


@dataclass
class Row:
    task: str
    metric: str
    measured: float | None
    paper: float | None
    table: str
    scored: int
    items: int


def available_tasks(data_dir: str | Path | None) -> tuple[list[str], list[str]]:
    """RoleBench tasks whose test file exists (all of them on the Hub), and the others."""
    source = DataSource.resolve(data_dir)
    names = list(tasks())
    if source.local_root is None:
        return names, []
    have = [n for n in names if (source.local_root / get_task(n).split.dir / "test.jsonl").is_file()]
    return have, [n for n in names if n not in have]


def comparison_rows(results: dict) -> list[Row]:
    """One row per (task, paper metric) measured, with the RoleGPT value the paper reports."""
    paper = reported("RoleGPT")
    rows = []
    for task, res in results["results"].items():
        if task not in tasks():
            continue
        items = results["n-samples"][task]["original"]
        for metric in ("cus", "raw", "spe"):
            value, table = paper.get((task, metric), (None, ""))
            measured = res.get(f"{metric},none")
            if measured is None and value is None:
                continue
            rows.append(Row(task, metric, measured, value, table, res.get("sample_len", 0) if measured is not None else 0, items))
    return rows


def format_rows(rows: list[Row]) -> str:
    from tabulate import tabulate

    def fmt(x):
        return "—" if x is None else f"{x:.4f}"

    table = [
        [r.task, r.metric.upper(), fmt(r.measured), fmt(r.paper), r.table,
         "—" if r.measured is None or r.paper is None else f"{round(r.measured - r.paper, 4) + 0.0:+.4f}",
         f"{r.scored}/{r.items}"]
        for r in rows
    ]
    return tabulate(table, headers=["task", "metric", "measured", "paper", "table", "diff", "scored/items"])


def reproduce(data_dir: str | Path | None = None, output_path: str | Path | None = None, limit: int | None = None):
    """Evaluate the ``rolegpt`` replay on every available split; returns (results, rows, skipped)."""
    from rolebench_eval.tasks.runner import evaluate

    names, skipped = available_tasks(data_dir)
    if not names:
        raise InputError(data_dir, None, None, f"no RoleBench test split in this folder; expected the layout of "
                         f"the Hub dataset {HUB_REPO} (e.g. rolebench-zh/general/test.jsonl)")
    results = evaluate(model="rolegpt", tasks=names, data_dir=data_dir, limit=limit,
                       output_path=output_path, log_samples=output_path is not None)
    return results, comparison_rows(results), skipped
