"""An on-disk cache of chat completions that several processes share: SQLite in WAL mode.

The key hashes everything that decides an answer: the endpoint (a server restarted elsewhere with
another checkpoint under the same name asks again), model, decoding, messages and what the caller
adds; never the API key. Its recipe is versioned (:data:`KEY_FORMAT`, the file's ``user_version``):
answers stored under an older one are not reused. A row is committed as its answer arrives, so a
run killed at any moment (Ctrl-C, SIGKILL) keeps every answer, and a rerun sends only the rest.
Processes sharing a file **claim** a key before sending it, so each request is sent once; a claim
expires (its owner refreshes it while retrying), a dead local owner's at once.

    >>> cache = ResponseCache(":memory:")
    >>> key = request_key({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, endpoint="http://h:80/v1")
    >>> cache.put(key, {"model": "m"}, {"text": "hello", "prompt_tokens": 3, "completion_tokens": 1})
    True
    >>> cache.get(key)["text"]
    'hello'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

from rolebench_eval.errors import SQLITE_WRITE_FAULTS, CouldNotWrite, InputError
from rolebench_eval.fileio import escape_surrogates

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""
CACHED, CLAIMED, BUSY = "cached", "claimed", "busy"
#: The recipe of the cache key. 1: the request body (and extra). 2: also the endpoint.
KEY_FORMAT = 2
log = logging.getLogger(__name__)


class CacheError(InputError):
    """The cache file cannot be used (not SQLite, damaged); the message names it and says what to do."""


def canonical_json(obj: Any) -> str:
    r"""JSON with sorted keys and no insignificant whitespace, always UTF-8 encodable: a lone surrogate
    (valid JSON, no UTF-8 form) is written as its ``\uXXXX`` escape, which reads back the same.

        >>> canonical_json({"b": chr(0xD800), "a": "é"})
        '{"a":"é","b":"\\ud800"}'
    """
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")  # the common case, and cheaper than the search below
    except UnicodeEncodeError:
        text = escape_surrogates(text)
    return text


def request_key(request: dict, extra: dict | None = None, endpoint: str | None = None) -> str:
    """sha256 of a request body, ``extra`` (hashed, never sent: ``{"sample": 2}``) and ``endpoint``
    (:func:`~rolebench_eval.llm.config.endpoint_id`).

        >>> request_key({"a": 1, "b": 2}) == request_key({"b": 2, "a": 1})
        True
        >>> request_key({"a": 1}, endpoint="http://h:8000/v1") == request_key({"a": 1}, endpoint="http://h:8001/v1")
        False
    """
    keyed = {"format": KEY_FORMAT, "endpoint": endpoint, "body": request, "extra": extra}
    return hashlib.sha256(canonical_json(keyed).encode("utf-8")).hexdigest()


def request_keys(requests: Sequence[list[dict]], config, key_extras: Sequence[dict | None] | None = None) -> list[str]:
    """The cache key of every request of a batch."""
    extras = list(key_extras) if key_extras is not None else [None] * len(requests)
    if len(extras) != len(requests):
        raise ValueError("key_extras must have one entry per request")
    endpoint = config.endpoint_id()
    return [request_key(config.request_body(m), x, endpoint) for m, x in zip(requests, extras)]


def split_cached(requests: Sequence[list[dict]], config, cache: "ResponseCache", key_extras=None) -> tuple:
    """``(keys, answers, todo)``: every request's key, the cached answers by key, the others by key."""
    keys = request_keys(requests, config, key_extras)
    answers = cache.get_many(keys)
    return keys, answers, {k: m for k, m in zip(keys, requests) if k not in answers}


def default_cache_path() -> Path:
    """``$ROLEBENCH_CACHE_DIR/llm_cache.sqlite``, else ``~/.cache/rolebench-eval/llm_cache.sqlite``."""
    root = os.environ.get("ROLEBENCH_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rolebench-eval"
    return Path(root) / "llm_cache.sqlite"


def new_owner() -> str:
    """A claim owner id: ``host:pid:random`` (the pid lets others see that the owner died)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` was a process on this machine that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        pass
    return False


def _use_wal(db: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch ``db`` to WAL, waiting for another process doing the same: SQLite calls no busy handler
    for a journal-mode change, so two processes opening a new cache at once would see "locked" at once."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class ResponseCache:
    """A thread- and process-safe key -> response store in one SQLite file (``path``, its folder
    created), or ``":memory:"``."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = None
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            _use_wal(self._db)
            # WAL + NORMAL: a committed row survives the death of the process (not of the OS).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_format()
        except sqlite3.DatabaseError as err:
            if self._db is not None:
                self._db.close()
            self._damaged(err)

    def _check_format(self) -> None:
        """Mark a new file with :data:`KEY_FORMAT`; warn once that an older file's answers are not reused."""
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found == KEY_FORMAT:
            return
        if found > KEY_FORMAT:
            self._db.close()
            raise CacheError(self.path, None, None, f"cache key format {found} is newer than this rolebench-eval's "
                             f"({KEY_FORMAT}); upgrade rolebench-eval or pass --cache with another file")
        rows = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        if rows:
            log.warning("%s: its %d answers were stored under cache key format %d (keys without the endpoint) "
                        "and are not reused; requests are asked again and stored under format %d",
                        self.path, rows, found or 1, KEY_FORMAT)
        self._db.execute(f"PRAGMA user_version = {KEY_FORMAT}")

    def _damaged(self, err: sqlite3.DatabaseError):
        if any(fault in str(err) for fault in SQLITE_WRITE_FAULTS):  # the machine, not the file
            raise CouldNotWrite(self.path, "the response cache", str(err),
                                "answers stored before are kept: free space (or pass --cache with a file "
                                "elsewhere) and rerun to resume") from None
        raise CacheError(self.path, None, None,
                         f"not a usable response cache ({err}). Move the file aside (its answers are lost, "
                         f"a rerun asks again) or pass --cache with another file") from None

    def _execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise
            self._damaged(err)

    def _commit(self) -> None:
        if self._db.in_transaction:
            self._execute("COMMIT")

    def get(self, key: str) -> dict | None:
        """The cached response for ``key`` (with ``created_at``), or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        """Cached responses for those of ``keys`` that have one."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._execute(
                    f"SELECT key, response, created_at FROM responses WHERE key IN ({marks})", chunk).fetchall()
            found.update({k: json.loads(r) | {"created_at": c} for k, r, c in rows})
        return found

    def put(self, key: str, request: dict, response: dict, owner: str | None = None) -> bool:
        """Store ``response`` under ``key`` unless a row exists (and drop ``owner``'s claim); True when written.
        ``request`` is kept for audit: the body only, never headers or secrets."""
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                cur = self._execute(
                    "INSERT OR IGNORE INTO responses (key, request, response, created_at) VALUES (?, ?, ?, ?)",
                    (key, canonical_json(request), canonical_json(response), created))
                if owner is not None:
                    self._execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))
            finally:
                self._commit()
        return cur.rowcount == 1

    def claim(self, key: str, owner: str, ttl: float) -> str:
        """Take ``key`` for ``ttl`` seconds before sending it: ``CACHED`` (an answer exists),
        ``CLAIMED`` (send it) or ``BUSY`` (another live process is asking; wait for its answer)."""
        now = time.time()
        with self._lock:
            state = self._holder(key, owner, now)  # read-only first: waiting processes poll without the write lock
            if state is not None:
                return state
            self._execute("BEGIN IMMEDIATE")
            try:
                state = self._holder(key, owner, now)
                if state is None:
                    self._execute("INSERT OR REPLACE INTO claims (key, owner, expires) VALUES (?, ?, ?)",
                                  (key, owner, now + ttl))
                return state or CLAIMED
            finally:
                self._commit()

    def _holder(self, key: str, owner: str, now: float) -> str | None:
        if self._execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone():
            return CACHED
        row = self._execute("SELECT owner, expires FROM claims WHERE key = ?", (key,)).fetchone()
        return BUSY if row is not None and row[0] != owner and row[1] > now and not owner_is_dead(row[0]) else None

    def extend(self, key: str, owner: str, ttl: float) -> None:
        """Keep ``owner``'s claim on ``key`` for another ``ttl`` seconds (while it retries)."""
        with self._lock:
            self._execute("UPDATE claims SET expires = ? WHERE key = ? AND owner = ?", (time.time() + ttl, key, owner))

    def release(self, key: str, owner: str) -> None:
        """Drop ``owner``'s claim on ``key`` (it gave up; another process may try)."""
        with self._lock:
            self._execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

    def __len__(self) -> int:
        with self._lock:
            return self._execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL back into the file)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
