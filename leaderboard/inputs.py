"""lm-eval runs as leaderboard inputs, through the core's output contract (``rolebench_eval.outputs``).

Only RoleBench tasks named in the schema are read. A run is named by the contract's one
rule (base model, plus the adapter: ``outputs.run_identity``), unless a ``--name
PATH=LABEL`` mapping relabels it; judge summaries are matched on that same run name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rolebench_eval import outputs

from . import cache
from .errors import LoadError
from .samples import DocIndex, ItemScores, read_samples

log = logging.getLogger(__name__)
PER_ITEM_METRICS = ("cus", "spe", "raw", "rougeL_f", "resp_tokens")


@dataclass(eq=False)
class TaskRun:
    """One task of one run: aggregate scores, provenance and (when logged) per-item scores."""

    task: str
    values: dict[str, float]
    version: str | None
    data: str | None  # data fingerprint: sha256 of the test file, else the Hub commit
    prompt_version: str | None
    role_descriptions: str | None
    n_original: int | None
    samples_path: Path | None = None
    items: ItemScores | None = None


@dataclass(eq=False)
class RunResult:
    """One ``results_*.json`` file and what it says about the model."""

    path: Path
    source: Path  # the input argument it was found under
    run_name: str  # the contract's name of the run (what judge summaries carry)
    name: str  # the row label: run_name unless --name relabels it
    date: str
    limit: float | None
    samples: dict[str, Path] = field(default_factory=dict)
    tasks: dict[str, TaskRun] = field(default_factory=dict)


def discover(inputs: Iterable[str | Path]) -> tuple[list[outputs.Run], list[LoadError]]:
    """Every run under ``inputs`` (a folder is searched recursively), and what could not be read."""
    return outputs.find_runs(inputs)


def _field(path: Path, data: Mapping, key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise LoadError(path, None, key, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _metric_values(path: Path, task: str, block: Mapping) -> dict[str, float]:
    values = {}
    for key, value in block.items():
        metric, _, filt = key.partition(",")
        if filt != "none" or metric.endswith("_stderr") or value in (None, "N/A"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LoadError(path, None, f"results.{task}.{key}", f"expected a number, got {value!r}")
        values[metric] = float(value)
    return values


def _task_run(path: Path, data: Mapping, task: str) -> TaskRun:
    meta = (data.get("configs", {}).get(task) or {}).get("metadata") or {}
    provenance = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    version = meta.get("version", (data.get("versions") or {}).get(task))
    n_samples = (data.get("n-samples") or {}).get(task) or {}
    return TaskRun(
        task=task,
        values=_metric_values(path, task, data["results"][task]),
        version=None if version is None else str(float(version)) if isinstance(version, (int, float)) else str(version),
        data=provenance.get("sha256") or provenance.get("commit"),
        prompt_version=None if meta.get("prompt_version") is None else str(meta["prompt_version"]),
        role_descriptions=meta.get("role_descriptions"),
        n_original=n_samples.get("original"),
    )


def read_run(run: outputs.Run, tasks: Iterable[str]) -> RunResult:
    """The aggregate part of a run (no samples yet)."""
    data = run.results
    config = _field(run.results_path, data, "config", dict)
    limit = config.get("limit")
    result = RunResult(
        path=run.results_path, source=run.source, run_name=run.name, name=run.name,
        date=run.date,  # lm-eval's save time, ISO-like: sorts as text
        limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
        samples=dict(run.samples),
    )
    for task in tasks:
        if isinstance(data["results"].get(task), dict):
            task_run = _task_run(run.results_path, data, task)
            if task_run.values:
                result.tasks[task] = task_run
    if not result.tasks:
        raise LoadError(run.results_path, None, "results", "no RoleBench task with scores in this file")
    return result


def _items(path: Path, index: DocIndex, cache_dir: Path | None) -> ItemScores:
    """Per-item scores of one samples file, through the cache when there is one."""
    items = cache.load(cache_dir, path, PER_ITEM_METRICS, index) if cache_dir is not None else None
    if items is None:
        items = read_samples(path, PER_ITEM_METRICS, index)
        if cache_dir is not None:
            try:
                cache.save(cache_dir, path, PER_ITEM_METRICS, items, index)
            except OSError as exc:
                log.warning("cannot write the samples cache under %s: %s", cache_dir, exc)
    return items


def attach_samples(run: RunResult, index: DocIndex, cache_dir: Path | None = None) -> None:
    """Read the matching ``samples_<task>_<date>.jsonl`` files and check them against the results."""
    for task, task_run in run.tasks.items():
        path = run.samples.get(task)
        if path is None:
            continue
        items = _items(path, index, cache_dir)
        for metric, value in task_run.values.items():
            if metric not in items.metrics:
                continue
            scored = items.metrics[metric][~np.isnan(items.metrics[metric])]
            mean = float(scored.mean()) if scored.size else math.nan
            if not math.isclose(mean, value, rel_tol=1e-6, abs_tol=1e-9):
                raise LoadError(path, None, metric, f"mean over {scored.size} items is {mean!r} but "
                                                    f"{run.path.name} reports {value!r}; samples of another run?")
        task_run.samples_path, task_run.items = path, items


def apply_names(run: RunResult, names: Mapping[str, str]) -> str | None:
    """Relabel ``run`` when ``names`` maps its input, file, folder or run name; returns the key used."""
    candidates = [str(run.source), str(run.path), str(run.path.parent), run.run_name]
    resolved = {str(Path(p).resolve()) for p in candidates[:3]}
    for key, label in names.items():
        if key in candidates or str(Path(key).resolve()) in resolved:
            run.name = label
            return key
    return None
