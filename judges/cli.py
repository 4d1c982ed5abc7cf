"""``rolebench-eval judge``: score lm-eval outputs with an LLM judge.

Also runs as ``python -m rolebench_eval.cli <verb> ...``.
"""

from __future__ import annotations

import argparse
import sys

from rolebench_eval.errors import EXIT_OK
from rolebench_eval.llm.batch import add_batch_arguments, settings_from_args
from rolebench_eval.llm.budget import budget_from_args
from rolebench_eval.flags import number_arg
from rolebench_eval.llm.config import add_llm_arguments, overrides_from_args

from .report import cell as _fmt

EPILOG = """\
examples:
  # OpenAI (key from $OPENAI_API_KEY), paper-style win rate of a model's run against RoleGPT:
  rolebench-eval judge runs/my-model --judge rank --model gpt-4o --dry-run
  # the paper's joint ranking: several checkpoints and RoleGPT ranked in one prompt per item
  rolebench-eval judge out/model-a out/model-b out/model-c --judge rank --model gpt-4o
  # ... on the items every run answered (else k varies where a run lacks an item)
  rolebench-eval judge out/model-a out/model-b --judge rank --common-items --model gpt-4o
  # Table 7: one model's zero-shot, _fewshot and _dialogue runs ranked together
  rolebench-eval judge out/ --judge rank --across-variants --model gpt-4o
  rolebench-eval judge out/ --judge rank --model gpt-4o --max-cost 5 --price-input 2.5 --price-output 10
  # an ensemble of two judge models: majority verdict, each model's win rate, their agreement
  rolebench-eval judge out/ --judge pairwise --model gpt-4o --model gpt-4.1 --dry-run
  # the same as OpenAI Batch jobs at half the price (rerun the same command to resume polling them):
  rolebench-eval judge out/ --judge rank --model gpt-4o --batch --max-cost 5 --price-input 2.5 --price-output 10
  # a local judge through vllm run-batch: export, run, import
  rolebench-eval judge out/ --judge rank --model <served model> --batch-export requests.jsonl
  vllm run-batch -i requests.jsonl -o answers.jsonl --model <served model>
  rolebench-eval judge out/ --judge rank --model <served model> --batch-import answers.jsonl --max-requests 0
  # a local vLLM or Ollama server:
  rolebench-eval judge out/ --judge pairwise --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-72B-Instruct
  # converse's conversations, each graded whole (1-10 with reasons on four criteria):
  rolebench-eval judge conv/my-model --judge conversation --model gpt-4o
  # another model as the baseline, a judge folder of your own:
  rolebench-eval judge out/my-model --baseline out/other-model --judge ./my_judges/strict --model gpt-4o

exit status: 0 all judged; 2 bad input or settings the endpoint refuses (wrong key, URL or model: 401/403/404,
or the same 400 on the first requests); 3 budget reached; 4 requests failed (timeouts, 5xx, an item's 400);
5 no verdict parsed; 6 could not write (answers so far are cached); 130 interrupted. Stopped runs keep every
answer received (cached); rerun the same command.
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``judge`` verb to an argparse subparsers object."""
    p = subparsers.add_parser(
        "judge", help="score lm-eval RoleBench outputs with an LLM judge (rank, pairwise, rubric), or converse's "
                      "conversations (conversation)",
        description="Judge what lm-eval logged (--output_path OUT --log_samples) with an LLM judge on any "
                    "OpenAI-compatible endpoint. Answers are cached: reruns are free, killed runs resume.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="lm-eval output folders or samples_<task>_<date>.jsonl files")
    p.add_argument("--judge", required=True, help="a built-in judge (rank, pairwise, rubric; conversation for "
                                                  "converse's conversations) or a judge folder")
    p.add_argument("--baseline", default="rolegpt",
                   help="'rolegpt' (the dataset's RoleGPT answers, default) or another model's lm-eval output")
    p.add_argument("--max-systems", **number_arg(int, 2),
                   help="rank: most systems (runs + baseline) ranked in one prompt (else the judge config, 5)")
    p.add_argument("--across-variants", action="store_true",
                   help="rank: put the zero-shot, _fewshot and _dialogue runs of a split in one prompt per "
                        "item (the paper's Table 7), each run a system per variant ('run [fewshot]')")
    p.add_argument("--common-items", action="store_true",
                   help="rank: rank only the items every run answered (else an item a run lacks is ranked "
                        "among the systems that have it, and k varies)")
    p.add_argument("--allow-identical", action="store_true",
                   help="judge a run whose answers are all the baseline's own (the rolegpt replay against "
                        "RoleGPT): refused otherwise, since the judge would compare identical answers")
    p.add_argument("--out", default="judgments", help="output root (default: ./judgments)")
    add_llm_arguments(p, defaults_from="the judge config", several_models=True,
                      model_help="judge model (else the judge config, else $ROLEBENCH_JUDGE_MODEL); repeat it "
                                 "for an ensemble of judges (--model a --model b)")
    add_batch_arguments(p)
    p.add_argument("--limit", **number_arg(int, 1), help="judge only the first N items of each task")
    p.set_defaults(func=main)
    return p


def _options(args: argparse.Namespace):
    from .run import JudgeOptions

    caps, prices = budget_from_args(args)
    return JudgeOptions(judge=args.judge, baseline=args.baseline, out=args.out, cache=args.cache, caps=caps,
                        prices=prices, limit=args.limit, max_systems=args.max_systems,
                        across_variants=args.across_variants, common_items=args.common_items,
                        allow_identical=args.allow_identical, dry_run=args.dry_run,
                        progress=not args.no_progress, client=overrides_from_args(args),
                        batch=settings_from_args(args), batch_export=args.batch_export,
                        batch_import=args.batch_import)


def _k(summary: dict) -> str:
    """rank: the systems in its prompts, "2-3" when the runs cover different items; else "-"."""
    low, high = summary["n_systems_min"], summary["n_systems_max"]
    return "-" if high is None else str(high) if low == high else f"{low}-{high}"


def _table(summaries: list[dict]) -> str:
    from tabulate import tabulate

    from .protocols import get

    rows = []
    for s in summaries:
        headline, ci, lc, detail = get(s["protocol"]).table_cells(s)
        rows.append([s["model"], s["task"], s["judge"], _k(s), s["n_total"], s["n_parsed"], s["n_parse_failures"],
                     s["n_skipped_no_baseline"], s.get("n_unfinished_reasoning", 0), _fmt(headline), _fmt(ci),
                     _fmt(lc), _fmt(detail), _fmt(s["rouge_agreement"])])
    headers = ["model", "task", "judge", "k", "n", "parsed", "parse fail", "no baseline", "unfinished reasoning",
               "win rate | rubric mean",
               "95% CI", "LC win rate", "flip | rank | break", "tau vs ROUGE"]
    return tabulate(rows, headers=headers)


def main(args: argparse.Namespace) -> int:
    """Run the ``judge`` verb; returns the exit status."""
    from .report import ensemble_lines
    from .run import check_usable, judge_outputs

    report = judge_outputs(args.inputs, _options(args))
    if report.imported is not None:
        print(f"{args.batch_import}: " + ", ".join(f"{n} {what}" for what, n in report.imported.items()))
    if report.exported is not None:
        print(f"wrote {report.exported} requests to {args.batch_export} (the answers: --batch-import FILE)")
        return EXIT_OK
    if report.estimate is not None:
        for unit in report.units:
            print(f"{unit.model} / {unit.task}: {len(unit.items)} items to judge, "
                  f"{len(unit.skipped)} without a baseline answer (skipped)"
                  + (f", {len(unit.not_common)} not answered by every run (skipped)" if unit.not_common else ""))
        print("\n".join(report.estimate.lines()))
        return EXIT_OK
    print("\n".join([_table(report.summaries), *ensemble_lines(report.summaries)]))
    for folder in report.folders:
        print(f"wrote {folder}/summary.json and annotations.jsonl")
    check_usable(report)
    batch = report.batch
    if batch.stopped:
        print(batch.stop_message(), file=sys.stderr)
    return batch.exit_code
