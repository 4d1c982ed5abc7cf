"""Per-item scores of samples files: read in parallel, cached, and put in the board's role codes.

Reading is the core's (``rolebench_eval.outputs.read_scores``: only ids, roles, item types
and the metric fields are decoded). A RoleBench run logs ~60k lines and a board reads
hundreds of runs, so:

- runs not in the cache are read by a pool of processes, one per CPU (the decoding is
  CPU-bound and holds the GIL); a few small files are read in this process;
- what was read is cached per run (one archive for all its samples files, so a warm build
  opens 200 files, not 1,200), keyed by each file's path, identity, size and modification
  time (:mod:`.cache`), as one ``numpy.savez`` archive written with the package's atomic write
  (``rolebench_eval.fileio.write_atomic``): a killed build leaves a usable cache, and a
  missing, stale or unreadable entry is simply read again from the samples files.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import zipfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import Scores, read_scores

from . import workers as machine  # (read_all's own ``workers`` is a number)
from .cache import Job, entry
from .model import clean

log = logging.getLogger(__name__)
# A warm build reads ~60k items per run for hundreds of runs: each run's archive holds only what
# the board needs, as compactly as exactness allows (see _pack); the line positions, which only
# the item browser needs, are read from the archive when it asks.
_WARM = ("ids", "roles", "types", "floats", "ints", "item_ids", "depths")  # what a warm build reads
# What the item browser will show of one run, read with its scores: items per role, and for each file the
# metrics of its answers (None: none of that file)
Browse = tuple[int, list[tuple[str, ...] | None]]


def _int_column(values: np.ndarray) -> np.ndarray | None:
    """``values`` as int32 when that is exact (token counts), else None."""
    if values.size == 0 or not np.isfinite(values).all() or np.signbit(values[values == 0]).any():
        return None
    if np.abs(values).max() >= 2**31 or not (values == np.round(values)).all():
        return None
    return values.astype(np.int32)


def _pack(got: list[Scores], job: Job) -> bytes:
    """One archive per run, each column concatenated over its files, with a JSON index.

    Exact, but compact: doc ids that are 0..n-1 and metrics that are all NaN are not stored,
    integer-valued metrics are stored as int32, role codes as int16 when they fit.
    """
    cols: dict[str, list] = {"ids": [], "roles": [], "types": [], "floats": [], "ints": [], "offsets": [],
                             "lines": [], "item_ids": [], "depths": []}
    meta = []
    for scores, (_, metrics) in zip(got, job):
        n = scores.doc_ids.size
        offsets, lines = scores.positions()
        info = {"n": n, "roles": scores.role_names, "items": scores.item_names, "metrics": {},
                "ids": not np.array_equal(scores.doc_ids, np.arange(n)),
                "item_ids": scores.item_ids is not None, "depths": scores.depths is not None}
        if info["ids"]:
            cols["ids"].append(scores.doc_ids)
        for m in metrics:
            values = scores.metrics[m]
            ints = None if np.isnan(values).all() else _int_column(values)
            kind = "nan" if np.isnan(values).all() else "int" if ints is not None else "float"
            info["metrics"][m] = kind
            if kind != "nan":
                cols["ints" if kind == "int" else "floats"].append(ints if kind == "int" else values)
        cols["roles"].append(scores.roles)
        cols["types"].append(scores.types)
        cols["offsets"].append(offsets)
        cols["lines"].append(lines)
        for name in ("item_ids", "depths"):
            if info[name]:
                cols[name].append(getattr(scores, name))
        meta.append(info)
    small = all(len(info["roles"]) < 2**15 for info in meta)
    dtypes = {"ids": "<i8", "roles": "<i2" if small else "<i4", "types": "u1", "floats": "<f8", "ints": "<i4",
              "offsets": "<i8", "lines": "<i4", "item_ids": "<i4", "depths": "<i4"}
    arrays = {k: np.concatenate(v).astype(dtypes[k]) if v else np.empty(0, dtypes[k]) for k, v in cols.items()}
    # The columns a warm build reads go into one byte array (each part 8-byte aligned): one archive
    # member to open and check instead of seven; the positions stay apart, read only when asked.
    parts, index, at = [], {}, 0
    for name in _WARM:
        raw = arrays[name].tobytes()
        index[name] = [dtypes[name], at, arrays[name].size]
        parts += [raw, bytes(-len(raw) % 8)]
        at += len(raw) + (-len(raw) % 8)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps({"files": meta, "columns": index}, ensure_ascii=False)),
             warm=np.frombuffer(b"".join(parts), np.uint8), offsets=arrays["offsets"], lines=arrays["lines"])
    return buffer.getvalue()


def _unpack(path: Path, data, job: Job) -> list[Scores] | None:
    """The Scores of the archive ``data`` (slices of its columns, no copies), positions left to read."""
    index = json.loads(str(data["meta"]))
    meta, blob = index["files"], data["warm"]
    if len(meta) != len(job) or blob.dtype != np.uint8:
        return None
    col = {k: blob[at:at + np.dtype(dtype).itemsize * n].view(dtype) for k, (dtype, at, n) in index["columns"].items()}
    if set(col) != set(_WARM) or any(col[k].size != index["columns"][k][2] for k in col):
        return None
    roles = col["roles"].astype(np.int32) if col["roles"].dtype != np.int32 else col["roles"]
    out, at = [], {k: 0 for k in col}

    def take(name: str, n: int):
        at[name] += n
        return col[name][at[name] - n:at[name]]

    start = 0
    for info, (_, metrics) in zip(meta, job):
        n = info["n"]
        if list(info["metrics"]) != list(metrics):
            return None
        doc_ids = take("ids", n) if info["ids"] else np.arange(n, dtype=np.int64)
        values = {m: np.full(n, np.nan) if kind == "nan" else take("floats", n) if kind == "float"
                  else take("ints", n).astype(np.float64) for m, kind in info["metrics"].items()}
        scores = Scores(doc_ids, values, roles[start:start + n], info["roles"], take("types", n),
                        load_positions=functools.partial(_positions, path, start, n))
        if info["item_ids"]:
            scores.item_ids, scores.item_names = take("item_ids", n), info["items"]
        if info["depths"]:
            scores.depths = take("depths", n)
        at["roles"] = start = start + n
        out.append(scores)
    return out if all(at[k] == col[k].size for k in col) else None


def _positions(path: Path, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The line positions of one file of a cached run (the item browser's; not read otherwise)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            offsets, lines = data["offsets"][start:start + n], data["lines"][start:start + n]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, None, None, f"cannot read the samples cache ({exc}); delete it and build again")
    if offsets.size != n or lines.size != n:
        raise InputError(path, None, None, "the samples cache is cut short; delete it and build again")
    return offsets, lines.astype(np.int64)


def load(root: Path, job: Job) -> list[Scores] | None:
    """The cached extract of one run's samples files; None on a miss (absent, stale, unreadable)."""
    try:
        path = entry(root, job)
        with zipfile.ZipFile(path) as archive:
            return _unpack(path, {name: _member(archive, name) for name in ("meta", "warm")}, job)
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        return None


def _member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array of a ``numpy.savez`` archive, read in one piece (``np.load`` reads it in 256 kB
    chunks: a third of a warm build's reading); anything but a plain array is refused."""
    from numpy.lib import format as npy

    raw = archive.read(f"{name}.npy")  # the archive's CRC is checked here
    stream = io.BytesIO(raw)
    version = npy.read_magic(stream)
    if version != (1, 0):
        return npy.read_array(io.BytesIO(raw), allow_pickle=False)
    shape, fortran, dtype = npy.read_array_header_1_0(stream)
    if dtype.hasobject or fortran:
        raise ValueError(f"{name}: not a plain array")
    count = int(np.prod(shape))
    # read-only, like the cache it comes from: the board builds new arrays, never writes into these
    return np.frombuffer(raw, dtype, count=count, offset=stream.tell()).reshape(shape)


def save(root: Path, job: Job, got: list[Scores]) -> None:
    """Store the extract (atomically; a failure is a warning, never an error)."""
    try:
        write_atomic(entry(root, job), _pack(got, job))
    except OSError as exc:
        log.warning("cannot write the samples cache under %s: %s", root, exc)


def _read(task: tuple[Job, Path | None, Browse | None]) -> list[Scores | InputError]:
    """Read one run's samples files (in a worker process or here) and cache them when all read;
    with ``browse``, each file's likely answers in the item browser too (:func:`.items.first_answers`)."""
    job, root, browse = task
    got: list[Scores | InputError] = []
    for path, metrics in job:
        try:
            got.append(read_scores(path, metrics))
        except InputError as exc:
            got.append(exc)
    if root is not None and not any(isinstance(g, InputError) for g in got):
        save(root, job, got)
    if browse is not None:
        from .items import first_answers

        per_role, wanted = browse
        for (path, _), one, metrics in zip(job, got, wanted):
            if metrics is not None and not isinstance(one, InputError):
                one.answers = first_answers(path, one, per_role, metrics)
    return got


def _size(job: Job) -> int:
    return sum(path.stat().st_size for path, _ in job)


def read_all(jobs: list[Job], cache_dir: Path | None, workers: int | None = None,
             browse: list[Browse | None] | None = None, pool=None) -> list[list[Scores | InputError]]:
    """The scores of every run's samples files, in order; an unreadable file gives its error.
    ``browse`` (one per job): the answers to read with the scores of a file not cached (``Scores.answers``);
    ``pool``: the build's :class:`.workers.Workers` (else, when worth it, processes started for this read)."""
    from tqdm.auto import tqdm

    out: list = [None] * len(jobs)
    if cache_dir is not None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(os.cpu_count() or 1) as threads:  # the archives' reads and CRCs release the GIL
            out = list(threads.map(functools.partial(load, cache_dir), jobs))
    todo = [i for i, got in enumerate(out) if got is None]
    browse = browse or [None] * len(jobs)
    sizes = {i: _size(jobs[i]) for i in todo}
    workers = min(workers or os.cpu_count() or 1, len(todo))
    bar = tqdm(total=sum(sizes.values()), desc="reading samples", unit="B", unit_scale=True,
               disable=None if todo else True)
    if workers > 1 and sum(sizes.values()) >= machine.PARALLEL_BYTES:
        todo.sort(key=lambda i: -sizes[i])  # largest first: the workers finish together
        with machine.Workers(workers) if pool is None else nullcontext(pool) as started:
            tasks = [(jobs[i], cache_dir, browse[i]) for i in todo]
            for i, got in zip(todo, started.pool(len(todo)).map(_read, tasks)):
                out[i] = got
                bar.update(sizes[i])
    else:
        for i in todo:
            out[i] = _read((jobs[i], cache_dir, browse[i]))
            bar.update(sizes[i])
    bar.close()
    return out


@dataclass
class DocIndex:
    """Codes shared by every run of a board: role names and multi-turn item ids."""

    roles: list[str] = field(default_factory=list)
    role_codes: dict[str, int] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)
    item_codes: dict[str, int] = field(default_factory=dict)
    tables: dict = field(default_factory=dict, repr=False)

    def code(self, role: str) -> int:
        """The code of ``role``, given a new one on first sight."""
        return _code(clean(role), self.roles, self.role_codes)

    def recode(self, scores: Scores) -> Scores:
        """``scores`` with its file-local role and item codes replaced by this index's."""
        if scores.roles.size:
            scores.roles = self._table(scores.role_names, self.roles, self.role_codes)[scores.roles]
        if scores.item_ids is not None and scores.item_ids.size:
            scores.item_ids = self._table(scores.item_names, self.items, self.item_codes)[scores.item_ids]
        scores.role_names, scores.item_names = self.roles, self.items
        return scores

    def _table(self, names: list[str], values: list[str], codes: dict[str, int]) -> np.ndarray:
        """The board's codes of a file's ``names`` (runs of one task share them: computed once)."""
        key = (id(values), tuple(names))
        if key not in self.tables:
            self.tables[key] = np.array([_code(clean(n), values, codes) for n in names], dtype=np.int32)
        return self.tables[key]


def _code(value: str, values: list[str], codes: dict[str, int]) -> int:
    if value not in codes:
        codes[value] = len(values)
        values.append(value)
    return codes[value]
