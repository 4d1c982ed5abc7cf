"""``rolebench-eval``: one console script, a few verbs, thin wrappers over library calls."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import textwrap

EPILOG = textwrap.dedent("""\
    quick start:
      rolebench-eval demo --data-dir ../shared/rolebench           # everything, offline, ends in a leaderboard page
      rolebench-eval reproduce --data-dir ../shared/rolebench      # RoleGPT replay vs the paper
      rolebench-eval run --model hf --model_args pretrained=<model> --tasks rolebench_specific_en --apply_chat_template
      rolebench-eval data check ../shared/rolebench
""")

# Verbs that live in their own modules; each exposes register(subparsers).
PLUGGED_VERBS = (
    "rolebench_eval.judges.cli",
    "rolebench_eval.generate.cli",
    "rolebench_eval.leaderboard.cli",
    "rolebench_eval.finetune.cli",
)


def _run(args: argparse.Namespace) -> int:
    from rolebench_eval.tasks.runner import run_lm_eval

    run_lm_eval(args.lm_eval_args)
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from rolebench_eval.datacheck import check_data, format_report
    from rolebench_eval.source import DataSource

    source = DataSource.resolve(args.dir)
    if source.local_root is None:
        print("data check reads a local copy: pass DIR or set ROLEBENCH_DATA_DIR", file=sys.stderr)
        return 2
    report = check_data(source.local_root)
    print(format_report(report))
    return 1 if report.problems else 0


def _reproduce(args: argparse.Namespace) -> int:
    from rolebench_eval.reproduce import format_rows, reproduce

    _, rows, skipped = reproduce(args.data_dir, args.output_path, args.limit)
    print("\nRoleGPT replay (model `rolegpt`) against the RoleLLM paper, ROUGE-L recall as in the paper:\n")
    print(format_rows(rows))
    for task in skipped:
        print(f"not run: {task} (its test file is not in this copy of RoleBench)")
    print("RAW needs the source datasets' raw answers, which the released test files do not carry.")
    if args.output_path:
        print(f"lm-eval results and samples written under {args.output_path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rolebench_eval.demo import run_demo

    page = run_demo(args.data_dir, args.out)
    print(f"leaderboard page: {page}")
    return 0


def _tasks_dir(args: argparse.Namespace) -> int:
    from rolebench_eval.tasks import TASKS_DIR

    print(TASKS_DIR)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rolebench-eval", description="RoleBench (RoleLLM) for lm-evaluation-harness.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    run = sub.add_parser("run", add_help=False, help="lm_eval run, with RoleBench tasks and the rolegpt model",
                         description="Takes exactly lm_eval's flags (see `rolebench-eval run --help`).")
    run.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)

    data = sub.add_parser("data", help="inspect a RoleBench copy").add_subparsers(dest="data_verb", metavar="ACTION")
    check = data.add_parser("check", help="per-split counts, roles, references, degenerate references, problems")
    check.add_argument("dir", nargs="?", help="RoleBench root (default: $ROLEBENCH_DATA_DIR)")
    check.set_defaults(func=_data_check)

    repro = sub.add_parser("reproduce", help="replay RoleGPT on RoleBench and compare with the paper")
    repro.add_argument("--data-dir", help="RoleBench root (default: $ROLEBENCH_DATA_DIR, else the Hub)")
    repro.add_argument("--output-path", help="also write lm-eval results and samples here")
    repro.add_argument("--limit", type=int, help="items per task (smoke runs only; not comparable)")
    repro.set_defaults(func=_reproduce)

    demo = sub.add_parser("demo", help="offline end to end: replay, tiny model + RoCIT adapter, leaderboard page")
    demo.add_argument("--data-dir", required=True, help="a local RoleBench copy (with the Chinese train files)")
    demo.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    demo.set_defaults(func=_demo)

    tasks_dir = sub.add_parser("tasks-dir", help="print the task folder, for lm_eval --include_path")
    tasks_dir.set_defaults(func=_tasks_dir)

    for module in PLUGGED_VERBS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # lm_eval parses its own flags (argparse's REMAINDER would not take them)
        return _run(argparse.Namespace(lm_eval_args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0 if not argv else 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
