"""Per-item scores of samples files: read in parallel, cached, and put in the board's role codes.

Reading is the core's (``rolebench_eval.outputs.read_scores``: only ids, roles, item types
and the metric fields are decoded). A RoleBench run logs ~60k lines and a board reads
hundreds of runs, so:

- runs not in the cache are read by a pool of processes, one per CPU (the decoding is
  CPU-bound and holds the GIL); a few small files are read in this process;
- what was read is cached per run (one archive for all its samples files, so a warm build
  opens 200 files, not 1,200), keyed by each file's resolved path, size and modification
  time, as one ``numpy.savez`` archive written with the package's atomic write
  (``rolebench_eval.fileio.write_atomic``): a killed build leaves a usable cache, and a
  missing, stale or unreadable entry is simply read again from the samples files.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import Scores, read_scores

from .model import clean

log = logging.getLogger(__name__)
CACHE_VERSION = 6
PARALLEL_BYTES = 64 << 20  # below this much to read, starting worker processes costs more than it saves
# The integer columns of a cached run, as compact as they can be (a warm build reads ~60k items per run).
_ITEM = np.dtype([("doc_ids", "<i8"), ("offsets", "<i8"), ("lines", "<i4"), ("roles", "<i4"), ("types", "u1")])
_TURN = np.dtype([("item_ids", "<i4"), ("depths", "<i4")])  # multi-turn tasks only

Job = list[tuple[Path, tuple[str, ...]]]  # the samples files of one run, each with the metrics to read


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rolebench-eval/leaderboard`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rolebench-eval" / "leaderboard"


def entry(root: Path, job: Job) -> Path:
    """Where the extract of one run's samples files lives; any change to one gives another name."""
    parts = [str(CACHE_VERSION)]
    for path, metrics in job:
        stat = path.stat()
        parts += [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns), ",".join(metrics)]
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
    return root / digest[:2] / f"{digest}.npz"


def _pack(got: list[Scores], job: Job) -> bytes:
    """One archive per run, three arrays: the integer columns, the metric values, a JSON index."""
    items, turns, values, meta = [], [], [], []
    for scores, (_, metrics) in zip(got, job):
        block, turn = np.empty(scores.doc_ids.size, dtype=_ITEM), np.empty(scores.doc_ids.size, dtype=_TURN)
        for name in _ITEM.names:
            block[name] = getattr(scores, name)
        for name in _TURN.names:
            turn[name] = getattr(scores, name) if getattr(scores, name) is not None else -1
        items.append(block)
        turns.append(turn)
        values += [scores.metrics[m] for m in metrics]
        meta.append({"n": block.size, "roles": scores.role_names, "items": scores.item_names,
                     "item_ids": scores.item_ids is not None, "depths": scores.depths is not None})
    buffer = io.BytesIO()
    extra = {"turns": np.concatenate(turns)} if any(m["item_ids"] or m["depths"] for m in meta) else {}
    np.savez(buffer, items=np.concatenate(items) if items else np.empty(0, dtype=_ITEM),
             values=np.concatenate(values) if values else np.empty(0),
             meta=np.array(json.dumps(meta, ensure_ascii=False)), **extra)
    return buffer.getvalue()


def _unpack(data, job: Job) -> list[Scores] | None:
    items, values, meta = data["items"], data["values"], json.loads(str(data["meta"]))
    turns = data["turns"] if "turns" in data.files else None
    if len(meta) != len(job) or items.dtype != _ITEM or (turns is not None and turns.dtype != _TURN):
        return None
    out, at, vat = [], 0, 0
    for info, (_, metrics) in zip(meta, job):
        n = info["n"]
        block = {name: np.ascontiguousarray(items[name][at:at + n]) for name in _ITEM.names}
        metric_values = {m: values[vat + i * n:vat + (i + 1) * n] for i, m in enumerate(metrics)}
        scores = Scores(block["doc_ids"], metric_values, block["roles"], info["roles"], block["types"],
                        block["offsets"], block["lines"])
        if info["item_ids"]:
            scores.item_ids, scores.item_names = np.ascontiguousarray(turns["item_ids"][at:at + n]), info["items"]
        if info["depths"]:
            scores.depths = np.ascontiguousarray(turns["depths"][at:at + n])
        out.append(scores)
        at, vat = at + n, vat + n * len(metrics)
    return out if at == items.size and vat == values.size else None


def load(root: Path, job: Job) -> list[Scores] | None:
    """The cached extract of one run's samples files; None on a miss (absent, stale, unreadable)."""
    try:
        with np.load(entry(root, job), allow_pickle=False) as data:
            return _unpack(data, job)
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        return None


def save(root: Path, job: Job, got: list[Scores]) -> None:
    """Store the extract (atomically; a failure is a warning, never an error)."""
    try:
        write_atomic(entry(root, job), _pack(got, job))
    except OSError as exc:
        log.warning("cannot write the samples cache under %s: %s", root, exc)


def _read(task: tuple[Job, Path | None]) -> list[Scores | InputError]:
    """Read one run's samples files (in a worker process or here) and cache them when all read."""
    job, root = task
    got: list[Scores | InputError] = []
    for path, metrics in job:
        try:
            got.append(read_scores(path, metrics))
        except InputError as exc:
            got.append(exc)
    if root is not None and not any(isinstance(g, InputError) for g in got):
        save(root, job, got)
    return got


def _size(job: Job) -> int:
    return sum(path.stat().st_size for path, _ in job)


def read_all(jobs: list[Job], cache_dir: Path | None, workers: int | None = None) -> list[list[Scores | InputError]]:
    """The scores of every run's samples files, in order; an unreadable file gives its error."""
    from tqdm.auto import tqdm

    out: list = [load(cache_dir, job) if cache_dir is not None else None for job in jobs]
    todo = [i for i, got in enumerate(out) if got is None]
    sizes = {i: _size(jobs[i]) for i in todo}
    workers = min(workers or os.cpu_count() or 1, len(todo))
    bar = tqdm(total=sum(sizes.values()), desc="reading samples", unit="B", unit_scale=True,
               disable=None if todo else True)
    if workers > 1 and sum(sizes.values()) >= PARALLEL_BYTES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        todo.sort(key=lambda i: -sizes[i])  # largest first: the workers finish together
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, got in zip(todo, pool.map(_read, [(jobs[i], cache_dir) for i in todo])):
                out[i] = got
                bar.update(sizes[i])
    else:
        for i in todo:
            out[i] = _read((jobs[i], cache_dir))
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

    def code(self, role: str) -> int:
        """The code of ``role``, given a new one on first sight."""
        return _code(clean(role), self.roles, self.role_codes)

    def recode(self, scores: Scores) -> Scores:
        """``scores`` with its file-local role and item codes replaced by this index's."""
        if scores.roles.size:
            table = np.array([self.code(r) for r in scores.role_names], dtype=np.int32)
            scores.roles = table[scores.roles]
        if scores.item_ids is not None and scores.item_ids.size:
            table = np.array([_code(clean(i), self.items, self.item_codes) for i in scores.item_names],
                             dtype=np.int32)
            scores.item_ids = table[scores.item_ids]
        scores.role_names, scores.item_names = self.roles, self.items
        return scores


def _code(value: str, values: list[str], codes: dict[str, int]) -> int:
    if value not in codes:
        codes[value] = len(values)
        values.append(value)
    return codes[value]
