"""Reading and writing a typed hand-off file: msgspec does the checking, errors name file, line, field.

A file is decoded straight into its Struct (:func:`read`, :func:`read_lines`, :func:`read_yaml`); whatever msgspec
refuses becomes one :class:`~rolebench_eval.errors.InputError` whose field is msgspec's path
(``$.win_rate`` -> ``win_rate``, ``$.roles[...].writing`` -> ``roles``). Writing goes through
:func:`~msgspec.to_builtins` and the project's atomic writers (:mod:`rolebench_eval.fileio`),
so the files keep their layout: indented JSON, JSONL lines with line separators escaped.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, TypeVar

from rolebench_eval.errors import InputError
from rolebench_eval.fileio import replace_surrogates, yaml_loader

T = TypeVar("T")
_AT = re.compile(r"\s*-\s*at `\$([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_and_problem(err: Exception) -> tuple[str | None, str]:
    """(field, problem) of a msgspec ``ValidationError``: ``Expected `int`, got `str` - at `$.n```
    gives ``("n", "expected int, got str")``; a missing field is named as the field."""
    text = str(err)
    at = _AT.search(text)
    where = (at.group(1) if at else "").lstrip(".").split("[...]")[0]
    problem = _AT.sub("", text)
    missing = _MISSING.search(problem)
    if missing:
        where, problem = ".".join(p for p in (where, missing.group(1)) if p), "missing"
    problem = problem.replace("`", "")
    return where or None, problem[:1].lower() + problem[1:]


def _scrub(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def lenient_decode(decode):
    """``decode``, falling back to ``json`` for a line msgspec refuses as JSON but Python reads.

    Python's json accepts a lone surrogate escape (``"\\ud800"``), which msgspec rejects; such a
    line is still a line of the file: it is read, with U+FFFD for the surrogate, not lost.
    """
    import msgspec

    def lenient(raw: bytes):
        try:
            return decode(raw)
        except msgspec.ValidationError:
            raise
        except msgspec.DecodeError:
            try:
                value = json.loads(raw)
            except ValueError:
                raise msgspec.DecodeError("JSON is malformed") from None
            return decode(msgspec.json.encode(_scrub(value)))
    return lenient


@lru_cache(maxsize=None)
def _decoder(type_: type):
    import msgspec

    return lenient_decode(msgspec.json.Decoder(type_).decode)


def decode(raw: bytes, type_: type[T], path: str | os.PathLike, line: int | None = None) -> T:
    """``raw`` (one JSON document) as ``type_``; anything else is an :class:`InputError` naming the field."""
    import msgspec

    try:
        return _decoder(type_)(raw)
    except msgspec.ValidationError as err:
        raise InputError(path, line, *field_and_problem(err)) from None
    except msgspec.DecodeError as err:
        raise InputError(path, line, None, f"invalid JSON ({err}); truncated or corrupt file?") from None


def read_bytes(path: str | os.PathLike, what: str) -> bytes:
    """The file's bytes, without a UTF-8 byte-order mark (editors on Windows add one); a missing or
    unreadable file is an :class:`InputError`."""
    try:
        return Path(path).read_bytes().removeprefix(b"\xef\xbb\xbf")
    except FileNotFoundError:
        raise InputError(path, None, None, f"{what} not found") from None
    except OSError as err:
        raise InputError(path, None, None, f"cannot read {what}: {err.strerror}") from None


def read(path: str | os.PathLike, type_: type[T], what: str) -> T:
    """A JSON file decoded as ``type_``."""
    return decode(read_bytes(path, what), type_, path)


def read_lines(path: str | os.PathLike, type_: type[T], what: str) -> Iterator[tuple[int, T]]:
    """``(line number, record)`` for each non-blank line of a JSONL file, each decoded as ``type_``."""
    import msgspec

    decoder = _decoder(type_)
    for number, raw in enumerate(read_bytes(path, what).split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            yield number, decoder(raw)
        except msgspec.ValidationError as err:
            raise InputError(path, number, *field_and_problem(err)) from None
        except msgspec.DecodeError as err:
            raise InputError(path, number, None, f"invalid JSON ({err}); truncated or corrupt file?") from None


def yaml_line(node, where: str | None) -> int | None:
    """The line of ``where`` (``models[1].model_args``) in a composed YAML document, or of its nearest parent."""
    import yaml

    line = None if node is None else node.start_mark.line + 1
    for key, index in _TOKEN.findall(where or ""):
        if isinstance(node, yaml.MappingNode) and key:
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def read_yaml(path: str | os.PathLike, type_: type[T], what: str) -> tuple[T, Callable[[str | None, str], NoReturn]]:
    """A YAML file decoded as ``type_``, and ``fail(field, problem)``, which raises the
    :class:`InputError` of that field at its line (for the rules a type cannot say)."""
    import msgspec
    import yaml

    raw = read_bytes(path, what)
    try:
        node = yaml.compose(raw, Loader=yaml_loader())
        data = yaml.load(raw, Loader=yaml_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(path, mark and mark.line + 1, None, f"not YAML: {getattr(err, 'problem', err)}") from None

    def fail(where: str | None, problem: str) -> NoReturn:
        raise InputError(path, yaml_line(node, where), where, problem)

    try:
        return msgspec.convert(data, type_), fail
    except msgspec.ValidationError as err:
        fail(*field_and_problem(err))


def write(path: str | os.PathLike, record: Any, **dumps: Any) -> Path:
    """``record`` (a Struct) as indented JSON, atomically (``dumps`` go to ``json.dumps``)."""
    import msgspec

    from rolebench_eval.fileio import write_json_atomic

    return write_json_atomic(path, msgspec.to_builtins(record), **dumps)


def write_lines(path: str | os.PathLike, records: Any) -> Path:
    """``records`` (Structs) as JSON lines, atomically."""
    import msgspec

    from rolebench_eval.fileio import write_jsonl

    return write_jsonl(path, (msgspec.to_builtins(r) for r in records))


def refuse_version(path: str | os.PathLike, field: str, found: Any, readable: tuple[int, ...],
                   older: str) -> InputError:
    """The error for a file of a version this package does not read; ``older`` says what to do with an
    older (or unversioned) one, a newer one asks for a newer rolebench-eval."""
    newer = isinstance(found, int) and not isinstance(found, bool) and found > max(readable)
    todo = "written by a newer rolebench-eval: upgrade rolebench-eval to read it" if newer else older
    return InputError(path, None, field, f"is {found!r}; this rolebench-eval reads "
                      f"{' and '.join(map(str, readable))}: {todo}")
