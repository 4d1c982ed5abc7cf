"""The two verbs' edges: read the inputs, call the pure parts, write the files, print what happened."""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path
from typing import TextIO

from rolebench_eval.errors import EXIT_OK, NothingUsable
from rolebench_eval.fileio import ensure_writable, sha256_file
from rolebench_eval.llm.batch import run_batch_jobs, settings_from_args
from rolebench_eval.llm.batchfile import export_requests, import_outputs
from rolebench_eval.llm.budget import Budget, budget_from_args, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import run_batch
from rolebench_eval.llm.config import ClientConfig
from rolebench_eval.outputs.conversation import MODES, ConversationSummary, write_run
from rolebench_eval.outputs.scenario import read_scenarios, write_scenarios

from . import simulator
from .characters import default_split, load_characters
from .converse import ConverseOptions, converse, dry_run
from .lmeval import write_layout
from .scenarios import build, plan, request
from .scores import summarize


def write(args: argparse.Namespace, kinds: list[str], roles: list[str] | None) -> int:
    """``scenarios write``: plan, ask the simulator (or price it), keep the scenarios that parse."""
    characters = load_characters(args.split or default_split(args.data_dir), args.data_dir, roles)
    plans = plan(characters, kinds, args.per_kind, args.turns)
    if not plans:
        raise NothingUsable("no scenario to write: the characters have no usable RoleBench item for own-story")
    config = ClientConfig.from_args(args, **simulator.DECODING)
    requests, extras = [request(p) for p in plans], [{"scenario": p.number} for p in plans]
    with ResponseCache(args.cache or default_cache_path()) as cache:
        if args.batch_export:
            n = export_requests(args.batch_export, requests, config, cache, key_extras=extras)
            print(f"wrote {n} requests to {args.batch_export} (the answers: --batch-import FILE)")
            return EXIT_OK
        batch = _ask(args, requests, extras, config, cache)
        if batch is None:
            return EXIT_OK
    written_by = {"model": config.model, "decoding": config.decoding(), "prompts_version": simulator.version()}
    result = build(plans, batch, characters, written_by)
    dropped = ", ".join(f"{why} {n}" for why, n in sorted(result.dropped.items())) or "none"
    print(f"scenarios: {len(result.scenarios)} of {len(plans)} written to {args.out}; dropped: {dropped}; "
          f"requests: {batch.n_sent} sent, {batch.n_cached} answered from the cache")
    if not result.scenarios:
        raise NothingUsable("no simulator answer gave a usable scenario: nothing written")
    write_scenarios(args.out, result.scenarios)
    if batch.stopped:
        print(batch.stop_message("every answer received is kept; the scenarios complete so far are written"))
    return batch.exit_code


def _ask(args: argparse.Namespace, requests, extras, config: ClientConfig, cache):
    """The simulator's answers (live requests, Batch jobs, or a batch output file read first); None: a dry run."""
    settings, (caps, prices) = settings_from_args(args), budget_from_args(args)
    prices = settings.prices(prices) if settings else prices
    if args.batch_import:
        counts = import_outputs(args.batch_import, requests, config, cache, key_extras=extras)
        print(f"{args.batch_import}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    if args.dry_run:
        print(f"{len(requests)} scenarios planned, one request each")
        print("\n".join(estimate(requests, config, cache, prices, key_extras=extras).lines()))
        return None
    ensure_writable(Path(args.out).parent, "the scenario file")
    send = run_batch if settings is None else partial(run_batch_jobs, settings=settings)
    return send(requests, config, cache, Budget(caps, prices), progress=not args.no_progress, desc="scenarios",
                key_extras=extras)


def _summary(opts: ConverseOptions, path: str | os.PathLike, outcome) -> ConversationSummary:
    settings = {"model": opts.model.decoding()}
    if opts.mode == "live":
        settings |= {"simulator": opts.simulator.decoding(), "simulator_prompts": simulator.version()}
    return ConversationSummary(
        model=opts.model.model, mode=opts.mode, scenarios={"file": Path(path).name, "sha256": sha256_file(path)},
        settings=settings, complete=all(c.complete for c in outcome.conversations) and outcome.stopped is None,
        requests=outcome.requests, **summarize(outcome.conversations),
        **({"simulator": opts.simulator.model} if opts.mode == "live" else {}))


def report(summary: ConversationSummary) -> str:
    """The terminal's table: every metric overall, by kind and by turn."""
    from tabulate import tabulate

    names = list(summary.overall.scores)
    rows = [["all", summary.overall.n_turns, *(summary.overall.scores.get(n) for n in names)]]
    rows += [[kind, c.n_turns, *(c.scores.get(n) for n in names)] for kind, c in summary.by_kind.items()]
    rows += [[f"turn {i}", c.n_turns, *(c.scores.get(n) for n in names)] for i, c in enumerate(summary.by_turn, 1)]
    return tabulate(rows, headers=["", "turns", *names], floatfmt=".4f", missingval="-")


def run(path: str, out_dir: str, opts: ConverseOptions, dry: bool, out: TextIO) -> int:
    """``converse``: talk every scenario through, score, write both files, print the table."""
    assert opts.mode in MODES
    scenarios = read_scenarios(path)
    if dry:
        planned, first = dry_run(scenarios, opts)
        print(f"{len(scenarios)} conversations, up to {planned} requests; the first turn's:", file=out)
        print("\n".join(first.lines()), file=out)
        return EXIT_OK
    ensure_writable(out_dir, "the conversations")
    outcome = converse(scenarios, opts, path)
    if not any(c.turns for c in outcome.conversations):
        if outcome.stopped is not None:
            print(outcome.stopped.stop_message(), file=out)
            return outcome.stopped.exit_code
        raise NothingUsable("no conversation got a single reply")
    summary = _summary(opts, path, outcome)
    write_layout(out_dir, outcome.conversations, summary, path, opts.model.base_url)
    write_run(out_dir, outcome.conversations, summary)
    print(report(summary), file=out)
    print(f"conversations and scores written to {out_dir}; requests: {outcome.requests}", file=out)
    if outcome.stopped is not None:
        print(outcome.stopped.stop_message("every answer received is kept; the turns so far are written"), file=out)
        return outcome.stopped.exit_code
    short = [c.scenario_id for c in outcome.conversations if not c.complete]
    if short:  # live: the simulator gave an empty turn
        print(f"{len(short)} conversation(s) ended before their last turn (the simulator said nothing), e.g. "
              f"{short[0]}: they are written as they are (complete: false)", file=out)
    return EXIT_OK
