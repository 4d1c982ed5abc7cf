"""The lm-eval output contract: what ``lm_eval --output_path OUT --log_samples`` leaves, read one way.

lm-eval writes, per run, ``OUT/<sanitised model name>/results_<date>.json`` and one
``samples_<task>_<date>.jsonl`` per task with the same ``<date>``. The judges and the
leaderboard both read runs through this module:

- :func:`find_runs` takes output roots, model folders, results files or samples files and
  returns one :class:`Run` per results file, with its samples files;
- a run is named by one rule, :func:`run_identity`: the model lm-eval's ``model_name`` names
  (the base model: ``pretrained``, ``model``, ``path`` or ``engine`` of ``model_args``), plus the
  adapter when there is one (``peft``, ``lora_local_path`` or ``delta``): ``base+adapter``;
- :func:`read_records` yields the per-item records of a samples file (document, answer,
  per-item metrics); :func:`read_scores` reads only ids, roles, item types and metric
  values, fast, for the leaderboard.

Judge summaries are written by the judges and read by the leaderboard; their kind and
schema version live here, once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_json, read_jsonl

JUDGE_SUMMARY_KIND = "rolebench-judge-summary"
JUDGE_SUMMARY_SCHEMA_VERSION = 2

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


def find_runs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Run], list[InputError]]:
    """Every run under ``inputs`` (folders searched recursively), and what could not be read.

    A samples file given directly keeps only its own task. Runs come in input order, those of
    a folder sorted by path.
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
            found = sorted(p for p in source.rglob("results_*.json") if RESULTS.match(p.name))
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


# --------------------------------------------------------------------------- per-item records


@dataclass(frozen=True)
class Record:
    """One logged item: the RoleBench document, the model's (filtered) answer, per-item metrics."""

    doc_id: int
    doc: dict
    response: str
    metrics: dict[str, float]
    doc_hash: str = ""


_NOT_METRICS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                "doc_hash", "prompt_hash", "target_hash"}


def _check(cond: bool, path: Path, line: int, name: str | None, problem: str) -> None:
    if not cond:
        raise InputError(path, line, name, problem)


def _response(row: dict, path: Path, line: int) -> str:
    resp = row.get("filtered_resps")
    _check("filtered_resps" in row, path, line, "filtered_resps", "missing")
    if isinstance(resp, list):
        _check(len(resp) > 0, path, line, "filtered_resps", "empty list")
        resp = resp[0]
        if isinstance(resp, list):  # repeats: the first generation
            _check(len(resp) > 0, path, line, "filtered_resps[0]", "empty list")
            resp = resp[0]
    _check(isinstance(resp, str), path, line, "filtered_resps", f"expected generated text, got {type(resp).__name__}")
    return resp


def check_doc(doc: Any, path: Path, line: int) -> dict:
    """A document logged by a RoleBench task; anything else names the line and field."""
    _check(isinstance(doc, dict), path, line, "doc", "missing or not an object (is this a RoleBench task?)")
    for key in ("role", "question", "system_prompt"):
        _check(isinstance(doc.get(key), str), path, line, f"doc.{key}", "missing or not a string")
    refs = doc.get("references")
    _check(isinstance(refs, list) and all(isinstance(r, str) for r in refs), path, line,
           "doc.references", "missing or not a list of strings")
    _check(doc.get("lang") in ("en", "zh"), path, line, "doc.lang", f"expected 'en' or 'zh', got {doc.get('lang')!r}")
    _check(doc.get("kind") in ("general", "specific"), path, line, "doc.kind",
           f"expected 'general' or 'specific', got {doc.get('kind')!r}")
    _check(doc.get("rolegpt") is None or isinstance(doc.get("rolegpt"), str), path, line, "doc.rolegpt",
           "expected a string or null")
    return doc


def _metrics(row: dict, path: Path, line: int) -> dict[str, float]:
    out = {}
    for key, value in row.items():
        if key in _NOT_METRICS or value is None:
            continue
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), path, line, key,
               f"expected a number (a per-item metric), got {value!r}")
        out[key] = float(value)
    return out


def _record(row: Any, path: Path, line: int) -> Record:
    _check(isinstance(row, dict), path, line, None, "expected a JSON object")
    doc_id = row.get("doc_id")
    _check(isinstance(doc_id, int) and not isinstance(doc_id, bool), path, line, "doc_id",
           "missing or not an integer")
    return Record(doc_id, check_doc(row.get("doc"), path, line), _response(row, path, line),
                  _metrics(row, path, line), str(row.get("doc_hash", "")))


def read_records(path: str | os.PathLike, limit: int | None = None) -> list[Record]:
    """The items of a samples file, validated, sorted by ``doc_id``; ``limit`` keeps the first N."""
    path = Path(path)
    records, seen = [], set()
    for line, row in read_jsonl(path, "samples file"):
        record = _record(row, path, line)
        _check(record.doc_id not in seen, path, line, "doc_id", f"duplicate doc_id {record.doc_id}")
        seen.add(record.doc_id)
        records.append(record)
    records.sort(key=lambda r: r.doc_id)
    return records[:limit] if limit is not None else records


def _record_decoder(metrics: Sequence[str] | None, with_docs: bool = True):
    """Decode one samples line into a :class:`Record` (all metrics, or only ``metrics``, faster)."""
    import msgspec

    if metrics is None:
        decode = _lenient(msgspec.json.Decoder().decode)
        return lambda raw, path, line: _record(decode(raw), path, line)
    struct = msgspec.defstruct("RecordLine", [("doc_id", Any, None), ("doc", Any if with_docs else msgspec.Raw, None),
                                              ("filtered_resps", Any, msgspec.UNSET), ("doc_hash", Any, ""),
                                              *((m, Any, None) for m in metrics)])
    decode = _lenient(msgspec.json.Decoder(struct).decode)

    def record(raw: bytes, path: Path, line: int) -> Record:
        row = decode(raw)
        doc_id = row.doc_id
        _check(isinstance(doc_id, int) and not isinstance(doc_id, bool), path, line, "doc_id",
               "missing or not an integer")
        response = _response({} if row.filtered_resps is msgspec.UNSET else {"filtered_resps": row.filtered_resps},
                             path, line)
        values = {m: getattr(row, m) for m in metrics if getattr(row, m) is not None}
        doc = check_doc(row.doc, path, line) if with_docs else None
        return Record(doc_id, doc, response, _metrics(values, path, line), str(row.doc_hash))
    return record


def read_records_at(path: str | os.PathLike, positions: Iterable[tuple[int, int]],
                    metrics: Sequence[str] | None = None, with_docs: bool = True) -> list[Record]:
    """The records of the lines at ``positions``, validated like :func:`read_records`.

    ``positions`` are ``(byte offset, line number)`` pairs, as :func:`read_scores` gives them
    (``Scores.offsets``, ``Scores.lines``): a few items of a large file are read without
    decoding the rest (the leaderboard's item browser). With ``metrics``, a record holds only
    those metrics, and the prompt and raw responses are skipped without being built; with
    ``with_docs=False`` as well, so is the document (``Record.doc`` is None; ``doc_hash`` says
    which document it was).
    """
    import msgspec

    path = Path(path)
    record = _record_decoder(metrics, with_docs or metrics is None)
    records = []
    try:
        with path.open("rb") as handle:
            for offset, line in positions:
                handle.seek(offset)
                try:
                    records.append(record(handle.readline(), path, line))
                except msgspec.ValidationError as err:
                    raise _msgspec_error(path, line, err, metrics or ()) from None
                except msgspec.DecodeError as err:
                    raise InputError(path, line, None, f"invalid JSON ({err}); changed since it was read?") from None
    except OSError as err:
        raise InputError(path, None, None, f"cannot read samples file: {err.strerror}") from None
    return records


def iter_records(runs: Iterable[Run], tasks: Sequence[str] | None = None) -> Iterator[tuple[Run, str, list[Record]]]:
    """``(run, task, records)`` of the newest samples of each (name, task), optionally only ``tasks``."""
    for run, task, path in latest_samples(runs):
        if tasks is None or task in tasks:
            yield run, task, read_records(path)


# --------------------------------------------------------------------------- per-item scores, fast

#: Bits of the item types of role-specific items (``Scores.types``); see ``data.KNOWN_TYPES``.
TYPE_BITS = {"script_based": 1, "script_agnostic": 2}


@dataclass
class Scores:
    """One samples file's per-item scores, sorted by ``doc_id`` (numpy arrays).

    Attributes:
        doc_ids: int64 document ids.
        metrics: metric name -> float64 values, NaN where the item was not scored.
        roles: int32 codes into ``role_names``.
        role_names: the roles of this file, in order of first appearance.
        types: uint8 bit masks of :data:`TYPE_BITS`.
        offsets: int64 byte offset of each item's line (for :func:`read_records_at`).
        lines: int64 line number of each item.
        item_ids: int32 codes into ``item_names`` of ``doc.item_id`` (multi-turn tasks), or None
            when no document has one.
        item_names: the item ids, in order of first appearance.
        depths: int32 ``doc.depth`` (0 when absent), or None when no document has one.
    """

    doc_ids: Any
    metrics: dict[str, Any]
    roles: Any
    role_names: list[str]
    types: Any
    offsets: Any = None
    lines: Any = None
    item_ids: Any = None
    item_names: list[str] = field(default_factory=list)
    depths: Any = None


def _msgspec_error(path: Path, line: int, err: Exception, metrics: Sequence[str]) -> InputError:
    import msgspec

    if not isinstance(err, msgspec.ValidationError):  # a subclass of DecodeError
        return InputError(path, line, None, f"invalid JSON ({err}); truncated or corrupt file?")
    text = str(err)
    at = re.search(r"at `\$\.?([^`]*)`", text)
    name = at.group(1) if at and at.group(1) else None
    got = re.search(r"got `([^`]*)`", text)
    if name in metrics:
        return InputError(path, line, name, f"expected a number (a per-item metric), got {got.group(1) if got else text}")
    return InputError(path, line, name, re.sub(r"\s*-\s*at `[^`]*`", "", text).replace("`", "").lower())


def _score_decoder(metrics: Sequence[str]):
    """A msgspec decoder of one samples line that builds only the fields the scores need."""
    import msgspec

    doc = msgspec.defstruct("ScoreDoc", [("role", str, ""), ("type", msgspec.Raw, msgspec.Raw(b"null")),
                                         ("item_id", str | None, None), ("depth", int | None, None)])
    line = msgspec.defstruct("ScoreLine", [("doc_id", int), ("doc", doc, msgspec.field(default_factory=doc)),
                                           *((m, float | None, None) for m in metrics)])
    return msgspec.json.Decoder(line).decode


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _lenient(decode):
    """``decode``, falling back to ``json`` for a line msgspec refuses as JSON but Python reads.

    Python's json accepts a lone surrogate escape (``"\\ud800"``), which msgspec rejects; such a
    line is still a line of the file: it is read, with U+FFFD for the surrogate, not lost.
    """
    import json

    import msgspec

    def lenient(raw: bytes):
        try:
            return decode(raw)
        except msgspec.ValidationError:
            raise
        except msgspec.DecodeError:
            try:
                value = json.loads(raw)
            except ValueError:
                raise msgspec.DecodeError("JSON is malformed") from None
            return decode(msgspec.json.encode(_scrub(value)))
    return lenient


def _decode_lines(path: Path, data: bytes, metrics: Sequence[str]) -> tuple[list, list[int], list[int]]:
    """Every non-blank line decoded, with its byte offset and line number."""
    import msgspec

    decode = _score_decoder(metrics)
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    try:  # the common case, one list comprehension: no blank lines, nothing invalid
        rows = [decode(raw) for raw in raw_lines]
        numbers = list(range(1, len(rows) + 1))
    except (msgspec.ValidationError, msgspec.DecodeError):
        rows, numbers = [], []
        decode = _lenient(decode)
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            try:
                rows.append(decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as err:
                raise _msgspec_error(path, number, err, metrics) from None
            numbers.append(number)
    starts, at = [], 0
    for raw in raw_lines:
        starts.append(at)
        at += len(raw) + 1
    return rows, [starts[n - 1] for n in numbers] if len(numbers) != len(starts) else starts, numbers


def _codes(values: list, np) -> tuple[Any, list]:
    """Integer codes of ``values`` (in order of first appearance) and the distinct values."""
    distinct = list(dict.fromkeys(values))
    codes = {v: i for i, v in enumerate(distinct)}
    return np.fromiter(map(codes.__getitem__, values), np.int32, len(values)), distinct


def _type_bits(raw: bytes) -> int:
    import msgspec

    try:
        types = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return 0
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    return sum({TYPE_BITS.get(n.strip().lower(), 0) for n in names if isinstance(n, str)})


def read_scores(path: str | os.PathLike, metrics: Sequence[str]) -> Scores:
    """ids, roles, item types and ``metrics`` of a samples file; nothing else is built.

    Written for speed (a RoleBench run logs ~60k lines of ~1-4 KB and the leaderboard reads
    hundreds of runs): msgspec decodes each line into a struct holding only these fields
    (the prompt, answer and references are skipped without being built), and the columns
    are gathered with one comprehension each, not an append per item.
    :func:`read_records` is the full, validating reader.
    """
    import operator

    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(path, None, None, f"cannot read samples file: {err.strerror}") from None
    if data and not data.endswith(b"\n"):  # lm-eval ends every line with a newline: the write was cut off
        raise InputError(path, data.count(b"\n") + 1, None, "last line has no newline; truncated file?")
    rows, offsets, numbers = _decode_lines(path, data, metrics)
    n = len(rows)
    doc_ids = np.fromiter(map(operator.attrgetter("doc_id"), rows), np.int64, n)
    docs = list(map(operator.attrgetter("doc"), rows))
    columns = {m: np.array(list(map(operator.attrgetter(m), rows)), dtype=np.float64) for m in metrics}
    roles, role_names = _codes(list(map(operator.attrgetter("role"), docs)), np)
    type_codes, type_raws = _codes([bytes(d.type) for d in docs], np)
    types = np.array([_type_bits(t) for t in type_raws] or [0], dtype=np.uint8)[type_codes]
    item_values = list(map(operator.attrgetter("item_id"), docs))
    item_ids, item_names = _codes(item_values, np) if any(v is not None for v in item_values) else (None, [])
    depth_values = list(map(operator.attrgetter("depth"), docs))
    depths = (np.array([d or 0 for d in depth_values], dtype=np.int32)
              if any(d is not None for d in depth_values) else None)
    scores = Scores(doc_ids, columns, roles, role_names, types, np.array(offsets, dtype=np.int64),
                    np.array(numbers, dtype=np.int64), item_ids, item_names, depths)
    if n > 1 and not bool(np.all(doc_ids[1:] > doc_ids[:-1])):
        _sort(path, scores, np)
    return scores


def _sort(path: Path, scores: Scores, np) -> None:
    """Put ``scores`` in doc_id order (lm-eval writes them in order; a shuffled file still reads)."""
    order = np.argsort(scores.doc_ids, kind="stable")
    ids = scores.doc_ids[order]
    if np.any(ids[1:] == ids[:-1]):
        dup = int(ids[1:][ids[1:] == ids[:-1]][0])
        raise InputError(path, None, "doc_id", f"doc_id {dup} appears more than once")
    scores.doc_ids = ids
    scores.metrics = {m: v[order] for m, v in scores.metrics.items()}
    for name in ("roles", "types", "offsets", "lines", "item_ids", "depths"):
        if getattr(scores, name) is not None:
            setattr(scores, name, getattr(scores, name)[order])
