"""``rolebench-eval generate``: RoleBench-style training and test data for your own characters.

Also runs as ``python -m rolebench_eval.cli <verb> ...``.
"""

from __future__ import annotations

import argparse
import sys

from rolebench_eval.errors import EXIT_OK
from rolebench_eval.llm.budget import budget_from_args
from rolebench_eval.llm.config import add_llm_arguments, overrides_from_args

EPILOG = """\
examples:
  # OpenAI (key from $OPENAI_API_KEY): estimate first, then generate with a cost cap
  rolebench-eval generate rolegpt --profile brine.yaml --instructions instr.jsonl --out data/brine \\
      --model gpt-4o --dry-run --price-input 2.5 --price-output 10
  rolebench-eval generate context-instruct --profile brine.yaml --out data/brine --model gpt-4o --max-requests 200
  # a local vLLM or Ollama server
  rolebench-eval generate rolegpt --profile brine.yaml --instructions instr.jsonl --out data/brine \\
      --base-url http://localhost:11434/v1 --model qwen2.5:7b-instruct
  # evaluate on the generated test files
  rolebench-eval run --model hf --model_args pretrained=<model> \\
      --tasks rolebench_custom_general,rolebench_custom_specific --metadata '{"data_dir": "data/brine"}'

exit status: 0 done; 2 bad input or settings the endpoint refuses (wrong key, URL or model: 401/403/404, or the
same 400 on the first requests); 3 budget reached; 4 requests failed; 5 nothing usable (every answer dropped:
nothing is written); 6 could not write (no space, read-only, ...: answers so far are cached); 130 interrupted.
Every answer is cached as it arrives: rerun the same command to resume or to rewrite the files for free.
The end of a run prints what was received, kept and dropped (by reason); <out>/rolebench_custom.json
holds the full record.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", required=True,
                   help="character profile YAML (format: rolebench_eval/generate/profile.py)")
    p.add_argument("--out", required=True, help="data folder to write (RoleBench layout; other roles' rows are kept)")
    add_llm_arguments(p, model_required=True,
                      defaults_from="the paper's RoleGPT settings: temperature 0.7, top-p 0.95, no seed; "
                                    "--max-new-tokens rolegpt 512, context-instruct 2048")
    out = p.add_argument_group("output")
    out.add_argument("--test-fraction", type=float, default=0.2, help="share of questions in test.jsonl (by hash)")
    out.add_argument("--filters", help="YAML with breaks_character / refusal / question_mentions_source lists "
                                       "(default: rolebench_eval/generate/prompts/filters.yaml)")


def _profile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-outside-paths", action="store_true",
                   help="let the profile name script / dialogues files outside its own folder (refused by "
                        "default: their text is sent to the endpoint)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` verb (actions ``rolegpt`` and ``context-instruct``) to argparse subparsers."""
    p = subparsers.add_parser(
        "generate", help="RoleGPT and Context-Instruct data for your own characters",
        description="Generate RoleBench-style data for a character profile with any OpenAI-compatible endpoint.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="generate_action", metavar="ACTION", required=True)
    rolegpt = actions.add_parser("rolegpt", help="answer general instructions in character (general/*.jsonl)",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rolegpt.add_argument("--instructions", required=True, help='JSONL, one {"instruction": ...} (or "question") a line')
    rolegpt.add_argument("--samples", type=int, default=6, help="answers per instruction: N-1 references + 1 baseline")
    rolegpt.add_argument("--top-k", type=int, default=5, help="dialogue pairs retrieved (BM25) as few-shot turns")
    _common(rolegpt)
    _profile_arguments(rolegpt)
    ci = actions.add_parser("context-instruct", help="role-specific questions from the profile (role_specific/*.jsonl)",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ci.add_argument("--questions", type=int, default=5, help="triplets asked for per request")
    ci.add_argument("--min-confidence", type=float, default=7, help="drop triplets below this confidence (1-10)")
    ci.add_argument("--segment-size", type=int, help="script segment size in words (en, default 400) "
                                                     "or characters (zh, default 800)")
    _common(ci)
    _profile_arguments(ci)
    p.set_defaults(func=main)
    return p


def _options(args: argparse.Namespace):
    from .common import GenerateOptions

    caps, prices = budget_from_args(args)
    return GenerateOptions(model=args.model, out=args.out, cache=args.cache, caps=caps, prices=prices,
                           max_new_tokens=args.max_new_tokens, test_fraction=args.test_fraction,
                           filters=args.filters, dry_run=args.dry_run, progress=not args.no_progress,
                           client=overrides_from_args(args))


def _generate(args: argparse.Namespace):
    opts = _options(args)
    if args.generate_action == "rolegpt":
        from .rolegpt import generate_rolegpt

        return generate_rolegpt(args.profile, args.instructions, opts, samples=args.samples, top_k=args.top_k,
                                allow_outside_paths=args.allow_outside_paths)
    from .context_instruct import generate_context_instruct

    return generate_context_instruct(args.profile, opts, questions=args.questions,
                                     min_confidence=args.min_confidence, segment_size=args.segment_size,
                                     allow_outside_paths=args.allow_outside_paths)


def summary(report: dict, action: str, out: str) -> str:
    """The end of a run: one row per kind of answer (received, kept, dropped by reason), then the files."""
    from tabulate import tabulate

    from .filters import drops_text

    rows = [[what, t["received"], t["kept"], drops_text(t["dropped"])] for what, t in report["tallies"].items()]
    table = tabulate(rows, headers=["", "received", "kept", "dropped"], tablefmt="simple")
    written = ", ".join(f"{path} {n}" for path, n in report["written"].items())
    lines = [f"generate {action}: {report['role']} -> {out}", table,
             f"requests: {report['requests_sent']} sent, {report['requests_cached']} answered from the cache"]
    if written:
        lines += [f"rows written for this role: {written}", f"full record: {out}/rolebench_custom.json"]
    else:
        lines.append("nothing written yet: no item is complete")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run ``generate rolegpt`` or ``generate context-instruct``; returns the exit status."""
    result = _generate(args)
    if result.estimate is not None:
        print(f"{result.report['requests']} requests planned")
        print("\n".join(result.estimate.lines()))
        return EXIT_OK
    print(summary(result.report, args.generate_action, args.out))
    batch = result.batch
    if batch.stopped:
        print(batch.stop_message("every answer received is kept and only complete items were written"),
              file=sys.stderr)
    return batch.exit_code
