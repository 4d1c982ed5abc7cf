"""lm-eval runs as leaderboard inputs: ``results_*.json`` plus the matching samples files.

Only RoleBench tasks named in the schema are read. A run's name comes from its model
arguments the way lm-eval names output folders (``peft``, ``delta``, ``pretrained``,
``model``, ``path``, ``engine``), else from the model type (``rolegpt``), unless a
``--name PATH=LABEL`` mapping renames it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cache
from .errors import LoadError
from .samples import DocIndex, ItemScores, read_samples

NAME_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")
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
    name: str
    aliases: set[str]
    date: str
    limit: float | None
    tasks: dict[str, TaskRun] = field(default_factory=dict)


def discover(inputs: Iterable[str | Path]) -> tuple[list[tuple[Path, Path]], list[LoadError]]:
    """(results file, input it came from) for every input; a folder is searched recursively."""
    found, errors = [], []
    for raw in inputs:
        source = Path(raw)
        if source.is_file():
            found.append((source, source))
        elif source.is_dir():
            files = sorted(source.rglob("results_*.json"))
            if not files:
                errors.append(LoadError(source, None, None, "no results_*.json found under this folder"))
            found.extend((f, source) for f in files)
        else:
            errors.append(LoadError(source, None, None, "no such file or folder"))
    return found, errors


def read_json(path: Path) -> Any:
    """Parse a JSON file; a corrupt or truncated one raises :class:`LoadError` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, None, None, f"cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(path, exc.lineno, None, f"not valid JSON ({exc.msg}); truncated or corrupt file?") from None


def model_name(config: Mapping) -> str | None:
    """The model name lm-eval derives from ``config.model_args``, else ``config.model``."""
    args = config.get("model_args")
    if isinstance(args, str):
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    if isinstance(args, dict):
        for key in NAME_KEYS:
            if args.get(key):
                return str(args[key])
    model = config.get("model")
    return str(model) if model else None


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


def _date(path: Path) -> str:
    return path.stem[path.stem.rfind("_") + 1:]


def read_run(path: Path, source: Path, tasks: Iterable[str]) -> RunResult:
    """The aggregate part of a run (no samples yet)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise LoadError(path, None, None, "expected a JSON object (an lm-eval results file)")
    results = _field(path, data, "results", dict)
    config = _field(path, data, "config", dict)
    name = model_name(config)
    if name is None:
        raise LoadError(path, None, "config.model_args", "cannot tell the model's name; pass --name")
    limit = config.get("limit")
    run = RunResult(
        path=path, source=source, name=name,
        aliases={a for a in (name, data.get("model_name"), data.get("model_name_sanitized")) if a},
        date=_date(path),  # lm-eval's save time, ISO-like: sorts as text
        limit=float(limit) if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
    )
    for task in tasks:
        if isinstance(results.get(task), dict):
            task_run = _task_run(path, data, task)
            if task_run.values:
                run.tasks[task] = task_run
    if not run.tasks:
        raise LoadError(path, None, "results", "no RoleBench task with scores in this file")
    return run


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
    date = _date(run.path)
    for task, task_run in run.tasks.items():
        path = run.path.with_name(f"samples_{task}_{date}.jsonl")
        if not path.is_file():
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


def apply_names(run: RunResult, names: Mapping[str, str]) -> None:
    """Rename ``run`` when ``names`` maps its input, file, folder or model name to a label."""
    candidates = [str(run.source), str(run.path), str(run.path.parent), run.name]
    resolved = {str(Path(p).resolve()) for p in candidates[:3]}
    for key, label in names.items():
        if key in candidates or str(Path(key).resolve()) in resolved or key in run.aliases:
            run.aliases.add(run.name)
            run.name = label
            return
