"""Per-item scores of samples files: read in parallel, cached, and put in the board's role codes.

Reading is the core's (``rolebench_eval.outputs.read_scores``: only ids, roles, item types
and the metric fields are decoded). A RoleBench run logs ~60k lines and a board reads
hundreds of runs, so:

- files not in the cache are read by a pool of processes, one per CPU (the decoding is
  CPU-bound and holds the GIL); a few small files are read in this process;
- what was read is cached per samples file, keyed by its resolved path, size and
  modification time, as one ``numpy.savez`` archive written with the package's atomic
  write (``rolebench_eval.fileio.write_atomic``): a killed build leaves a usable cache, and a
  missing, stale or unreadable entry is simply read again from the samples file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import write_atomic
from rolebench_eval.outputs import Scores, read_scores

from .model import clean

log = logging.getLogger(__name__)
CACHE_VERSION = 3
PARALLEL_BYTES = 64 << 20  # below this much to read, starting worker processes costs more than it saves
_INTS = ("doc_ids", "roles", "types", "offsets", "lines")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rolebench-eval/leaderboard`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rolebench-eval" / "leaderboard"


def entry(root: Path, path: Path, metrics: Sequence[str]) -> Path:
    """Where the extract of ``path`` lives; any change to the file gives another name."""
    stat = path.stat()
    key = f"{CACHE_VERSION}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{','.join(metrics)}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return root / digest[:2] / f"{digest}.npz"


def _pack(scores: Scores, metrics: Sequence[str]) -> bytes:
    n = scores.doc_ids.size
    ints = np.stack([np.asarray(getattr(scores, k), dtype=np.int64) for k in _INTS]
                    + [np.asarray(scores.item_ids if scores.item_ids is not None else np.full(n, -1), dtype=np.int64),
                       np.asarray(scores.depths if scores.depths is not None else np.full(n, -1), dtype=np.int64)])
    values = np.stack([scores.metrics[m] for m in metrics]) if metrics else np.empty((0, n))
    buffer = io.BytesIO()
    np.savez(buffer, ints=ints, values=values, metrics=np.array(list(metrics), dtype=str),
             roles=np.array(scores.role_names, dtype=str), items=np.array(scores.item_names, dtype=str))
    return buffer.getvalue()


def load(root: Path, path: Path, metrics: Sequence[str]) -> Scores | None:
    """The cached extract of ``path``; None on a miss (absent, stale, unreadable)."""
    try:
        with np.load(entry(root, path, metrics), allow_pickle=False) as data:
            if data["metrics"].tolist() != list(metrics):
                return None
            ints, values = data["ints"], data["values"]
            roles, items = data["roles"].tolist(), data["items"].tolist()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if ints.shape[0] != len(_INTS) + 2 or values.shape != (len(metrics), ints.shape[1]):
        return None
    scores = Scores(ints[0], dict(zip(metrics, values)), ints[1].astype(np.int32), roles,
                    ints[2].astype(np.uint8), ints[3], ints[4])
    if ints.shape[1] and ints[5, 0] >= 0:
        scores.item_ids, scores.item_names = ints[5].astype(np.int32), items
    if ints.shape[1] and ints[6, 0] >= 0:
        scores.depths = ints[6].astype(np.int32)
    return scores


def save(root: Path, path: Path, metrics: Sequence[str], scores: Scores) -> None:
    """Store the extract of ``path`` (atomically; a failure is a warning, never an error)."""
    try:
        write_atomic(entry(root, path, metrics), _pack(scores, metrics))
    except OSError as exc:
        log.warning("cannot write the samples cache under %s: %s", root, exc)


def _read(job: tuple[Path, tuple[str, ...], Path | None]) -> Scores | InputError:
    """Read one samples file (in a worker process or here) and cache it."""
    path, metrics, root = job
    try:
        scores = read_scores(path, metrics)
    except InputError as exc:
        return exc
    if root is not None:
        save(root, path, metrics, scores)
    return scores


def read_all(jobs: list[tuple[Path, tuple[str, ...]]], cache_dir: Path | None,
             workers: int | None = None) -> list[Scores | InputError]:
    """The scores of every ``(samples file, metrics)`` job, in order; an unreadable file gives its error."""
    from tqdm.auto import tqdm

    out: list[Scores | InputError | None] = [load(cache_dir, p, m) if cache_dir is not None else None
                                             for p, m in jobs]
    todo = [i for i, got in enumerate(out) if got is None]
    size = sum(jobs[i][0].stat().st_size for i in todo)
    workers = min(workers or os.cpu_count() or 1, len(todo))
    bar = tqdm(total=size, desc="reading samples", unit="B", unit_scale=True, disable=None if todo else True)
    if workers > 1 and size >= PARALLEL_BYTES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        todo.sort(key=lambda i: -jobs[i][0].stat().st_size)  # largest first: the workers finish together
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, got in zip(todo, pool.map(_read, [(*jobs[i], cache_dir) for i in todo])):
                out[i] = got
                bar.update(jobs[i][0].stat().st_size)
    else:
        for i in todo:
            out[i] = _read((*jobs[i], cache_dir))
            bar.update(jobs[i][0].stat().st_size)
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
