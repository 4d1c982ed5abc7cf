"""Per-item records of a samples file: document, answer, per-item metrics, validated.

:func:`read_records` reads a whole file; :func:`read_records_at` reads a few lines of a large
one by byte offset (the leaderboard's item browser). Every problem names the file, the line and
the field. The samples' error lines (:func:`decode_error`) are shared with :mod:`.scores`; lenient
decoding comes from :mod:`rolebench_eval.outputs.codec`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from rolebench_eval.catalogue import languages, split_depth_metric
from rolebench_eval.errors import InputError
from rolebench_eval.fileio import read_jsonl

from .codec import field_and_problem, lenient_decode
from .runs import Run, latest_samples

#: The per-item metric of an answer whose reasoning block never closed (tasks/reasoning.py): 1.0, scored empty.
UNFINISHED_REASONING = "unfinished_reasoning"


def is_unfinished_metric(name: str) -> bool:
    """``unfinished_reasoning``, or one of its per-depth names (``unfinished_reasoning_d4``)."""
    return name == UNFINISHED_REASONING or (split_depth_metric(name) or ("",))[0] == UNFINISHED_REASONING


@dataclass(frozen=True)
class Record:
    """One logged item: the RoleBench document, the model's (filtered) answer, per-item metrics."""

    doc_id: int
    doc: dict
    response: str  # the answer: lm-eval's filtered_resps, without the reasoning block
    metrics: dict[str, float]
    doc_hash: str = ""

    @property
    def unfinished_reasoning(self) -> bool:
        """The model was still reasoning when it stopped: ``response`` is the empty answer it scored as."""
        return any(value for name, value in self.metrics.items() if is_unfinished_metric(name))


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
    langs = languages()
    _check(doc.get("lang") in langs, path, line, "doc.lang", f"expected one of {', '.join(langs)}, got {doc.get('lang')!r}")
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
        decode = lenient_decode(msgspec.json.Decoder().decode)
        return lambda raw, path, line: _record(decode(raw), path, line)
    decode = lenient_decode(msgspec.json.Decoder(_line_struct(tuple(metrics), with_docs)).decode)

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


@lru_cache(maxsize=None)
def _line_struct(metrics: tuple[str, ...], with_docs: bool) -> type:
    """The fields of a samples line that a record of ``metrics`` needs (the prompt and raw responses skipped)."""
    import msgspec

    return msgspec.defstruct("RecordLine", [("doc_id", Any, None), ("doc", Any if with_docs else msgspec.Raw, None),
                                            ("filtered_resps", Any, msgspec.UNSET), ("doc_hash", Any, ""),
                                            *((m, Any, None) for m in metrics)])


def _decode_all(raws: list[bytes], metrics: tuple[str, ...], with_docs: bool) -> list | None:
    """Every line in one decoder call (a few microseconds each), or None when one is not plain JSON: then each
    line is decoded on its own, leniently, so that a bad one is named by its line."""
    import msgspec

    try:
        return _lines_decoder(metrics, with_docs).decode(b"[" + b",".join(raws) + b"]")
    except msgspec.DecodeError:
        return None


@lru_cache(maxsize=None)
def _lines_decoder(metrics: tuple[str, ...], with_docs: bool):
    import msgspec

    return msgspec.json.Decoder(list[_line_struct(metrics, with_docs)])


def _lines_at(path: Path, offsets: Iterable[int]) -> list[bytes]:
    """The line starting at each byte offset, sliced from the file mapped in memory (a seek and a read
    per line cost ten times as much); past the end, ``b""``."""
    import mmap

    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return [b"" for _ in offsets]
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            ends = [data.find(b"\n", offset) for offset in offsets]
            return [data[offset:len(data) if end < 0 else end + 1] for offset, end in zip(offsets, ends)]


def _plain_record(row, metrics: tuple[str, ...], where: tuple[Path, int] | None) -> Record | None:
    """The record of a decoded line of the usual shape (an integer id, one generated text, numeric
    metrics), checked without the general path's per-field calls; None for anything else, which the
    general path then reads, naming what is wrong. ``where``: (path, line) to check the document at,
    None when the record holds none."""
    doc_id, resp = row.doc_id, row.filtered_resps
    if type(doc_id) is not int or type(resp) is not list or not resp or type(resp[0]) is not str:
        return None
    values = {}
    for name in metrics:
        value = getattr(row, name)
        if value is not None:
            if type(value) is not float and type(value) is not int:
                return None
            values[name] = float(value)
    return Record(doc_id, None if where is None else check_doc(row.doc, *where), resp[0], values, str(row.doc_hash))


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

    path, positions = Path(path), list(positions)
    record = _record_decoder(metrics, with_docs or metrics is None)
    try:
        raws = _lines_at(path, [offset for offset, _ in positions])
    except OSError as err:
        raise InputError(path, None, None, f"cannot read samples file: {err.strerror}") from None
    metrics = None if metrics is None else tuple(metrics)
    rows = None if metrics is None else _decode_all(raws, metrics, with_docs)
    records = []
    for i, (raw, (_, line)) in enumerate(zip(raws, positions)):
        try:
            fast = rows and _plain_record(rows[i], metrics, (path, line) if with_docs else None)
            records.append(fast or record(raw, path, line))
        except msgspec.ValidationError as err:
            raise decode_error(path, line, err, metrics or ()) from None
        except msgspec.DecodeError as err:
            raise InputError(path, line, None, f"invalid JSON ({err}); changed since it was read?") from None
    return records


def iter_records(runs: Iterable[Run], tasks: Sequence[str] | None = None) -> Iterator[tuple[Run, str, list[Record]]]:
    """``(run, task, records)`` of the newest samples of each (name, task), optionally only ``tasks``."""
    for run, task, path in latest_samples(runs):
        if tasks is None or task in tasks:
            yield run, task, read_records(path)


def decode_error(path: Path, line: int, err: Exception, metrics: Sequence[str]) -> InputError:
    import msgspec

    if not isinstance(err, msgspec.ValidationError):  # a subclass of DecodeError
        return InputError(path, line, None, f"invalid JSON ({err}); truncated or corrupt file?")
    name, problem = field_and_problem(err)
    if name in metrics:
        got = re.search(r"got `([^`]*)`", str(err))
        return InputError(path, line, name,
                          f"expected a number (a per-item metric), got {got.group(1) if got else err}")
    return InputError(path, line, name, problem)
