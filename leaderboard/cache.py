"""A cache of the per-item scores read from samples files, so rebuilding a board is fast.

Reading lm-eval samples files is bound by their size (a RoleBench run logs ~60k lines of
~4 KB); the leaderboard keeps ~50 bytes of each. The extract of every file is stored under
the cache folder as one file, keyed by the samples file's resolved path, size and
modification time: a JSON header line (role names, the array's dtype and length) followed
by the raw bytes of one structured array. Entries are written to a temporary file and
moved into place, so a killed build leaves a usable cache; a missing, stale or unreadable
entry is simply read again from the samples file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .samples import DocIndex, ItemScores

CACHE_VERSION = 2
MAGIC = b"rolebench-leaderboard-cache"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rolebench-eval/leaderboard`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rolebench-eval" / "leaderboard"


def entry(root: Path, path: Path, metrics: tuple[str, ...]) -> Path:
    """Where the extract of ``path`` lives; any change to the file gives another name."""
    stat = path.stat()
    key = f"{CACHE_VERSION}\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{','.join(metrics)}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return root / digest[:2] / f"{digest}.bin"


def _dtype(metrics: tuple[str, ...]) -> np.dtype:
    return np.dtype([("doc_id", "<i8"), ("role", "<i4"), ("type", "u1")] + [(f"m_{m}", "<f8") for m in metrics])


def load(root: Path, path: Path, metrics: tuple[str, ...], index: DocIndex) -> ItemScores | None:
    """The cached extract of ``path``, with its role names mapped into ``index``; None on a miss."""
    try:
        with entry(root, path, metrics).open("rb") as handle:
            magic, header = handle.readline().rstrip(b"\n"), json.loads(handle.readline())
            if magic != MAGIC or header["metrics"] != list(metrics):
                return None
            data = np.fromfile(handle, dtype=_dtype(metrics), count=header["n"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.size != header["n"]:
        return None  # cut short
    codes = np.array([index.code(r) for r in header["roles"]] or [0], dtype=np.int32)
    return ItemScores(data["doc_id"].copy(), {m: data[f"m_{m}"].copy() for m in metrics}, codes[data["role"]],
                      data["type"].copy())


def save(root: Path, path: Path, metrics: tuple[str, ...], items: ItemScores, index: DocIndex) -> None:
    """Store the extract of ``path`` (temporary file, then ``os.replace``)."""
    where = entry(root, path, metrics)
    where.parent.mkdir(parents=True, exist_ok=True)
    used, local = np.unique(items.roles, return_inverse=True)
    data = np.empty(items.doc_ids.size, dtype=_dtype(metrics))
    data["doc_id"], data["role"], data["type"] = items.doc_ids, local, items.types
    for m in metrics:
        data[f"m_{m}"] = items.metrics[m]
    header = {"metrics": list(metrics), "n": int(data.size), "roles": [index.roles[c] for c in used]}
    fd, tmp = tempfile.mkstemp(dir=where.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC + b"\n" + json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
            handle.write(data.tobytes())
        os.replace(tmp, where)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
