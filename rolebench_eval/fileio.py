"""Files in and out: atomic writes, the one JSONL reader and writer, JSON reading, hashes.

Every JSONL file of the project goes through :func:`read_jsonl` and :func:`write_jsonl`
(both built on ``jsonlines``), so there is one definition of what a line is. Two readers of
lm-eval's samples files read the same lines without it, for speed, and say so: the
leaderboard's score reader (``outputs.scores``, hundreds of 60k-line files) and the item
browser's reads by byte offset (``outputs.records.read_records_at``); both split at ``\n``
and name the file and line as here. The typed hand-off files (judge annotations, ...) are
decoded through their schema (:mod:`rolebench_eval.outputs.codec`) and written with these writers.

- a line ends at ``\\n`` only. The writer escapes U+2028, U+2029 and U+0085 (legal raw in a
  JSON string, but line breaks to ``str.splitlines`` and to some editors and JSON-lines
  readers), so no row it writes can be split by another reader; the reader reads bytes, so
  a file written raw by an earlier version still reads;
- every problem names the file and line: invalid JSON, text that is not UTF-8, a value that
  is not what the caller expects.

Writes go to a temporary file in the same folder, are fsynced and moved into place with
``os.replace``: a reader sees the old file or the new one, never half of one, even after a kill.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from rolebench_eval.errors import InputError

# Line breaks for str.splitlines() and JavaScript-era JSON readers, escaped by our writer.
_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})
# A lone surrogate (half an emoji cut at a token limit, read from a "\ud83d" escape) has no UTF-8 form.
_SURROGATE = re.compile("[\ud800-\udfff]")


@contextlib.contextmanager
def atomic_handle(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file that replaces ``path`` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path.

    A lone surrogate in the text is written as its escape (``\\ud800``): valid inside a JSON
    string, plain text elsewhere, never an encoding error after the work is done.
    """
    with atomic_handle(path) as handle:
        handle.write(data.encode("utf-8", errors="backslashreplace") if isinstance(data, str) else data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, **dumps: Any) -> Path:
    """``data`` as indented UTF-8 JSON (``dumps`` go to ``json.dumps``), written atomically."""
    options = {"ensure_ascii": False, "indent": 2} | dumps
    return write_atomic(path, json.dumps(data, **options) + "\n")


def dumps_line(value: Any) -> str:
    """One JSONL line (without its newline): UTF-8 JSON with the line separators escaped.

    Lone surrogates, which can only be inside strings, become their ``\\uXXXX`` escape, as
    ``json.dumps`` with ``ensure_ascii`` writes them: the line reads back to the same value.
    """
    line = json.dumps(value, ensure_ascii=False).translate(_SEPARATORS)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) if _SURROGATE.search(line) else line


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    """Write ``rows`` as JSON lines, atomically (see the module docstring)."""
    import jsonlines

    with atomic_handle(path) as handle, jsonlines.Writer(handle, dumps=dumps_line, flush=False) as writer:
        writer.write_all(rows)
    return Path(path)


def read_jsonl(path: str | os.PathLike, what: str = "file",
               loads: Callable[[str], Any] | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSONL file.

    Args:
        path: The file.
        what: What the file is, for the "not found" message ("samples file", ...).
        loads: Another JSON decoder (``json.loads`` by default).

    Raises:
        InputError: the file is missing or unreadable, a line is not UTF-8 or not JSON.
    """
    import jsonlines

    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, None, f"{what} not found")
    try:
        handle = path.open("rb")  # bytes: lines end at b"\n" only, decoding errors name the line
    except OSError as err:
        raise InputError(path, None, None, f"cannot read {what}: {err.strerror}") from None
    lines = _CountedLines(handle)
    with handle, jsonlines.Reader(lines, loads=loads or json.loads) as reader:
        try:
            for value in reader.iter(skip_empty=True, allow_none=True):
                yield lines.count, value
        except jsonlines.InvalidLineError as err:
            raise InputError(path, err.lineno, None, _why(err)) from None


class _CountedLines:
    """The lines of a binary file, counting them: ``count`` is the line last handed out."""

    def __init__(self, handle):
        self.handle, self.count = handle, 0

    def __iter__(self):
        for line in self.handle:
            self.count += 1
            yield line


def _why(err) -> str:
    cause = err.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return (f"not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at column {cause.start + 1}); "
                "files must be UTF-8 (re-save it as UTF-8)")
    if isinstance(cause, json.JSONDecodeError):
        return f"invalid JSON ({cause.msg} at column {cause.colno})"
    return f"invalid JSON ({cause or err})"


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing, non-UTF-8, corrupt or truncated one raises :class:`InputError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, None, f"{what} not found") from None
    except OSError as err:
        raise InputError(path, None, None, f"cannot read {what}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise InputError(path, line, None, "not valid UTF-8; files must be UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(path, err.lineno, None, f"invalid JSON ({err.msg}); truncated or corrupt file?") from None


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
