"""Files in and out: atomic writes, the one JSONL reader and writer, JSON and YAML reading, hashes.

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
A multi-file output (a leaderboard site) is built whole beside its destination and swapped in
(:func:`whole_folder`); a folder several commands may write at once is locked
(:func:`folder_lock`). :func:`ensure_writable` checks an output folder before any work is paid for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator

from rolebench_eval.errors import CouldNotWrite, InputError

# Line breaks for str.splitlines() and JavaScript-era JSON readers, escaped by our writer.
_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})
# A lone surrogate (half an emoji cut at a token limit, read from a "\ud83d" escape) has no UTF-8 form.
# A lone surrogate: legal in a Python str and inside a JSON string, with no UTF-8 form.
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
    return escape_surrogates(json.dumps(value, ensure_ascii=False).translate(_SEPARATORS))


def escape_surrogates(text: str) -> str:
    """Each lone surrogate as its ``\\uXXXX`` escape (inside JSON: the same string read back)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _SURROGATE.search(text) else text


def replace_surrogates(text: str) -> str:
    """Each lone surrogate as U+FFFD: text to show or send, writable as UTF-8 everywhere."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)  # isascii reads a flag: no scan


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
        text = raw.decode("utf-8-sig")  # a byte-order mark (editors on Windows add one) is not content
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise InputError(path, line, None, "not valid UTF-8; files must be UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(path, err.lineno, None, f"invalid JSON ({err.msg}); truncated or corrupt file?") from None


def yaml_loader():
    """PyYAML's safe loader: libyaml's where PyYAML has it (the same documents, about 10x faster), else its own."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str | bytes | IO) -> Any:
    """``yaml.safe_load`` through :func:`yaml_loader` (raises ``yaml.YAMLError``; a stream's name is in its marks)."""
    import yaml

    try:
        return yaml.load(text, Loader=yaml_loader())
    except UnicodeEncodeError:  # libyaml reads UTF-8: a lone surrogate (from argv) is the pure loader's error to name
        return yaml.load(text, Loader=yaml.SafeLoader)


def ensure_writable(folder: str | os.PathLike, what: str, create: bool = True) -> Path:
    """Create ``folder`` (with its parents) and check a file can be written in it; returns it.

    Called before any request is sent, model loaded or training step taken, so a folder the
    machine refuses (a file in the way, read-only, no permission, under ``/proc``) costs nothing.
    With ``create`` false a missing folder is left missing (a run that keeps nothing leaves no
    trace): its nearest existing parent is checked instead.

    Raises:
        CouldNotWrite: naming the folder, ``what`` and the OS's reason.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CouldNotWrite(folder, what, "it exists and is not a folder; pass a folder (new or existing)")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CouldNotWrite.from_os_error(err, what, path=folder) from None
    probe = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    try:
        if not probe.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".rolebench-write-check."))
    except OSError as err:  # the probe's own name says nothing to the user: name the folder
        raise CouldNotWrite(folder, what, err.strerror or str(err)) from None
    return folder


@contextlib.contextmanager
def whole_folder(dest: str | os.PathLike, what: str, marker: str | None = None) -> Iterator[Path]:
    """A staging folder beside ``dest`` that replaces ``dest`` whole when the block ends without error.

    A failure (a full disk halfway) removes the staging folder and leaves the previous
    ``dest`` as it was (absent if it was); readers see the old build or the new one, never a
    mix. ``dest`` must be new, empty, or an earlier build of the same output (holding
    ``marker``): a folder of other files is refused, never swapped away.

    Raises:
        CouldNotWrite: ``dest`` cannot be written.
        InputError: ``dest`` holds other files (the user's choice of folder, not the machine's refusal).
    """
    created = not os.path.lexists(dest)
    dest = ensure_writable(dest, what).absolute()  # "." has no name to stage beside
    if any(dest.iterdir()) and not (marker and (dest / marker).exists()):
        earlier = f" and no {marker} of an earlier build" if marker else ""
        raise InputError(dest, None, None, f"holds other files{earlier}; {what} needs a new or empty folder")
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    try:
        yield stage
        os.chmod(stage, 0o755)  # mkdtemp makes 0700; outputs are meant to be read by others
        _swap(stage, dest)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)  # made empty above: leave no trace
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap(stage: Path, dest: Path) -> None:
    """Move ``stage`` to ``dest``, the old ``dest`` aside first and removed after."""
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.replace(dest, old)
    try:
        os.replace(stage, dest)
    except BaseException:
        os.replace(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str, busy: str | None = None) -> Iterator[Path]:
    """Hold the lock of ``folder`` (the file ``.<name>.lock`` beside it) while the block runs.

    Every writer of a folder several commands may write at once takes it, so none loses
    another's rows. A second writer says once that it waits, then waits; a lock left by a
    killed process is free (``filelock`` uses ``flock``, released by the OS with the process).
    With ``busy`` (what the second writer should do instead), it does not wait: the folder
    held is bad input, :class:`InputError` naming it.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder).absolute()
    lock = FileLock(folder.parent / f".{folder.name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if busy is not None:
            raise InputError(folder, None, None, f"another command is writing {what} now (lock {lock.lock_file}); "
                             f"{busy}") from None
        print(f"waiting for another command writing {what} {folder} (lock {lock.lock_file})", file=sys.stderr)
        lock.acquire()
    except OSError as err:
        raise CouldNotWrite.from_os_error(err, f"the lock of {what}", path=lock.lock_file) from None
    try:
        yield folder
    finally:
        lock.release()


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
