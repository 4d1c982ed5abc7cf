"""What ``rolebench-eval run`` keeps: every answer as it arrives, and its output files whole or not at all.

- **Answers.** lm-eval's own per-request cache (``--use_cache PATH``: a SQLite file per rank, each
  answer stored as the model returns it) is on by default, at ``OUT/.cache/<model key>`` beside
  the output (:func:`default_cache`): a run stopped by Ctrl-C, a kill or a full disk keeps what it
  computed, and the same command sends only the rest. ``--no-cache`` (ours) turns it off; an
  explicit ``--use_cache PATH`` is used as given.
- **Outputs.** lm-eval writes its results and samples into ``OUT/.partial/<pid>/`` (it swallows
  its own write errors, so they are checked here); only when every file is there and complete are
  they moved into ``OUT``, samples first and the results file last (``os.replace`` each): a
  results file in ``OUT`` always has its whole samples beside it. Readers skip folders whose name
  starts with a dot (:func:`rolebench_eval.outputs.runs.find_runs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Iterator

from rolebench_eval.errors import CouldNotWrite

from .shard import METADATA_KEY

CACHE_FOLDER = ".cache"
PARTIAL_FOLDER = ".partial"
NO_CACHE = "--no-cache"
HELP = (f"{NO_CACHE} (rolebench-eval run only): do not keep answers; by default every answer is cached as it "
        f"arrives in OUT/{CACHE_FOLDER}/<model key>_rank<R>.db beside --output_path (lm-eval's --use_cache), so a "
        "stopped run resumes and a rerun sends only what is missing; --use_cache PATH puts the cache elsewhere")


def output_base(output: str) -> Path:
    """The folder lm-eval writes into for ``--output_path output`` (a ``.json`` name: its folder)."""
    path = Path(output)
    return path.parent if path.suffix == ".json" else path


def default_cache(output: str, model: str | None, model_args: str | None) -> str:
    """``OUT/.cache/<key>``: one cache per model and model arguments (the request is the rest of the key)."""
    key = hashlib.sha256(json.dumps([model or "", model_args or ""]).encode("utf-8")).hexdigest()[:16]
    return str(output_base(output) / CACHE_FOLDER / key)


def cached_answers(cache: str) -> int:
    """How many answers the cache files of ``cache`` (every rank) hold; 0 when none can be read."""
    total = 0
    for db in Path(cache).parent.glob(f"{Path(cache).name}_rank*.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                total += conn.execute('SELECT COUNT(*) FROM "unnamed"').fetchone()[0]
        except sqlite3.Error:
            continue
    return total


def staging(output: str) -> Path:
    """This process's partial folder under the output (what a killed run left there is removed)."""
    partial = output_base(output) / PARTIAL_FOLDER
    if partial.is_dir():
        for left in partial.iterdir():
            if left.name.isdigit() and not _alive(int(left.name)):
                shutil.rmtree(left, ignore_errors=True)
    return partial / str(os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def staged_output(output: str, stage: Path) -> str:
    """The ``--output_path`` lm-eval gets: ``stage``, or a file name inside it for the ``.json`` form."""
    return str(stage / Path(output).name) if Path(output).suffix == ".json" else str(stage)


def publish(output: str, stage: Path, log_samples: bool, kept: str, failures: list[str]) -> list[Path]:
    """Check what lm-eval wrote into ``stage`` and move it into place; returns the results files.

    ``kept`` says what survives a failure (the answer cache, or nothing) in the error's line;
    ``failures`` are lm-eval's own "Could not save" warnings (:func:`save_failures`).

    Raises:
        CouldNotWrite: a results or samples file is missing or short (lm-eval logs its write errors
            and goes on); nothing of this run is moved into the output then.
    """
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    results = [p for p in files if p.suffix == ".json"]
    if failures or not results:
        raise _not_saved(output, stage, "; ".join(failures) or "no results file was written", kept)
    for path in results:
        _check_samples(output, stage, path, log_samples, kept)
    base = output_base(output)
    for path in sorted(files, key=lambda p: p.suffix == ".json"):  # the results files last
        dest = base / path.relative_to(stage)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        except OSError as err:
            raise CouldNotWrite.from_os_error(err, "the run's results", kept) from None
    discard(stage)
    return [base / p.relative_to(stage) for p in results]


def _check_samples(output: str, stage: Path, results_path: Path, log_samples: bool, kept: str) -> None:
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _not_saved(output, stage, f"{results_path.name} is incomplete", kept) from None
    if not log_samples:
        return
    date = results_path.stem.rsplit("_", 1)[-1]
    for task in results.get("n-samples") or {}:
        samples = results_path.parent / f"samples_{task}_{date}.jsonl"
        expected = expected_samples(results, task)
        if not samples.is_file() or not _ends_a_line(samples) or (expected is not None and _lines(samples) < expected):
            raise _not_saved(output, stage, f"{samples.name} is missing or incomplete", kept)


def expected_samples(results: dict, task: str) -> int | None:
    """How many lines ``task``'s samples file of this results file holds at least (a shard's documents, else
    the documents lm-eval counts as evaluated)."""
    shard = (((results.get("configs") or {}).get(task) or {}).get("metadata") or {}).get(METADATA_KEY)
    return shard["docs"] if isinstance(shard, dict) else ((results.get("n-samples") or {}).get(task) or {}).get(
        "effective")


def _ends_a_line(path: Path) -> bool:
    """The file is empty or its last byte ends a line (lm-eval writes whole lines; a cut write does not)."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        return size == 0 or (handle.seek(size - 1), handle.read(1))[1] == b"\n"


@contextlib.contextmanager
def save_failures() -> Iterator[list[str]]:
    """The warnings lm-eval's tracker logs when it could not save (it does not raise), collected."""
    import logging

    failures: list[str] = []

    class _Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Could not save"):
                failures.append(record.getMessage())

    logger, handler = logging.getLogger("lm_eval.loggers.evaluation_tracker"), _Catch(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield failures
    finally:
        logger.removeHandler(handler)


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _not_saved(output: str, stage: Path, what: str, kept: str) -> CouldNotWrite:
    """lm-eval could not save (it only logs why): the OS's reason, found by writing in the same place."""
    reason = what
    try:
        probe = stage / ".write-check"
        probe.write_bytes(b"\0" * 65536)
        probe.unlink()
    except OSError as err:
        reason = f"{err.strerror or err} ({what})"
    discard(stage)
    return CouldNotWrite(output_base(output), "the run's results", reason, kept)


def discard(stage: Path) -> None:
    """Remove what a stopped or failed run staged (and the partial folder, when no other run uses it)."""
    shutil.rmtree(stage, ignore_errors=True)
    _remove_if_empty(stage.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
