"""Per-item scores of a samples file, fast: ids, roles, item types and metric values only.

Written for speed (a RoleBench run logs ~60k lines of ~1-4 KB and the leaderboard reads
hundreds of runs); :func:`.records.read_records` is the full, validating reader.
"""

from __future__ import annotations

import functools
import gc
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rolebench_eval.errors import InputError

from .codec import lenient_decode
from .records import decode_error

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
        load_positions: when ``offsets`` and ``lines`` are None, a callable giving them
            (see :meth:`positions`).
        answers: ``(metrics, {doc_id: Record})`` of some items, read with the scores by whoever
            read them (the leaderboard reads its item browser's answers so), or None.
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
    load_positions: Any = field(default=None, repr=False, compare=False)
    answers: Any = field(default=None, repr=False, compare=False)

    def positions(self) -> tuple[Any, Any]:
        """``(offsets, lines)``, read on first use when they were left out (the leaderboard's cache)."""
        if self.offsets is None and self.load_positions is not None:
            self.offsets, self.lines = self.load_positions()
            self.load_positions = None
        return self.offsets, self.lines


@functools.lru_cache(maxsize=16)
def _score_decoder(metrics: tuple[str, ...]):
    """A msgspec decoder of one samples line that builds only the fields the scores need.

    The structs hold no containers (``gc=False``: the collector need not track 60k of them).
    """
    import msgspec

    doc = msgspec.defstruct("ScoreDoc", [("role", str, ""), ("type", msgspec.Raw, msgspec.Raw(b"null")),
                                         ("item_id", str | None, None), ("depth", int | None, None)], gc=False)
    line = msgspec.defstruct("ScoreLine", [("doc_id", int), ("doc", doc, msgspec.field(default_factory=doc)),
                                           *((m, float | None, None) for m in metrics)], gc=False)
    return msgspec.json.Decoder(line)


#: Bytes read and decoded at a time. Small enough that the chunk, its newline scan and msgspec's pass
#: over it stay in the CPU's cache: reading a 48 MB file whole cost a quarter more (copying it into a
#: buffer of its size and scanning that for newlines both went through memory).
CHUNK = 1 << 18


def _one_object_per_line(buf, starts, ends) -> bool:
    """Whether every line starts with ``{`` and ends with ``}`` (no blank line, no ``\\r``).

    Then, in valid JSON, no value spans two lines (a value continues past a newline only after
    ``:``, ``,`` or ``[``, never after ``}`` and never into a ``{``), so the values that
    ``decode_lines`` returns, when there are as many as lines, are the lines in order.
    """
    return bool(ends.size and (ends > starts).all() and (buf[starts] == 0x7B).all() and (buf[ends - 1] == 0x7D).all())


def _decode_chunks(path: Path, decoder) -> tuple[list, Any] | None:
    """Every line decoded, a chunk of whole lines per ``decode_lines`` call, and each line's byte offset.

    None when a chunk is not one object per line or does not decode: the caller then reads the
    file line by line, to name the bad line. Raises OSError, and :class:`InputError` when the
    last line has no newline.
    """
    import msgspec
    import numpy as np

    rows: list = []
    starts_of: list = []
    size, held, base = CHUNK, 0, 0  # the buffer's size, the bytes in it, the file offset of its first
    buffer = bytearray(size)
    with path.open("rb", buffering=0) as handle:
        while True:
            view, buf = memoryview(buffer), np.frombuffer(buffer, np.uint8)
            got = handle.readinto(view[held:])
            held += got
            ends = np.flatnonzero(buf[:held] == 0x0A)
            if not ends.size:
                if not got:  # the end of the file
                    break
                if held == size:  # a line longer than the buffer
                    size *= 2
                    buffer = buffer + bytearray(size - held)
                continue
            cut = int(ends[-1]) + 1
            starts = np.concatenate((np.zeros(1, np.int64), ends[:-1] + 1))
            if not _one_object_per_line(buf, starts, ends):
                return None
            try:  # a copy: the structs' raw ``type`` values point into what was decoded
                chunk = decoder.decode_lines(bytes(view[:cut]))
            except (msgspec.ValidationError, msgspec.DecodeError):
                return None
            if len(chunk) != ends.size:
                return None
            rows.extend(chunk)
            starts_of.append(starts + base)
            base, held = base + cut, held - cut
            buffer[:held] = buffer[cut:cut + held]
    if held:
        raise _cut_off(path, len(rows) + 1)  # every line so far decoded, one row each
    return rows, (np.concatenate(starts_of) if starts_of else np.zeros(0, np.int64))


def _cut_off(path: Path, line: int) -> InputError:
    """lm-eval ends every line with a newline: a last line without one is a write that was cut off."""
    return InputError(path, line, None, "last line has no newline; truncated file?")


def _decode_each_line(path: Path, decoder, metrics: Sequence[str]) -> tuple[list, Any, Any]:
    """Every non-blank line decoded on its own, with its byte offset and line number (numpy arrays):
    names the bad line, skips blank ones and reads lone surrogates."""
    import msgspec
    import numpy as np

    data = path.read_bytes()
    if data and data[-1] != 0x0A:  # checked first, as the chunks do: a cut-off write, not a bad line
        raise _cut_off(path, data.count(b"\n") + 1)
    rows, numbers, starts, offset = [], [], [], 0
    decode = lenient_decode(decoder.decode)
    for number, raw in enumerate(data.split(b"\n")[:-1] if data else [], start=1):
        if raw.strip():
            try:
                rows.append(decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as err:
                raise decode_error(path, number, err, metrics) from None
            numbers.append(number)
            starts.append(offset)
        offset += len(raw) + 1
    return rows, np.array(starts, dtype=np.int64), np.array(numbers, dtype=np.int64)


def _codes(values: list, np) -> tuple[Any, list]:
    """Integer codes of ``values`` (in order of first appearance) and the distinct values."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) == 1:
        return np.zeros(len(values), np.int32), distinct
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
    are gathered with one C-level pass each, not an append per item; a well-formed file is
    decoded a chunk of lines per `decode_lines` call, anything else line by line (to name the bad line).
    :func:`read_records` is the full, validating reader.
    """
    import numpy as np

    path = Path(path)
    decoder = _score_decoder(tuple(metrics))
    enabled = gc.isenabled()
    gc.disable()  # ~60k new objects per file: no point in the collector scanning them as they come
    try:
        got = _decode_chunks(path, decoder)
        if got is None:
            rows, offsets, numbers = _decode_each_line(path, decoder, metrics)
        else:
            rows, offsets = got
            numbers = np.arange(1, offsets.size + 1, dtype=np.int64)
        scores = _columns(rows, metrics, np)
    except OSError as err:
        raise InputError(path, None, None, f"cannot read samples file: {err.strerror}") from None
    finally:
        if enabled:
            gc.enable()
    scores.offsets, scores.lines = offsets, numbers
    doc_ids, n = scores.doc_ids, len(rows)
    if n > 1 and not bool(np.all(doc_ids[1:] > doc_ids[:-1])):
        _sort(path, scores, np)
    return scores


def _columns(rows: list, metrics: Sequence[str], np) -> Scores:
    """The decoded lines as numpy columns: one C-level pass (map/attrgetter) per field."""
    get, n = operator.attrgetter, len(rows)
    doc_ids = np.fromiter(map(get("doc_id"), rows), np.int64, n)
    docs = list(map(get("doc"), rows))
    columns = {m: np.fromiter(map(get(m), rows), np.float64, n) for m in metrics}  # None -> NaN
    roles, role_names = _codes(list(map(get("role"), docs)), np)
    type_codes, type_raws = _codes(list(map(bytes, map(get("type"), docs))), np)
    types = np.array([_type_bits(t) for t in type_raws] or [0], dtype=np.uint8)[type_codes]
    item_values = list(map(get("item_id"), docs))
    item_ids, item_names = _codes(item_values, np) if item_values.count(None) != n else (None, [])
    depth_values = list(map(get("depth"), docs))
    depths = (np.array([d or 0 for d in depth_values], dtype=np.int32)
              if depth_values.count(None) != n else None)
    return Scores(doc_ids, columns, roles, role_names, types, None, None, item_ids, item_names, depths)


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
