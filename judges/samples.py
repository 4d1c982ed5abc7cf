"""Reading what lm-eval logged with ``--output_path OUT --log_samples``.

lm-eval writes ``OUT/<sanitised model>/samples_<task>_<date>.jsonl`` (one line per doc:
``doc_id``, ``doc``, ``filtered_resps``, metrics...) next to ``results_<date>.json``
(whose ``model_name`` names the model). Inputs may be a samples file, a model folder or
an output root holding several model folders; in a folder the newest file per task wins.
Malformed lines raise :class:`~rolebench_eval.data.RoleBenchDataError` naming file, line, field.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rolebench_eval.data import RoleBenchDataError
from rolebench_eval.fileio import read_jsonl

log = logging.getLogger(__name__)

_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.:\-]+)\.jsonl$")


@dataclass(frozen=True)
class SamplesFile:
    """One lm-eval samples file, with the task and model it belongs to."""

    path: Path
    task: str
    date: str
    model: str


@dataclass(frozen=True)
class Sample:
    """One logged generation: the RoleBench doc and the model's (filtered) answer."""

    doc_id: int
    doc: dict
    response: str


def model_name(folder: Path, date: str) -> str:
    """``model_name`` from the results file of the same run, else the folder's name.

    lm-eval names a model without ``pretrained=``-like arguments with a random id; our
    ``rolegpt`` replay is such a model, so its runs are named "rolegpt" instead.
    """
    candidates = [folder / f"results_{date}.json"] + sorted(folder.glob("results_*.json"), reverse=True)
    for path in candidates:
        if path.is_file():
            try:
                results = json.loads(path.read_text(encoding="utf-8"))
                name, config = results.get("model_name"), results.get("config") or {}
            except (json.JSONDecodeError, AttributeError):
                raise RoleBenchDataError(path, None, None, "not a JSON object (an lm-eval results file?)") from None
            if isinstance(config, dict) and config.get("model") == "rolegpt":
                return "rolegpt"
            if isinstance(name, str) and name:
                return name
    return folder.name


def _describe(path: Path) -> SamplesFile:
    match = _NAME.match(path.name)
    if not match:
        raise RoleBenchDataError(path, None, None, "not an lm-eval samples file name "
                                 "(expected samples_<task>_<date>.jsonl)")
    return SamplesFile(path, match["task"], match["date"], model_name(path.parent, match["date"]))


def find_samples(inputs: Iterable[str | os.PathLike]) -> list[SamplesFile]:
    """Every samples file under ``inputs``; in each folder only the newest per task."""
    found: dict[tuple[Path, str], SamplesFile] = {}
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            files = [_describe(path)]
        elif path.is_dir():
            files = [_describe(p) for p in sorted(path.rglob("samples_*.jsonl")) if _NAME.match(p.name)]
            if not files:
                raise RoleBenchDataError(path, None, None, "no lm-eval samples_<task>_<date>.jsonl files "
                                         "(was lm-eval run with --log_samples?)")
        else:
            raise RoleBenchDataError(path, None, None, "no such file or folder")
        for sf in files:
            key = (sf.path.parent.resolve(), sf.task)
            if key in found and found[key].date != sf.date:
                older, newer = sorted([found[key], sf], key=lambda s: s.date)
                log.warning("%s: using the newest samples of %s (%s), not %s", sf.path.parent, sf.task,
                            newer.path.name, older.path.name)
                sf = newer
            found[key] = sf
    return sorted(found.values(), key=lambda s: (s.model, s.task, str(s.path)))


def _field(cond: bool, path: Path, line: int, name: str, problem: str) -> None:
    if not cond:
        raise RoleBenchDataError(path, line, name, problem)


def _response(row: dict, path: Path, line: int) -> str:
    resp = row.get("filtered_resps")
    _field("filtered_resps" in row, path, line, "filtered_resps", "missing")
    if isinstance(resp, list):
        _field(len(resp) > 0, path, line, "filtered_resps", "empty list")
        resp = resp[0]
        if isinstance(resp, list):  # repeats: the first generation
            _field(len(resp) > 0, path, line, "filtered_resps[0]", "empty list")
            resp = resp[0]
    _field(isinstance(resp, str), path, line, "filtered_resps", f"expected generated text, got {type(resp).__name__}")
    return resp


def _check_doc(doc, path: Path, line: int) -> None:
    _field(isinstance(doc, dict), path, line, "doc", "missing or not an object (is this a RoleBench task?)")
    for key in ("role", "question", "system_prompt"):
        _field(isinstance(doc.get(key), str), path, line, f"doc.{key}", "missing or not a string")
    refs = doc.get("references")
    _field(isinstance(refs, list) and all(isinstance(r, str) for r in refs), path, line,
           "doc.references", "missing or not a list of strings")
    _field(doc.get("lang") in ("en", "zh"), path, line, "doc.lang", f"expected 'en' or 'zh', got {doc.get('lang')!r}")
    _field(doc.get("kind") in ("general", "specific"), path, line, "doc.kind",
           f"expected 'general' or 'specific', got {doc.get('kind')!r}")
    _field(doc.get("rolegpt") is None or isinstance(doc.get("rolegpt"), str), path, line, "doc.rolegpt",
           "expected a string or null")


def read_samples(path: str | os.PathLike, limit: int | None = None) -> list[Sample]:
    """The samples of a file, validated; ``limit`` keeps the first N (by doc_id)."""
    samples, seen = [], set()
    for line_no, row in read_jsonl(path, "samples file"):
        _field(isinstance(row, dict), path, line_no, None, "expected a JSON object")
        doc_id = row.get("doc_id")
        _field(isinstance(doc_id, int) and not isinstance(doc_id, bool), path, line_no, "doc_id",
               "missing or not an integer")
        _field(doc_id not in seen, path, line_no, "doc_id", f"duplicate doc_id {doc_id}")
        seen.add(doc_id)
        _check_doc(row.get("doc"), path, line_no)
        samples.append(Sample(doc_id, row["doc"], _response(row, path, line_no)))
    samples.sort(key=lambda s: s.doc_id)
    return samples[:limit] if limit is not None else samples


def baseline_answers(source: str | os.PathLike, task: str) -> tuple[str, dict[tuple[str, str], str]]:
    """Another model's answers for ``task``, keyed by raw (role, question), and its name."""
    files = [sf for sf in find_samples([source]) if sf.task == task]
    if not files:
        raise RoleBenchDataError(source, None, None, f"the baseline has no samples for task {task}")
    if len(files) > 1:
        raise RoleBenchDataError(source, None, None, f"several samples files for task {task} "
                                 f"({', '.join(str(sf.path) for sf in files)}); point at one model's folder or file")
    answers = {(s.doc["role"], s.doc["question"]): s.response for s in read_samples(files[0].path)}
    return files[0].model, answers
