"""``rolebench-eval judge check``: a judge model's health on a character set (``judge-check`` also works)."""

from __future__ import annotations

import argparse
import sys

from rolebench_eval.errors import EXIT_OK
from rolebench_eval.llm.budget import budget_from_args
from rolebench_eval.flags import number_arg
from rolebench_eval.llm.config import add_llm_arguments, overrides_from_args

from .report import cell as _fmt

VERB = "judge-check"  # what `judge check` is parsed as (rolebench_eval.cli)
EPILOG = """\
examples:
  # (a) can the judge tell the Chinese role-specific characters apart? 20 reference answers per role, 4 names each
  rolebench-eval judge check --split specific_zh --data-dir RoleBench --model gpt-4o --dry-run
  # (a) on a folder written by `generate`, shown the RoleGPT answers; (b) against people's labels;
  # (c) the flip rate and length bias the judge's own runs measured
  rolebench-eval judge check --split custom_general --data-dir data/brine --answers rolegpt \\
      --labels labels.jsonl --judge pairwise --judgments judgments/ --model gpt-4o

writes <out>/health/<judge model>/<set>/health.json (the leaderboard shows it as a "judge health" panel
beside the columns of that judge model when given --judges <out>) and identification.jsonl beside it.
exit status as for `judge`: 0 done; 2 bad input; 3 budget reached; 4 requests failed; 5 no reply parsed;
6 could not write. Answers are cached: a rerun is free, a stopped run resumes.
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``judge-check`` (``judge check`` on the command line) to an argparse subparsers object."""
    p = subparsers.add_parser(
        VERB, help="judge health (also `judge check`): does the judge tell the characters apart, agree with "
                   "people, flip with the order, favour long answers",
        description="A judge model's health on one character set: (a) identification of the speaking character "
                    "per role, (b) agreement with human labels, (c) the biases its judge runs measured.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ident = p.add_argument_group("(a) identification")
    ident.add_argument("--split", help="a catalogue split (specific_zh, general_en, ...; custom_general or "
                                       "custom_specific with --data-dir a folder written by `generate`)")
    ident.add_argument("--data-dir", help="RoleBench root or generated folder (default: $ROLEBENCH_DATA_DIR, "
                                          "else the Hub)")
    ident.add_argument("--answers", choices=("reference", "rolegpt"), default="reference",
                       help="the answers shown: each item's reference (default) or RoleGPT's")
    ident.add_argument("--k", **number_arg(int, 2), help="names shown with each answer (default: the identify "
                                                         "judge folder, 4)")
    ident.add_argument("--items-per-role", **number_arg(int, 1), help="answers per role (default 20)")
    ident.add_argument("--choice-seed", **number_arg(int, 0), help="which answers and names (default 0)")
    ident.add_argument("--identify-judge", default="identify",
                       help="judge folder of the identification prompts (default: the built-in identify)")
    agree = p.add_argument_group("(b) agreement with people, (c) measured biases")
    agree.add_argument("--labels", help="human labels, JSONL (judges/README.md, 'Judge health')")
    agree.add_argument("--judge", default="pairwise", help="the pairwise or rank judge checked against the labels "
                                                           "(default pairwise)")
    agree.add_argument("--judgments", nargs="+", default=[], metavar="DIR",
                       help="judge output folders: the flip rates and length terms of this model's summaries")
    p.add_argument("--out", default="judgments", help="output root (default: ./judgments)")
    add_llm_arguments(p, defaults_from="the judge folders",
                      model_help="judge model (else the identify folder's config, else $ROLEBENCH_JUDGE_MODEL)")
    p.set_defaults(func=main)
    return p


def _options(args: argparse.Namespace):
    from .check import CheckOptions

    caps, prices = budget_from_args(args)
    return CheckOptions(client=overrides_from_args(args), split=args.split, data_dir=args.data_dir,
                        answers=args.answers, k=args.k, items_per_role=args.items_per_role,
                        choice_seed=args.choice_seed, identify=args.identify_judge, labels=args.labels,
                        judge=args.judge, judgments=args.judgments, out=args.out, cache=args.cache, caps=caps,
                        prices=prices, dry_run=args.dry_run, progress=not args.no_progress)


def lines(health) -> list[str]:
    """The summary for the terminal."""
    from tabulate import tabulate

    out = []
    ident, agree, biases = health.identification, health.agreement, health.biases
    if ident is not None:
        out.append(f"(a) identification on {ident.split} ({ident.answers} answers, k = {ident.k}, chance "
                   f"{ident.chance:.3f}): accuracy {_fmt(ident.accuracy)} {_fmt(ident.ci95)}, {ident.n_parsed} "
                   f"parsed of {ident.n_total} ({ident.n_parse_failures} parse failures, {ident.n_pending} pending)")
        out.append(tabulate([[r.role, r.n, r.n_parsed, _fmt(r.accuracy), _fmt(r.ci95),
                              "AT OR BELOW CHANCE" if r.at_or_below_chance else ""] for r in ident.roles],
                            headers=["role", "n", "parsed", "accuracy", "95% CI", ""], disable_numparse=True))
    if agree is not None:
        out.append(f"(b) agreement with {agree.labels_file} ({agree.judge}): accuracy {_fmt(agree.accuracy)} "
                   f"{_fmt(agree.accuracy_ci95)}, Cohen's kappa {_fmt(agree.kappa)} {_fmt(agree.kappa_ci95)} over "
                   f"{agree.n_parsed} parsed of {agree.n_pairs} pairs" + (
                       f"; position flips {_fmt(agree.position_flip_rate)}" if agree.position_flip_rate is not None
                       else ""))
    if biases is not None:
        out.append(f"(c) {len(biases.summaries)} judge summaries of this model: position-flip rate "
                   f"{_fmt(biases.position_flip_rate)} over {biases.n_flip_items} items")
        for m in biases.summaries:
            out.append(f"    {m.model} / {m.task} / {m.judge}: flips {_fmt(m.position_flip_rate)}, win rate "
                       f"{_fmt(m.win_rate)}, length-controlled {_fmt(m.lc_win_rate)}, length term "
                       f"{_fmt(m.length_coefficient)}")
    return out


def main(args: argparse.Namespace) -> int:
    """Run ``judge check``; returns the exit status."""
    from .check import check_judge

    report = check_judge(_options(args))
    for name, est in report.estimates:
        print(f"{name}:")
        print("\n".join(f"  {line}" for line in est.lines()))
    if report.health is None:
        return EXIT_OK
    print("\n".join(lines(report.health)))
    print(f"wrote {report.folder}/health.json")
    stopped = next((r for r in report.results if r.stopped), None)
    if stopped is not None:
        print(stopped.stop_message(), file=sys.stderr)
    return report.exit_code
