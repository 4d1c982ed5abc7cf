"""``rolebench-eval``: one console script, a few verbs, thin wrappers over library calls.

One exit policy for every verb (:mod:`rolebench_eval.errors`): 0 done, 2 bad input, 3 stopped
by a budget, 4 requests failed, 5 nothing usable produced, 6 could not write, 130 interrupted.
A verb raises the matching error (or returns the status); this module prints it as one line
(:mod:`rolebench_eval.cli_notes` words it), with the traceback only under ``--debug``. What the
machine refuses (an ``OSError`` of the file system, SQLite's disk errors) is exit 6 here, whichever
verb met it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sqlite3
import sys
import textwrap

from rolebench_eval import __version__
from rolebench_eval.cli_notes import (ctrl_c_seen, fresh_line, interrupted_note, keep_ctrl_c, missing_extra, verb_paths,
                                      write_fault)
from rolebench_eval.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, InputError, Interrupted, RoleBenchError
from rolebench_eval.fileio import ensure_writable
from rolebench_eval.flags import number_arg

EPILOG = textwrap.dedent("""\
    quick start:
      rolebench-eval demo --data-dir ../shared/rolebench           # everything, offline, ends in a leaderboard page
      rolebench-eval reproduce --data-dir ../shared/rolebench      # RoleGPT replay vs the paper
      rolebench-eval run --model hf --model_args pretrained=<model> --tasks rolebench_specific_en --apply_chat_template
      rolebench-eval data check ../shared/rolebench

    exit status (every verb): 0 done; 2 bad input; 3 stopped by a budget; 4 requests failed;
    5 nothing usable produced; 6 could not write (no space, read-only, permission, not a folder,
    quota, file too large: the line names the path and what was kept); 130 interrupted.
    Add --debug (before the verb) for tracebacks.
""")

# Verbs whose flags are another tool's, spelled its way: lm-eval's (`run --output_path`) and TRL's
# (`finetune --output_dir`, whose parser takes `--output-dir` too).
FOREIGN_FLAGS = ("run", "finetune")

# Verbs that live in their own modules; each module exposes register(subparsers), which adds its verbs. A command
# imports only its own verb's module (the others' imports were a sixth of a second of every start); --help, or a
# verb that is not one, imports them all.
PLUGGED_VERBS = {
    "judge": "rolebench_eval.judges.cli",
    "judge-check": "rolebench_eval.judges.check_cli",
    "generate": "rolebench_eval.generate.cli",
    "leaderboard": "rolebench_eval.leaderboard.cli",
    "finetune": "rolebench_eval.finetune.cli",
    "scenarios": "rolebench_eval.conversations.cli",
    "converse": "rolebench_eval.conversations.cli",
}


def _run(args: argparse.Namespace) -> int:
    from rolebench_eval.tasks.runner import run_lm_eval

    return run_lm_eval(args.lm_eval_args)


def _merge(args: argparse.Namespace) -> int:
    from rolebench_eval.outputs.merge import merge_parts, read_parts, write_merged
    from rolebench_eval.tasks.runner import group_config

    written = write_merged(merge_parts(read_parts(args.parts), group_config), args.output_path)
    print(f"merged {len(args.parts)} inputs into {written}")
    return EXIT_OK


def _board(args: argparse.Namespace) -> int:
    from rolebench_eval import board

    return board.main(args.spec, main, jobs=args.jobs, out=args.out, backend=args.backend, ray_address=args.ray_address)


def _data_check(args: argparse.Namespace) -> int:
    from rolebench_eval.datacheck import check_data, format_report
    from rolebench_eval.source import DataSource

    source = DataSource.resolve(args.dir)
    if source.local_root is None:
        raise InputError(None, None, "DIR", "data check reads a local copy: pass DIR or set ROLEBENCH_DATA_DIR")
    report = check_data(source.local_root)
    print(format_report(report))
    return EXIT_INPUT if report.problems else EXIT_OK


def _reproduce(args: argparse.Namespace) -> int:
    from rolebench_eval.reproduce import format_rows, reproduce

    if args.output_path:
        ensure_writable(args.output_path, "the replay's lm-eval outputs")
    _, rows, skipped = reproduce(args.data_dir, args.output_path, args.limit)
    print("\nRoleGPT replay (model `rolegpt`) against the RoleLLM paper, ROUGE-L recall as in the paper:\n")
    print(format_rows(rows))
    for task in skipped:
        print(f"not run: {task} (its test file is not in this copy of RoleBench)")
    print("RoleGPT's answers are scored against their sibling samples (CUS) as in the paper; RAW against the "
          "general instructions' original answers; multiple references: the maximum (tasks/README.md).")
    if args.output_path:
        print(f"lm-eval results and samples written under {args.output_path}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from rolebench_eval.demo import run_demo

    ensure_writable(args.out, "the demo folder")
    page = run_demo(args.data_dir, args.out)
    print(f"leaderboard page: {page}")
    return EXIT_OK


def _tasks_dir(args: argparse.Namespace) -> int:
    from rolebench_eval.tasks import TASKS_DIR

    print(TASKS_DIR)
    return EXIT_OK


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every verb, or with ``verb`` (one of :data:`PLUGGED_VERBS`) the built-in verbs
    and that one only."""
    parser = argparse.ArgumentParser(
        prog="rolebench-eval", description="RoleBench (RoleLLM) for lm-evaluation-harness.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rolebench-eval {__version__}")
    parser.add_argument("--debug", action="store_true", help="print tracebacks (give it before the verb)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    run = sub.add_parser("run", add_help=False, help="lm_eval run, with RoleBench tasks and the rolegpt model",
                         description="Takes exactly lm_eval's flags (see `rolebench-eval run --help`), plus "
                                     "--shard K/N: shard K of N, K from 0 as ranks and Slurm array ids count, and "
                                     "--no-cache: keep no answers (by default they are cached beside --output_path, "
                                     "so a stopped run resumes).")
    run.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)

    merge = sub.add_parser("merge", help="join the parts of a `run --shard K/N` into the single run's files",
                           description="Checks the parts are one run's shards (same model, tasks, versions, data, "
                                       "generation settings; every shard once) and writes one results file and one "
                                       "samples file per task, as the single run would have.")
    merge.add_argument("parts", nargs="+", metavar="DIR", help="the parts' output folders (or results files)")
    merge.add_argument("--output-path", "--output_path", dest="output_path", required=True,
                       help="a new folder for the merged run (lm-eval's --output_path layout)")
    merge.set_defaults(func=_merge)

    board = sub.add_parser("board", help="a board spec's grid: (model x task x shard) runs, merge, judge, leaderboard",
                           description="Runs every step of BOARD.yaml whose output is not complete yet (a rerun "
                                       "resumes; a finished board does nothing); a failed step is reported with "
                                       "its log, the others go on (exit status 4 at the end).")
    board.add_argument("spec", metavar="BOARD.yaml", help="the board spec (examples/board_replay.yaml)")
    board.add_argument("--jobs", **number_arg(int, 1), default=1, help="local backend: worker processes (default 1)")
    board.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local: a pool of worker processes (default); ray: each step a Ray task")
    board.add_argument("--ray-address", help="the Ray cluster (default: $RAY_ADDRESS, else the local one)")
    board.add_argument("--out", help="output folder (default: the spec's out, else BOARD beside the spec)")
    board.set_defaults(func=_board)

    data = sub.add_parser("data", help="inspect a RoleBench copy").add_subparsers(dest="data_verb", metavar="ACTION")
    check = data.add_parser("check", help="what `run` would refuse, and counts: rows, roles, references, "
                                          "duplicates, types, RAW coverage")
    check.add_argument("dir", nargs="?", help="RoleBench root (default: $ROLEBENCH_DATA_DIR)")
    check.set_defaults(func=_data_check)

    repro = sub.add_parser("reproduce", help="replay RoleGPT on RoleBench and compare with the paper")
    repro.add_argument("--data-dir", help="RoleBench root (default: $ROLEBENCH_DATA_DIR, else the Hub)")
    repro.add_argument("--output-path", help="also write lm-eval results and samples here")
    repro.add_argument("--limit", **number_arg(int, 1), help="items per task (smoke runs only; not comparable)")
    repro.set_defaults(func=_reproduce)

    demo = sub.add_parser("demo", help="offline end to end: replay, tiny model + RoCIT adapter, leaderboard page")
    demo.add_argument("--data-dir", help="a local RoleBench copy (default: $ROLEBENCH_DATA_DIR, else the Chinese "
                                           "files of the Hub dataset, downloaded once)")
    demo.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    demo.set_defaults(func=_demo)

    tasks_dir = sub.add_parser("tasks-dir", help="print the task folder, for lm_eval --include_path")
    tasks_dir.set_defaults(func=_tasks_dir)

    _plug(sub, verb)
    return parser


def _plug(sub, verb: str | None) -> None:
    """Register the plugged verb ``verb`` (None: every one) on the subparsers ``sub``."""
    modules = dict.fromkeys(module for name, module in PLUGGED_VERBS.items() if verb in (None, name))
    for module in modules:
        importlib.import_module(module).register(sub)
    if missing := [name for name, module in PLUGGED_VERBS.items() if module in modules and name not in sub.choices]:
        raise RuntimeError(f"PLUGGED_VERBS: no module registered {', '.join(missing)}")


def sub_verbs(argv: list[str]) -> list[str]:
    """``judge check ...`` is the verb ``judge-check`` (``judge`` takes folders where a sub-verb would go;
    a folder called check is ``./check``)."""
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if at is not None and argv[at:at + 2] == ["judge", "check"]:
        return argv[:at] + ["judge-check"] + argv[at + 2:]
    return argv


def _verb(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def one_spelling(argv: list[str]) -> list[str]:
    """Our flags are spelled with hyphens (``--data-dir``); ``--data_dir`` is taken as the same flag."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is not a flag
            return out + argv[i:]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            arg = name.replace("_", "-") + eq + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """The console script; returns the exit status (see the module docstring)."""
    argv = sub_verbs(list(sys.argv[1:] if argv is None else argv))
    debug = False
    while argv[:1] == ["--debug"]:
        debug, argv = True, argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    keep_ctrl_c()
    args = None
    try:
        if argv[:1] == ["run"]:  # lm_eval parses its own flags (argparse's REMAINDER would not take them)
            return _run(argparse.Namespace(lm_eval_args=argv[1:]))
        verb = _verb(argv)
        parser = build_parser(verb if argv[:1] == [verb] and verb in PLUGGED_VERBS else None)  # not `--help verb`
        args = parser.parse_args(argv if verb in FOREIGN_FLAGS else one_spelling(argv))
        debug = debug or args.debug
        if not hasattr(args, "func"):
            parser.print_help()
            return EXIT_OK if not argv else EXIT_INPUT
        return args.func(args)
    except (KeyboardInterrupt, RoleBenchError, ImportError, OSError, sqlite3.OperationalError) as err:
        if debug:
            raise
        # a Ctrl-C, or an error it caused (a worker stopped halfway through an import, a pipe to it closed)
        if isinstance(err, KeyboardInterrupt) or (ctrl_c_seen() and not isinstance(err, Interrupted)):
            print(f"{fresh_line()}rolebench-eval {_verb(argv)}: {interrupted_note(_verb(argv), args)}",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        line, code = _error_line(err, argv, args)
        if line is None:  # not one of the policy's errors: a bug, with its traceback
            raise
        print(line, file=sys.stderr)
        return code


def _error_line(err: Exception, argv: list[str], args) -> tuple[str | None, int]:
    """The one line and exit status of an error of the policy; (None, 1) for any other."""
    verb = _verb(argv)
    if isinstance(err, RoleBenchError):
        lead = f"{fresh_line()}rolebench-eval {verb}: " if isinstance(err, Interrupted) else \
            f"rolebench-eval {verb}: error: "
        return f"{lead}{err}", err.exit_code
    if isinstance(err, ImportError):
        hint = missing_extra(err, verb)
        return (f"rolebench-eval {verb}: error: {hint}" if hint else None), EXIT_INPUT
    fault = write_fault(err, *verb_paths(verb, args, argv))
    return (f"rolebench-eval {verb}: error: {fault}", fault.exit_code) if fault else (None, 1)


if __name__ == "__main__":
    sys.exit(main())
