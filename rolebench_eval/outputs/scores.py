"""Per-item scores of a samples file, fast: ids, roles, item types and metric values only.

Written for speed (a RoleBench run logs ~60k lines of ~1-4 KB and the leaderboard reads
hundreds of runs); :func:`.records.read_records` is the full, validating reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rolebench_eval.errors import InputError

from .records import lenient_decode, decode_error

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


def _score_decoder(metrics: Sequence[str]):
    """A msgspec decoder of one samples line that builds only the fields the scores need."""
    import msgspec

    doc = msgspec.defstruct("ScoreDoc", [("role", str, ""), ("type", msgspec.Raw, msgspec.Raw(b"null")),
                                         ("item_id", str | None, None), ("depth", int | None, None)])
    line = msgspec.defstruct("ScoreLine", [("doc_id", int), ("doc", doc, msgspec.field(default_factory=doc)),
                                           *((m, float | None, None) for m in metrics)])
    return msgspec.json.Decoder(line).decode


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
        decode = lenient_decode(decode)
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            try:
                rows.append(decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as err:
                raise decode_error(path, number, err, metrics) from None
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
