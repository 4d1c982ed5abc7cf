"""The one line a verb ends with when it cannot go on: a missing extra, a write the machine refused, Ctrl-C.

Each names what was kept and what the same command redoes (the exit status policy: ``errors.py``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading

from rolebench_eval.errors import INTERRUPTED_STARTING, SQLITE_WRITE_FAULTS, WRITE_ERRNOS, CouldNotWrite

# The extras of setup.cfg that bring each optional package a verb may import, for a one-line hint.
EXTRAS = {"ray": "ray", "openai": "judge", "scipy": "judge", "matplotlib": "leaderboard", "jinja2": "leaderboard",
          "threadpoolctl": "leaderboard", "torch": "finetune", "transformers": "finetune", "peft": "finetune",
          "trl": "finetune", "safetensors": "finetune", "tokenizers": "finetune", "playwright": "dev",
          "sklearn": "judge", "krippendorff": "judge"}
VERB_EXTRAS = {"board": "ray", "judge": "judge", "generate": "generate", "leaderboard": "leaderboard", "finetune": "finetune",
               "demo": "finetune,leaderboard", "judge-check": "judge", "scenarios": "generate", "converse": "generate"}


def missing_extra(err: ImportError, verb: str) -> str | None:
    """One line naming the optional package that is not installed and the extra that brings it."""
    if "pip install" in str(err):
        return str(err)  # already says which extra
    package = (err.name or "").split(".")[0]
    if package not in EXTRAS:
        return None  # not an optional dependency: a real bug, keep the traceback
    from rolebench_eval.install import install_command

    extra = VERB_EXTRAS.get(verb, EXTRAS[package])
    return f"this needs the package {package!r}, which is not installed: {install_command(extra)}"


def write_fault(err: BaseException, output: str | None = None, cache: str | None = None) -> CouldNotWrite | None:
    """What the machine refused, as the one line of exit 6; None for any other error (a bug: traceback).

    ``output`` and ``cache`` name the verb's output and cache for an error that names no file (a
    write to an open file on a full disk, SQLite's disk errors).
    """
    if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
        return CouldNotWrite.from_os_error(err, "output", "files written before are whole (each written atomically)",
                                           path=output)
    if isinstance(err, sqlite3.OperationalError) and any(f in str(err) for f in SQLITE_WRITE_FAULTS):
        return CouldNotWrite(cache, "a SQLite cache", str(err), "rows stored before are kept")
    return None


def verb_paths(verb: str, args, argv: list[str]) -> tuple[str | None, str | None]:
    """The verb's output folder and cache, for a write error that names no file."""
    if verb == "run":
        from rolebench_eval.tasks.runner import _flag

        output = _flag(argv[1:], "--output_path", "-o")
        return output, _flag(argv[1:], "--use_cache") or (output and f"{output}/.cache")
    if verb == "finetune":
        return _finetune_dir(args), None
    output = getattr(args, "output_path", None) or getattr(args, "out", None)
    return output, _llm_cache(args) if hasattr(args, "cache") else None


def _finetune_dir(args) -> str:
    argv = getattr(args, "finetune_argv", [])
    found = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--output_dir", "--output-dir")]
    return found[-1] if found else "the --output_dir folder"


def _llm_cache(args) -> str:
    from rolebench_eval.llm.cache import default_cache_path

    return str(getattr(args, "cache", None) or default_cache_path())


# What each verb keeps when Ctrl-C stops it, and exactly what the same command then redoes.
INTERRUPTED = {
    "run": lambda args: "interrupted while starting: no answer of this run was computed and nothing was written; "
                        "the same command starts it again (answers an earlier run cached are reused)",
    "judge": lambda args: f"interrupted: every verdict received is kept in the cache {_llm_cache(args)} and nothing "
                          f"was written to {args.out}; the same command sends only the requests not answered yet, "
                          "then writes the summaries",
    "generate": lambda args: f"interrupted: every answer received is kept in the cache {_llm_cache(args)} and "
                             f"{args.out} is as it was; the same command sends only the requests not answered yet, "
                             "then writes the data folder",
    "leaderboard": lambda args: f"interrupted: {args.out} is as it was (a build is swapped in whole); the same "
                                "command builds the site again (per-item scores already extracted are cached "
                                "unless --no-cache)",
    "merge": lambda args: f"interrupted: nothing was written to {args.output_path} (built beside, swapped in whole); "
                          "the same command redoes the whole merge from the parts' files",
    "board": lambda args: f"interrupted: finished steps are recorded under {args.out or 'the board folder'}/.steps "
                          "and kept; the same command runs only the unfinished steps (a stopped run step computes "
                          "only the answers its cache lacks)",
    "finetune": lambda args: f"interrupted: {_finetune_dir(args)} keeps its complete checkpoints (checkpoint-N/); "
                             "the same command with --resume continues from the latest one, redoing only the "
                             "steps after it (without --resume the folder is refused)",
}


def fresh_line() -> str:
    """A line break when a progress bar may hold the terminal's current line (the one line starts its own)."""
    return "\n" if sys.stderr.isatty() or "tqdm" in sys.modules else ""


def interrupted_note(verb: str, args) -> str:
    """The Ctrl-C line of ``verb`` (:data:`INTERRUPTED`)."""
    note = INTERRUPTED.get(verb)
    if args is None and verb != "run":  # before its arguments were parsed: it had not begun
        return INTERRUPTED_STARTING
    if note is None:
        return ("interrupted: files written so far are whole (each written atomically); nothing else was kept; "
                "the same command starts it again (answers received from an endpoint are cached and reused)")
    return note(args)



_CTRL_C = threading.Event()  # a Ctrl-C reached this command (set by the handler keep_ctrl_c installs)


def _sigint(signum, frame) -> None:
    _CTRL_C.set()
    raise KeyboardInterrupt


def ctrl_c_seen() -> bool:
    """Whether a Ctrl-C reached the command: an error it caused (a worker stopped halfway through an import,
    a pipe closed) is then reported as the interruption it is, not as a fault of its own."""
    return _CTRL_C.is_set()


def keep_ctrl_c() -> None:
    """Note every Ctrl-C (:func:`ctrl_c_seen`; Python's own handler otherwise, and an ignored SIGINT stays
    ignored). One that lands in a finalizer or a weakref callback is one Python cannot raise: it prints
    "Exception ignored in ..." with a traceback and drops it, and the verb would go on as if never stopped;
    it is signalled again, to stop the verb with its one line (any other unraisable error goes to the hook
    that was in place)."""
    _CTRL_C.clear()
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _sigint)
    previous = sys.unraisablehook
    if getattr(previous, "keeps_ctrl_c", False):
        return

    def hook(unraisable) -> None:
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            # sent again a moment later from another thread, once this hook has returned (sent from here, it
            # would be raised in the hook, where Python drops it too; should it land in a finalizer again,
            # it comes back here); ignored once the verb has finished. Not a daemon thread: one still
            # waiting while the interpreter finalizes can abort Python 3.11 (a fatal error, exit -6).
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        else:
            previous(unraisable)

    hook.keeps_ctrl_c = True
    sys.unraisablehook = hook
