"""An on-disk cache of chat completions: SQLite in WAL mode, one row per request key.

The key is a hash of everything that decides an answer (model, decoding settings, the
rendered messages, and whatever the caller adds), never of the endpoint or the API key.
A row is written once, in its own transaction (``INSERT OR IGNORE``), right after the
answer arrives: a run killed at any moment (Ctrl-C, SIGKILL) keeps every answer it had
received, and a rerun sends only the requests whose key has no row.

Example:
    >>> cache = ResponseCache(":memory:")
    >>> key = request_key({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    >>> cache.put(key, {"model": "m"}, {"text": "hello", "prompt_tokens": 3, "completion_tokens": 1})
    True
    >>> cache.get(key)["text"]
    'hello'
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace (stable across runs)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(request: dict, extra: dict | None = None) -> str:
    """The cache key of a request body: sha256 of its canonical JSON, plus ``extra`` if given.

    ``extra`` is hashed but never sent, e.g. ``{"sample": 2}`` for several answers to one prompt.

    Example:
        >>> request_key({"a": 1, "b": 2}) == request_key({"b": 2, "a": 1})
        True
        >>> request_key({"a": 1}) == request_key({"a": 1}, {"sample": 1})
        False
    """
    keyed = request if extra is None else {"body": request, "extra": extra}
    return hashlib.sha256(canonical_json(keyed).encode("utf-8")).hexdigest()


def default_cache_path() -> Path:
    """``$ROLEBENCH_CACHE_DIR/llm_cache.sqlite``, else ``~/.cache/rolebench-eval/llm_cache.sqlite``."""
    root = os.environ.get("ROLEBENCH_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rolebench-eval"
    return Path(root) / "llm_cache.sqlite"


class ResponseCache:
    """A thread-safe key -> response store in one SQLite file.

    Args:
        path: the SQLite file (created with its folder), or ``":memory:"``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed row survives the death of the process (not of the OS).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> dict | None:
        """The cached response for ``key`` (with ``created_at``), or None."""
        with self._lock:
            row = self._db.execute("SELECT response, created_at FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]) | {"created_at": row[1]}

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        """Cached responses for those of ``keys`` that have one."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT key, response, created_at FROM responses WHERE key IN ({marks})", chunk).fetchall()
            found.update({k: json.loads(r) | {"created_at": c} for k, r, c in rows})
        return found

    def put(self, key: str, request: dict, response: dict) -> bool:
        """Store ``response`` under ``key`` unless a row exists; True when written.

        ``request`` is kept for audit; it must not hold secrets (callers pass the
        request body only, never headers).
        """
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO responses (key, request, response, created_at) VALUES (?, ?, ?, ?)",
                (key, canonical_json(request), canonical_json(response), created))
        return cur.rowcount == 1

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL back into the file)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
