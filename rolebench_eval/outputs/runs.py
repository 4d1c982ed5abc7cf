"""Runs: what ``lm_eval --output_path OUT --log_samples`` leaves, found and named one way.

lm-eval writes, per run, ``OUT/<sanitised model name>/results_<date>.json`` and one
``samples_<task>_<date>.jsonl`` per task with the same ``<date>``. :func:`find_runs` takes
output roots, model folders, results files or samples files and returns one :class:`Run` per
results file, with its samples files; :func:`run_identity` names it (see the package docstring).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_json

RESULTS = re.compile(r"^results_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.:\-]+)\.json$")
SAMPLES = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.:\-]+)\.jsonl$")
BASE_KEYS = ("pretrained", "model", "path", "engine")  # lm-eval's model_name keys, adapters left out
ADAPTER_KEYS = ("peft", "lora_local_path", "delta")


def sanitize_model_name(name: str) -> str:
    """lm-eval's folder name for a model (``org/model`` -> ``org__model``).

    The rule of ``lm_eval.utils.sanitize_model_name``, repeated to keep lm-eval unimported.
    """
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def model_args(config: dict) -> dict[str, str]:
    """``config.model_args`` of a results file as a dict (lm-eval writes a dict or ``k=v,...``)."""
    args = config.get("model_args")
    if isinstance(args, str):
        return dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    return {str(k): str(v) for k, v in args.items()} if isinstance(args, dict) else {}


def run_identity(results: dict) -> tuple[str, str | None]:
    """``(model, adapter)`` of a results file; see the module docstring for the rule."""
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    args = model_args(config)
    adapter = next((args[k] for k in ADAPTER_KEYS if args.get(k)), None)
    model = next((args[k] for k in BASE_KEYS if args.get(k)), None)
    if model is None:  # lm-eval named it (a random id when model_args name nothing)
        model = results.get("model_name") if adapter is None else None
    model = model or config.get("model") or "unknown"
    return str(model), adapter


def run_name(model: str, adapter: str | None) -> str:
    """The one name of a run: ``model``, or ``model+adapter``."""
    return model if not adapter else f"{model}+{adapter}"


@dataclass(eq=False)
class Run:
    """One lm-eval run: its results file, what it was asked from, and its samples files."""

    results_path: Path
    source: Path  # the input argument it was found under
    date: str
    results: dict
    model: str
    adapter: str | None
    samples: dict[str, Path] = field(default_factory=dict)  # task -> samples file of this run

    @property
    def name(self) -> str:
        return run_name(self.model, self.adapter)

    @property
    def folder(self) -> Path:
        return self.results_path.parent

    def task_metadata(self, task: str) -> dict:
        """``configs.<task>.metadata``: what our tasks recorded (data provenance, versions, counts)."""
        meta = ((self.results.get("configs") or {}).get(task) or {}).get("metadata")
        return meta if isinstance(meta, dict) else {}


def read_run(results_path: str | os.PathLike, source: str | os.PathLike | None = None) -> Run:
    """The run of one ``results_<date>.json``, with every samples file of the same date beside it."""
    path = Path(results_path)
    match = RESULTS.match(path.name)
    if not match:
        raise InputError(path, None, None, "not an lm-eval results file name (expected results_<date>.json)")
    data = read_json(path, "results file")
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(path, None, "results", "expected an lm-eval results file (a JSON object with 'results')")
    model, adapter = run_identity(data)
    run = Run(path, Path(source) if source is not None else path, match["date"], data, model, adapter)
    for sample in sorted(path.parent.glob(f"samples_*_{match['date']}.jsonl")):
        found = SAMPLES.match(sample.name)
        if found and found["date"] == match["date"]:
            run.samples[found["task"]] = sample
    return run


def _results_for_samples(path: Path) -> Path:
    match = SAMPLES.match(path.name)
    if not match:
        raise InputError(path, None, None, "not an lm-eval samples file name (expected samples_<task>_<date>.jsonl)")
    results = path.with_name(f"results_{match['date']}.json")
    if not results.is_file():
        raise InputError(path, None, None, f"no {results.name} beside it: lm-eval writes both; "
                                           "point at the whole output folder")
    return results


def _hidden(path: Path, root: Path) -> bool:
    """Under a dot-folder below ``root``: a run's answer cache or a partial output (``tasks/resumable.py``)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts[:-1])


def find_runs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Run], list[InputError]]:
    """Every run under ``inputs`` (folders searched recursively), and what could not be read.

    A samples file given directly keeps only its own task. Runs come in input order, those of
    a folder sorted by path; folders whose name starts with a dot are not searched.
    """
    runs, errors = [], []
    for raw in inputs:
        source = Path(raw)
        try:
            if source.is_file() and SAMPLES.match(source.name):
                run = read_run(_results_for_samples(source), source)
                task = SAMPLES.match(source.name)["task"]
                run.samples = {task: source}
                runs.append(run)
                continue
            if source.is_file():
                runs.append(read_run(source, source))
                continue
            if not source.is_dir():
                raise InputError(source, None, None, "no such file or folder")
            found = sorted(p for p in source.rglob("results_*.json")
                           if RESULTS.match(p.name) and not _hidden(p, source))
            if not found:
                raise InputError(source, None, None, "no lm-eval results_<date>.json under this folder "
                                                     "(was lm-eval run with --output_path?)")
        except InputError as err:
            errors.append(err)
            continue
        for path in found:
            try:
                runs.append(read_run(path, source))
            except InputError as err:
                errors.append(err)
    return runs, errors


def latest_samples(runs: Iterable[Run]) -> list[tuple[Run, str, Path]]:
    """``(run, task, samples file)``, the newest run of each (name, task) only."""
    chosen: dict[tuple[str, str], tuple[Run, str, Path]] = {}
    for run in runs:
        for task, path in run.samples.items():
            key = (run.name, task)
            if key not in chosen or (run.date, str(path)) > (chosen[key][0].date, str(chosen[key][2])):
                chosen[key] = (run, task, path)
    return sorted(chosen.values(), key=lambda c: (c[0].name, c[1]))
