"""``rolebench-eval leaderboard``: build the leaderboard page from lm-eval outputs.

Example::

    rolebench-eval leaderboard outputs/ --judges judged/ --out site/ --baseline rolegpt \\
        --name "outputs/org__tuned=RoleLLaMA lr=2e-4" --models models.yaml
    HF_TOKEN=hf_... rolebench-eval leaderboard outputs/ --out site/ --push-to-hub my-org/rolebench-board
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rolebench_eval.errors import EXIT_OK, InputError, NothingUsable
from rolebench_eval.flags import number_arg


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``leaderboard`` verb to a ``rolebench-eval`` subparsers object."""
    parser = subparsers.add_parser(
        "leaderboard", help="rank lm-eval runs with intervals; write Markdown, CSV, JSON, HTML and PNGs",
        description="Build a RoleBench leaderboard from lm-eval outputs (results_*.json and, when logged, "
                    "samples_*.jsonl), judge summaries and the paper's reported tables.")
    parser.add_argument("inputs", nargs="+", metavar="RESULTS",
                        help="lm-eval output folders (searched recursively) or results_*.json files")
    parser.add_argument("--judges", nargs="+", action="extend", default=[], metavar="DIR",
                        help="folders with judge summaries (summary.json of `rolebench-eval judge`)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--name", action="append", default=[], metavar="PATH=LABEL",
                        help="label for the runs at PATH (an input, results file, folder, model or adapter name); "
                             "the label may contain '=' too; repeatable")
    parser.add_argument("--models", metavar="MODELS.yaml",
                        help="display data of the rows (name, parameters, base_model, link, license; "
                             "`run: PATH` also labels the runs at PATH)")
    parser.add_argument("--baseline", metavar="NAME", help="measured row to test every row against")
    parser.add_argument("--include-incomparable", action="store_true",
                        help="show runs made with --limit, another task version or other data (unranked)")
    parser.add_argument("--strict", action="store_true", help="fail on the first unreadable input")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="cache of the per-item scores read from samples files "
                             "(default: $XDG_CACHE_HOME/rolebench-eval/leaderboard)")
    parser.add_argument("--no-cache", action="store_true", help="read every samples file again, cache nothing")
    parser.add_argument("--seed", **number_arg(int, None), default=None, help="bootstrap seed")
    parser.add_argument("--n-boot", **number_arg(int, 1), default=None, help="bootstrap resamples (default 1000)")
    parser.add_argument("--browse-items", **number_arg(int), default=20, metavar="N",
                        help="items per role in the item browser, items.html (default 20; 0: no browser)")
    parser.add_argument("--browse-models", **number_arg(int), default=10, metavar="N",
                        help="measured rows (by rank) whose answers the item browser shows (default 10)")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME",
                        help="then upload the site, the results, run records and judge summaries to this Hugging "
                             "Face dataset repository in one commit (token: $HF_TOKEN only)")
    parser.add_argument("--push-samples", action="store_true",
                        help="with --push-to-hub: upload the runs' samples files too (large)")
    parser.set_defaults(func=main)
    return parser


def report(board, out=sys.stderr) -> None:
    """Say on the console what the page says: every run left out and why, every unmatched judge summary."""
    for exc in board.errors:
        print(f"warning: left out: {exc}", file=out)
    for row in board.excluded:
        print(f"warning: not comparable, left out: {row.name}: {'; '.join(row.reasons)}", file=out)
    for line in board.unmatched_judges:
        print(f"warning: {line}", file=out)
    for note in board.notes:
        print(f"note: {note}", file=out)


def _build(args: argparse.Namespace, cache_dir: Path | None, models, workers):
    from .build import Options, build_leaderboard

    opts = Options(processes=True,  # a command: its own main module, safe to spawn workers
                   names=list(args.name), baseline=args.baseline, include_incomparable=args.include_incomparable,
                   strict=args.strict, cache_dir=cache_dir, browse_items=args.browse_items,
                   browse_models=args.browse_models)
    if args.seed is not None:
        opts.seed = args.seed
    if args.n_boot is not None:
        opts.n_boot = args.n_boot
    if models is not None:
        opts.models, opts.models_source = models, args.models
    return build_leaderboard(args.inputs, judges=args.judges, out=args.out, options=opts, pool=workers)


def main(args: argparse.Namespace) -> int:
    """Run the verb: 0 on success, 2 on a bad input (every one under --strict), 5 when no run could be ranked."""
    from rolebench_eval.fileio import ensure_writable

    from .cache import default_cache_dir
    from .workers import Workers, start_early

    models = None
    if args.models is not None:
        from rolebench_eval.outputs.models import read_models

        models = read_models(args.models)
    for path in [*args.inputs, *args.judges]:  # a typo is bad input, not a run to leave out
        if not Path(path).exists():
            raise InputError(path, None, None, "no such file or folder")
    target = None
    if args.push_to_hub:
        from .publish import prepare

        target = prepare(args.push_to_hub, os.environ, args.push_samples)  # before the build: fail fast
    elif args.push_samples:
        raise InputError(None, None, "--push-samples", "goes with --push-to-hub ORG/NAME")
    ensure_writable(args.out, "the leaderboard site")  # before any file is read
    cache_dir = None if args.no_cache else Path(args.cache_dir or default_cache_dir())
    with Workers() as workers:
        if start_early(args.inputs, cache_dir):
            workers.start()
        board = _build(args, cache_dir, models, workers)
    report(board)
    measured = len(board.measured)
    pages = f"page written to {board.outputs['html'].resolve()}"
    if "items_html" in board.outputs:
        pages += f" (item browser: {board.outputs['items_html'].name})"
    print(f"{measured} measured row(s); {pages}")
    if not measured:
        raise NothingUsable("no run could be ranked (see the warnings above); the page holds the paper's rows only"
                            + ("; nothing was pushed" if target else ""))
    if target is not None:
        from .publish import push

        url, files = push(board, target)
        print(f"pushed {len(files)} files to {target.repo_id}: {' '.join(files)}")
        print(f"commit: {url}")
    return EXIT_OK
