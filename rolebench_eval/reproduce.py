"""The main job: replay RoleGPT on RoleBench and set the scores beside the paper's."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rolebench_eval.catalogue import get_task, tasks
from rolebench_eval.data import HUB_REPO
from rolebench_eval.errors import InputError, NothingUsable
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
    note: str = ""


def available_tasks(data_dir: str | Path | None) -> tuple[list[str], list[str]]:
    """RoleBench tasks whose test file exists (all of them on the Hub), and the others."""
    source = DataSource.resolve(data_dir)
    names = list(tasks())
    if source.local_root is None:
        return names, []
    have = [n for n in names if (source.local_root / get_task(n).split.dir / "test.jsonl").is_file()]
    return have, [n for n in names if n not in have]


def _scored(results: dict, task: str, metric: str) -> int:
    """Items that got ``metric`` (from the logged samples; else lm-eval's sample count)."""
    samples = (results.get("samples") or {}).get(task)
    if samples is None:
        return results["results"][task].get("sample_len", 0) if f"{metric},none" in results["results"][task] else 0
    return sum(metric in s for s in samples)


def _note(meta: dict, metric: str, scored: int) -> str:
    """Why a paper metric has no value, or what it covers."""
    raw = meta.get("raw") or {}
    if metric == "raw" and not raw.get("found", True):
        return f"no {raw['file']} in this copy of RoleBench"
    if not scored and str(meta.get("rolegpt_answers", "")).startswith("0 of"):
        return "no RoleGPT answers in the dataset for this split"
    if metric == "raw":
        return raw.get("coverage", "")
    return f"RoleGPT answers for {meta.get('rolegpt_answers', '?')}"


def comparison_rows(results: dict) -> list[Row]:
    """One row per (task, paper metric) of every task run, with the RoleGPT value the paper reports."""
    paper = reported("RoleGPT")
    rows = []
    for task in (t for t in tasks() if t in results["results"]):
        entry, res = get_task(task), results["results"][task]
        meta = (results.get("configs", {}).get(task) or {}).get("metadata") or {}
        items = results["n-samples"][task]["original"]
        for metric in entry.paper_metrics:
            value, table = paper.get((task, metric), (None, ""))
            scored = _scored(results, task, metric)
            rows.append(Row(task, metric, res.get(f"{metric},none"), value, table, scored, items,
                            _note(meta, metric, scored)))
    return rows


def format_rows(rows: list[Row]) -> str:
    from tabulate import tabulate

    def fmt(x):
        return "—" if x is None else f"{x:.4f}"

    table = [
        [r.task, r.metric.upper(), fmt(r.measured), fmt(r.paper), r.table,
         "—" if r.measured is None or r.paper is None else f"{round(r.measured - r.paper, 4) + 0.0:+.4f}",
         f"{r.scored}/{r.items}", r.note]
        for r in rows
    ]
    return tabulate(table, headers=["task", "metric", "measured", "paper", "table", "diff", "scored/items", "note"],
                    disable_numparse=True)


def reproduce(data_dir: str | Path | None = None, output_path: str | Path | None = None, limit: int | None = None):
    """Evaluate the ``rolegpt`` replay on every available split; returns (results, rows, skipped).

    Raises:
        InputError: no RoleBench test split in ``data_dir``.
        NothingUsable: no split had a RoleGPT answer to replay.
    """
    from rolebench_eval.tasks.runner import evaluate

    names, skipped = available_tasks(data_dir)
    if not names:
        raise InputError(data_dir, None, None, f"no RoleBench test split in this folder; expected the layout of "
                         f"the Hub dataset {HUB_REPO} (e.g. rolebench-zh/general/test.jsonl)")
    results = evaluate(model="rolegpt", tasks=names, data_dir=data_dir, limit=limit, output_path=output_path,
                       log_samples=True)
    rows = comparison_rows(results)
    if not any(r.measured is not None for r in rows):
        raise NothingUsable("the replay scored nothing: no split of this RoleBench copy has RoleGPT answers "
                            "(rolegpt_baseline.jsonl)")
    return results, rows, skipped
