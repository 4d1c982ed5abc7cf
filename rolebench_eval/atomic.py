"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A reader sees the old file or the new one, never half of one, even after a kill.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data, **dumps) -> Path:
    """``data`` as indented UTF-8 JSON (``dumps`` go to ``json.dumps``), written atomically."""
    options = {"ensure_ascii": False, "indent": 2} | dumps
    return write_atomic(path, json.dumps(data, **options) + "\n")
