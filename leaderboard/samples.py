"""Per-item scores from lm-eval ``samples_<task>_<date>.jsonl`` files.

A samples line is large (the document, the prompt, the answer, ~4 KB on RoleBench)
while the leaderboard needs only ``doc_id``, ``doc_hash``, the per-item metric fields
and, once per document, its role and item type. lm-eval writes every line with the same
key order (``doc_id`` first; ``doc_hash``, ``prompt_hash``, ``target_hash`` and then the
metric fields last), so a file is read with a few whole-file regular-expression passes
instead of a JSON parse per line. A file whose line count does not match those passes,
or whose values are not plain numbers, is parsed line by line instead, which names the
first bad line. Documents are parsed once per new ``doc_hash``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LoadError

TYPE_BITS = {"script_based": 1, "script_agnostic": 2}
_IDS = re.compile(rb'\{"doc_id": (\d+), ')
_TAILS = re.compile(rb'"doc_hash": "([0-9a-f]*)", "prompt_hash": "[0-9a-f]*", "target_hash": "[0-9a-f]*"([^\n]*)\n')


@dataclass
class DocIndex:
    """Role codes, and the role and item type of every document seen so far (by ``doc_hash``)."""

    roles: list[str] = field(default_factory=list)
    role_codes: dict[str, int] = field(default_factory=dict)
    docs: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def code(self, role: str) -> int:
        """The code of ``role``, given a new one on first sight."""
        if role not in self.role_codes:
            self.role_codes[role] = len(self.roles)
            self.roles.append(role)
        return self.role_codes[role]

    def add(self, doc_hash: bytes, doc: dict) -> tuple[int, int]:
        """Record a document's role and item type; returns (role code, type bits)."""
        types = doc.get("type") or []
        bits = 0
        for name in [types] if isinstance(types, str) else types:
            bits |= TYPE_BITS.get(name, 0)
        self.docs[doc_hash] = (self.code(str(doc.get("role", ""))), bits)
        return self.docs[doc_hash]


@dataclass
class ItemScores:
    """One run's per-item scores on one task, sorted by ``doc_id``.

    Attributes:
        doc_ids: int64 document ids.
        metrics: metric name -> float64 values; NaN where the item was not scored.
        roles: int32 role codes into :attr:`DocIndex.roles`.
        types: uint8 bit masks of :data:`TYPE_BITS`.
    """

    doc_ids: np.ndarray
    metrics: dict[str, np.ndarray]
    roles: np.ndarray
    types: np.ndarray


def _full_record(path: Path, number: int, line: bytes) -> dict:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise LoadError(path, number, None, f"not valid JSON ({getattr(exc, 'msg', exc)}); truncated or corrupt "
                                            "file?") from None
    if not isinstance(record, dict):
        raise LoadError(path, number, None, "expected a JSON object")
    return record


def _numbers(path: Path, number: int, name: str, value) -> float:
    if value is None:
        return np.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoadError(path, number, name, f"expected a number, got {value!r}")
    return float(value)


def _fast(data: bytes, metrics: tuple[str, ...]) -> tuple[np.ndarray, list[bytes], dict[str, np.ndarray]] | None:
    """doc ids, doc hashes and metric values from whole-file passes; None when the layout differs."""
    n = data.count(b"\n")
    ids, tails = _IDS.findall(data), _TAILS.findall(data)
    if len(ids) != n or len(tails) != n:
        return None
    rest = b"\n".join(t[1] for t in tails)
    values = {}
    try:
        for m in metrics:
            found = re.findall(b'"' + re.escape(m.encode()) + rb'": ([^,}\n]*)', rest)
            if len(found) not in (0, n):
                return None  # some items lack the metric: let the line-by-line path place them
            values[m] = np.array(found).astype(np.float64) if found else np.full(n, np.nan)
        doc_ids = np.array(ids).astype(np.int64)
    except ValueError:
        return None  # null, strings, ...: the line-by-line path reports or handles them
    return doc_ids, [t[0] for t in tails], values


def _slow(path: Path, lines: list[bytes], metrics: tuple[str, ...]):
    """The same, one JSON parse per line; errors name the line and field."""
    records = [_full_record(path, i + 1, line) for i, line in enumerate(lines)]
    doc_ids = np.empty(len(records), dtype=np.int64)
    for i, rec in enumerate(records):
        doc_id = rec.get("doc_id")
        if not isinstance(doc_id, int) or isinstance(doc_id, bool):
            raise LoadError(path, i + 1, "doc_id", f"expected an integer, got {doc_id!r}")
        doc_ids[i] = doc_id
    hashes = [str(rec.get("doc_hash", f"{path}:{i}")).encode() for i, rec in enumerate(records)]
    values = {m: np.array([_numbers(path, i + 1, m, rec.get(m)) for i, rec in enumerate(records)], dtype=np.float64)
              for m in metrics}
    return doc_ids, hashes, values


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, None, None, f"cannot read: {exc.strerror}") from None
    if data and not data.endswith(b"\n"):
        # lm-eval ends every line with a newline; a missing one means the write was cut off.
        raise LoadError(path, data.count(b"\n") + 1, None, "last line has no newline; truncated file?")
    return data


def read_samples(path: str | Path, metrics: tuple[str, ...], index: DocIndex) -> ItemScores:
    """Read one samples file.

    Args:
        path: The ``samples_*.jsonl`` file.
        metrics: The per-item metric fields to keep (absent fields are NaN).
        index: Shared document index; new documents are added to it.

    Raises:
        LoadError: naming the file, line and field of the first problem.
    """
    path = Path(path)
    data = _read(path)
    lines = None
    parsed = _fast(data, metrics)
    if parsed is None:
        lines = [line for line in data.split(b"\n") if line.strip()]
        parsed = _slow(path, lines, metrics)
    doc_ids, hashes, values = parsed
    meta = [index.docs.get(h) for h in hashes]
    for i, found in enumerate(meta):
        if found is None:
            lines = lines if lines is not None else data.split(b"\n")
            doc = _full_record(path, i + 1, lines[i]).get("doc")
            if not isinstance(doc, dict):
                raise LoadError(path, i + 1, "doc", "expected the document as a JSON object")
            meta[i] = index.add(hashes[i], doc)
    order = np.argsort(doc_ids, kind="stable")
    doc_ids = doc_ids[order]
    if doc_ids.size > 1 and np.any(doc_ids[1:] == doc_ids[:-1]):
        dup = int(doc_ids[1:][doc_ids[1:] == doc_ids[:-1]][0])
        raise LoadError(path, None, "doc_id", f"doc_id {dup} appears more than once")
    codes = np.array(meta, dtype=np.int64).reshape(-1, 2)
    return ItemScores(doc_ids, {m: v[order] for m, v in values.items()},
                      codes[order, 0].astype(np.int32), codes[order, 1].astype(np.uint8))
