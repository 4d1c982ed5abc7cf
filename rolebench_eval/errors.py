"""One error type for bad input, and the exit policy every verb follows.

Every problem with something the user gave us (a data file, a recipe, a judge folder, a
samples file, a flag) is an :class:`InputError` that knows the file, line and field at
fault and prints as one line::

    path/to/test.jsonl:12: field 'generated': expected a list of strings, got str

The other outcomes a run can end with are exceptions of their own, each carrying its exit
status, so that ``rolebench-eval`` maps them the same way for every verb:

====  ======================================================================
0     done
2     bad input (:class:`InputError`)
3     stopped by a budget (:class:`BudgetStopped`); a rerun resumes
4     requests failed (:class:`RequestsFailed`); a rerun resumes
5     nothing usable produced (:class:`NothingUsable`)
6     could not write (:class:`CouldNotWrite`: the machine refused a write: no space, read-only,
      permission, not a folder, quota, file too large); what was kept is said
130   interrupted (Ctrl-C)
====  ======================================================================
"""

from __future__ import annotations

import errno
import os

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_BUDGET = 3
EXIT_REQUESTS = 4
EXIT_NOTHING = 5
EXIT_WRITE = 6
EXIT_INTERRUPTED = 130
# The Ctrl-C line of any verb stopped before it read or wrote anything (its arguments not parsed yet).
INTERRUPTED_STARTING = ("interrupted while starting, before anything was read or written; "
                        "the same command starts it again")

# What the machine refuses when a file or folder is written: these OSErrors are CouldNotWrite
# (exit 6); any other OSError (a refused connection, ...) is not a write fault.
WRITE_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR", "EEXIST", "ENOENT", "EDQUOT", "EFBIG",
    "EIO", "ENAMETOOLONG", "EMFILE", "ENOTEMPTY", "EXDEV", "ELOOP") if hasattr(errno, name))
# SQLite's words for the same faults (sqlite3.OperationalError carries no errno).
SQLITE_WRITE_FAULTS = ("disk is full", "disk I/O error", "readonly database", "unable to open database file")


class RoleBenchError(Exception):
    """Base of the outcomes that end a verb with a non-zero exit status and one line."""

    exit_code = 1


class InputError(RoleBenchError, ValueError):
    """Bad input: the message is ``path:line: field 'x': problem`` (parts left out when unknown).

    Attributes:
        path: The file (or folder, URL, flag) at fault; None when there is none.
        line: 1-based line number inside it.
        field: The field at fault (a JSON key path, a YAML key, a flag).
        problem: What is wrong, in words, ideally with what to do about it.
    """

    exit_code = EXIT_INPUT

    def __init__(self, path: str | os.PathLike | None, line: int | None, field: str | None, problem: str):
        self.path = None if path is None else str(path)
        self.line, self.field, self.problem = line, field, problem
        super().__init__(format_error(self.path, line, field, problem))

    # Kept for readers of the first version's errors.
    @property
    def reason(self) -> str:
        return self.problem

    def __reduce__(self):  # picklable across processes (accelerate, multiprocessing)
        return (type(self), (self.path, self.line, self.field, self.problem))


def format_error(path: str | None, line: int | None, field: str | None, problem: str) -> str:
    """The one message format: ``path:line: field 'x': problem``."""
    where = "" if path is None else (f"{path}:{line}: " if line else f"{path}: ")
    what = f"field '{field}': " if field else ""
    return f"{where}{what}{problem}"


class BudgetStopped(RoleBenchError):
    """A cost or request cap stopped the run; what was received is kept, a rerun resumes."""

    exit_code = EXIT_BUDGET


class RequestsFailed(RoleBenchError):
    """Requests failed (network, server errors); what was received is kept, a rerun resumes."""

    exit_code = EXIT_REQUESTS


class NothingUsable(RoleBenchError):
    """The run finished but produced nothing usable (every answer dropped, no verdict parsed, ...)."""

    exit_code = EXIT_NOTHING


class Interrupted(RoleBenchError):
    """Ctrl-C: the message says what was kept and exactly what the same command redoes."""

    exit_code = EXIT_INTERRUPTED


class CouldNotWrite(RoleBenchError):
    """The machine refused a write (``OSError``, SQLite's disk errors): one line naming the path,
    what was being written, the OS's reason and what was kept.

    Attributes:
        path: The file or folder that could not be written.
        what: What was being written ("the leaderboard site", "the judge cache", ...).
        reason: The OS's reason ("No space left on device", ...).
        kept: What is safe despite the failure, and what to do ("answers so far are cached: ...").
    """

    exit_code = EXIT_WRITE

    def __init__(self, path: str | os.PathLike | None, what: str, reason: str, kept: str = ""):
        self.path = None if path is None else str(path)
        self.what, self.reason, self.kept = what, reason, kept
        tail = f"; {kept}" if kept else ""
        super().__init__(f"could not write {what} ({self.path or 'unknown path'}): {reason}{tail}")

    def __reduce__(self):
        return (type(self), (self.path, self.what, self.reason, self.kept))

    @classmethod
    def from_os_error(cls, err: OSError, what: str = "output", kept: str = "",
                      path: str | os.PathLike | None = None) -> "CouldNotWrite":
        """The one line for an ``OSError``: the path it names (else ``path``) and its reason."""
        where = err.filename if err.filename is not None else path
        if getattr(err, "filename2", None):
            where = f"{where} -> {err.filename2}"
        return cls(where, what, err.strerror or str(err), kept)
