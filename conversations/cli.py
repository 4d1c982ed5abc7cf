"""``rolebench-eval scenarios`` (write, check, seal, freeze) and ``rolebench-eval converse``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rolebench_eval.errors import EXIT_OK, InputError, NothingUsable
from rolebench_eval.llm.batch import add_batch_arguments, settings_from_args
from rolebench_eval.llm.budget import budget_from_args
from rolebench_eval.llm.config import ClientConfig, add_llm_arguments
from rolebench_eval.outputs.scenario import KINDS

from .simulator import DECODING as SIMULATOR_DEFAULTS

EPILOG = """\
examples:
  rolebench-eval scenarios write --data-dir ../shared/rolebench --roles "Jack Sparrow,Sherlock Holmes" \\
      --turns 6 --out scenarios.jsonl --model gpt-4o            # the simulator: asked once per scenario, cached
  rolebench-eval converse scenarios.jsonl --model my-model --base-url http://localhost:8000/v1 --out conv/my-model
  rolebench-eval converse scenarios.jsonl --mode live --model my-model --base-url http://localhost:8000/v1 \\
      --simulator-model gpt-4o --out conv/live
  rolebench-eval scenarios freeze conv/live --scenarios scenarios.jsonl --out frozen.jsonl   # replay it for every model

exit status: 0 done; 2 bad input; 3 budget reached; 4 requests failed; 5 nothing usable; 6 could not write;
130 interrupted. Every answer is cached as it arrives: rerun the same command to resume.
"""


def _write_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="RoleBench root or a folder written by `generate` (default: "
                                      "$ROLEBENCH_DATA_DIR, else the Hub)")
    p.add_argument("--split", help="the catalogue split whose roles are the characters (default: custom_specific "
                                   "for a folder written by generate, else specific_en)")
    p.add_argument("--roles", help="comma-separated roles (default: every role of the split)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated kinds (default: {','.join(KINDS)})")
    p.add_argument("--per-kind", type=int, default=1, help="scenarios per character and kind (default 1)")
    p.add_argument("--turns", type=int, default=6, help="user turns per scenario (default 6)")
    p.add_argument("--out", required=True, help="the scenario file to write (JSONL)")
    add_llm_arguments(p, model_required=True, defaults_from="temperature 0.7, no seed",
                      model_help="the simulator model at the endpoint")
    add_batch_arguments(p)


def _converse_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", help="a scenario file (scenarios write / freeze)")
    p.add_argument("--out", required=True, help="folder for conversations.jsonl and summary.json")
    p.add_argument("--mode", choices=("replay", "live"), default="replay",
                   help="replay: the file's user turns (every model the same); live: the simulator answers")
    p.add_argument("--turns", type=int, help="turns per conversation (default: the scenario's)")
    p.add_argument("--data-dir", help="where own-story references come from (default: $ROLEBENCH_DATA_DIR, else the Hub)")
    add_llm_arguments(p, model_required=True, defaults_from="temperature 0, seed 0",
                      model_help="the model under test at the endpoint")
    add_batch_arguments(p)
    sim = p.add_argument_group("live mode's simulator (same cache and budget)")
    sim.add_argument("--simulator-model", help="the simulated user's model")
    sim.add_argument("--simulator-base-url", help="its endpoint (default: --base-url)")
    sim.add_argument("--simulator-api-key-env", help="the variable holding its key (default: --api-key-env)")


def register(subparsers) -> None:
    """Add ``scenarios`` and ``converse`` to argparse subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("scenarios", help="write, check, seal or freeze live role-play scenarios",
                              epilog=EPILOG, formatter_class=fmt)
    actions = p.add_subparsers(dest="scenarios_action", metavar="ACTION", required=True)
    _write_args(actions.add_parser("write", help="a simulator model writes scenarios for a set of characters",
                                   epilog=EPILOG, formatter_class=fmt))
    check = actions.add_parser("check", help="what a scenario file holds; exit 2 naming the line when it is bad")
    check.add_argument("file")
    check.add_argument("--data-dir", help="also check that its own-story items are in this data folder, in the "
                                          "version the scenarios were written from")
    seal = actions.add_parser("seal", help="rehash a scenario file edited by hand (its hashes then match)")
    seal.add_argument("file")
    freeze = actions.add_parser("freeze", help="a live run's user turns as a scenario file, for replay")
    freeze.add_argument("run", help="the live run's --out folder")
    freeze.add_argument("--scenarios", required=True, help="the scenario file the live run read")
    freeze.add_argument("--out", required=True, help="the frozen scenario file to write")
    p.set_defaults(func=scenarios_main)
    _converse_args(c := subparsers.add_parser(
        "converse", help="put a model through scenarios turn by turn (replay or live); scores per turn",
        epilog=EPILOG, formatter_class=fmt))
    c.set_defaults(func=converse_main)


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _write(args: argparse.Namespace) -> int:
    from .commands import write

    kinds = _csv(args.kinds) or []
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InputError("--kinds", None, None, f"{bad[0]!r} is not a kind; known: {', '.join(KINDS)}")
    return write(args, kinds, _csv(args.roles))


def scenarios_main(args: argparse.Namespace) -> int:
    from rolebench_eval.outputs.scenario import counts, read_scenarios, write_scenarios

    if args.scenarios_action == "write":
        return _write(args)
    if args.scenarios_action == "check":
        from rolebench_eval.fileio import sha256_file

        scenarios = read_scenarios(args.file)
        if args.data_dir:
            from .converse import load_references

            load_references(scenarios, args.data_dir, args.file)
        print(f"{args.file}: sha256 {sha256_file(args.file)}")
        for key, value in counts(scenarios).items():
            print(f"  {key}: {value}")
        return EXIT_OK
    if args.scenarios_action == "seal":
        from rolebench_eval.outputs import codec
        from rolebench_eval.outputs.scenario import Scenario

        scenarios = [s for _, s in codec.read_lines(args.file, Scenario, "scenario file")]
        write_scenarios(args.file, scenarios)
        read_scenarios(args.file)
        print(f"{args.file}: {len(scenarios)} scenarios sealed")
        return EXIT_OK
    return _freeze(args)


def _freeze(args: argparse.Namespace) -> int:
    from rolebench_eval.fileio import sha256_file
    from rolebench_eval.outputs.conversation import CONVERSATIONS, SUMMARY, read_conversations, read_summary
    from rolebench_eval.outputs.scenario import read_scenarios, write_scenarios

    from .scenarios import freeze

    run = Path(args.run)
    summary = read_summary(run / SUMMARY)
    if summary.mode != "live":
        raise InputError(run / SUMMARY, None, "mode", "is 'replay': only a live run's turns are frozen")
    if not summary.complete:
        raise InputError(run / SUMMARY, None, "complete", "is false: the live run stopped early; rerun its "
                                                          "command to finish it, then freeze it")
    if summary.scenarios["sha256"] != sha256_file(args.scenarios):
        raise InputError(args.scenarios, None, None, "is not the scenario file the live run read "
                                     f"(its sha256 is {summary.scenarios['sha256'][:12]}…)")
    frozen = freeze(read_scenarios(args.scenarios), read_conversations(run / CONVERSATIONS),
                    {"model": summary.model, "simulator": summary.simulator, "settings": summary.settings})
    if not frozen:
        raise NothingUsable("the live run holds none of the file's scenarios")
    write_scenarios(args.out, frozen)
    print(f"froze {len(frozen)} conversations into {args.out}")
    return EXIT_OK


def _options(args: argparse.Namespace):
    from rolebench_eval.llm.config import overrides_from_args

    from .converse import ConverseOptions

    if args.batch_export or args.batch_import:
        raise InputError("--batch-export" if args.batch_export else "--batch-import", None, None,
                         "converse cannot go through batch files: a turn's requests exist only once the turn "
                         "before is answered; use --batch (one Batch job per turn) or live requests")
    caps, prices = budget_from_args(args)
    model = ClientConfig.from_args(args)
    simulator = None
    if args.simulator_model:
        simulator = ClientConfig.layered({"model": args.simulator_model, "base_url": model.base_url,
                                          "api_key_env": model.api_key_env, **SIMULATOR_DEFAULTS},
                                         {k: v for k, v in overrides_from_args(args).items()
                                          if k not in ("model", "base_url", "api_key_env", "temperature", "seed")},
                                         {"base_url": args.simulator_base_url,
                                          "api_key_env": args.simulator_api_key_env})
    return ConverseOptions(model=model, mode=args.mode, turns=args.turns, simulator=simulator, cache=args.cache,
                           caps=caps, prices=prices, data_dir=args.data_dir, progress=not args.no_progress,
                           batch=settings_from_args(args))


def converse_main(args: argparse.Namespace) -> int:
    from .commands import run

    return run(args.scenarios, args.out, _options(args), dry=args.dry_run, out=sys.stdout)
