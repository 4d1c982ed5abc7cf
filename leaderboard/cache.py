"""Where a build keeps each run's extract of its samples files (the per-item scores :mod:`.scores` reads),
importing nothing heavy: the CLI asks whether a cache holds any before it imports the rest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_VERSION = 8
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
        # the file's identity (device, inode) and absolute path, not resolve(): one stat, no walk of its folders
        parts += [os.path.abspath(path), str(stat.st_dev), str(stat.st_ino), str(stat.st_size),
                  str(stat.st_mtime_ns), ",".join(metrics)]
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
    return root / digest[:2] / f"{digest}.npz"


def holds_extracts(root: Path) -> bool:
    """Whether ``root`` holds any run's extract (no: a first build, which reads every samples file)."""
    return any(True for _ in root.glob("??/*.npz"))
