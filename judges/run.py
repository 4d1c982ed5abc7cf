"""The judge pass: lm-eval samples in, annotations and summaries out (library API).

Example:
    >>> from .run import JudgeOptions, judge_outputs   # doctest: +SKIP
    >>> report = judge_outputs(["out/"], JudgeOptions(judge="pairwise", model="gpt-4o"))  # doctest: +SKIP
    >>> report.summaries[0]["win_rate"], report.summaries[0]["ci95"]  # doctest: +SKIP

All judge requests of all inputs go out as one batch (one budget, one progress bar)
through :func:`rolebench_eval.llm.client.run_batch`, which caches every answer; the
files are written afterwards from the cache, so a rerun or a resumed run sends only
the requests still missing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import msgspec

from rolebench_eval.errors import CouldNotWrite, InputError, NothingUsable
from rolebench_eval.fileio import ensure_writable
from rolebench_eval.llm.batch import BatchSettings, run_batch_jobs
from rolebench_eval.llm.batchfile import export_requests, import_outputs
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, run_batch
from rolebench_eval.metrics import rouge_l
from rolebench_eval.outputs import judge as schema

from . import ensemble, report
from .config import MODEL_ENV, Judge, JudgeConfigError, load_judge
from .inputs import build_units, refuse_identical
from .protocols import Item, Job, Unit
from .protocols.base import judge_job

log = logging.getLogger(__name__)
ROLE_DESCRIPTION = ("the role's description and catchphrases (doc['description']); the role name alone when "
                    "the data has none")


@dataclass
class JudgeOptions:
    """Everything a judge run takes besides its inputs (the CLI flags).

    ``baseline`` is "rolegpt" (the dataset's RoleGPT answers in each doc) or the path of
    another model's lm-eval samples. Client fields left None come from the judge config;
    ``max_systems`` (rank) likewise. ``client`` holds any other
    :class:`~rolebench_eval.llm.config.ClientConfig` setting by name (the CLI puts every LLM
    flag given there).
    """

    judge: str
    baseline: str = "rolegpt"
    model: str | Sequence[str] | None = None  # several: an ensemble, each model a member
    base_url: str | None = None
    out: str | os.PathLike = "judgments"
    cache: str | os.PathLike | None = None
    caps: Caps = field(default_factory=Caps)
    prices: Prices | None = None
    concurrency: int | str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    backoff_base: float | None = None
    client: dict = field(default_factory=dict)  # any ClientConfig setting, over all of the above
    limit: int | None = None
    max_systems: int | None = None
    across_variants: bool = False  # rank: the zero-shot, _fewshot and _dialogue runs in one prompt
    common_items: bool = False  # rank: only the items every run answered
    allow_identical: bool = False  # judge a run whose answers are the baseline's own
    dry_run: bool = False
    progress: bool = True
    batch: BatchSettings | None = None  # send as OpenAI Batch jobs (priced at its discount)
    batch_export: str | os.PathLike | None = None  # write the uncached requests as a batch input file, send nothing
    batch_import: str | os.PathLike | None = None  # read a batch output file into the cache first

    def __post_init__(self) -> None:
        """The judge's own numbers (the client checks its settings): a bad one is one line, exit status 2."""
        for name, low in (("limit", 1), ("max_systems", 2)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise InputError(f"--{name.replace('_', '-')}", None, None,
                                 f"expected a whole number >= {low}, got {value!r}")


@dataclass
class JudgeReport:
    """What a run produced: summaries (none in a dry run), the batch and the estimate."""

    units: list[Unit]
    estimate: Estimate | None = None
    batch: BatchResult | None = None  # the first member's that stopped, else the last member's
    batches: list[BatchResult] = field(default_factory=list)  # one per judge model
    summaries: list[dict] = field(default_factory=list)  # each as written to its summary.json
    folders: list[Path] = field(default_factory=list)
    first_failure: tuple[Path, dict] | None = None  # (folder, annotation) of the first parse failure
    imported: dict | None = None  # --batch-import: lines by outcome
    exported: int | None = None  # --batch-export: requests written


def judge_models(judge: Judge, opts: JudgeOptions) -> list[str]:
    """The judge model(s): flags, then the judge config, then the environment; several make an ensemble."""
    given = opts.client.get("model") or opts.model or judge.model or os.environ.get(MODEL_ENV)
    models = [given] if isinstance(given, str) else list(given or [])
    if not models:
        raise JudgeConfigError("--model", None, None, f"no judge model: pass --model, set 'model' in "
                               f"{judge.folder / 'config.yaml'} or set ${MODEL_ENV}")
    bad = next((m for m in models if not isinstance(m, str) or not m.strip()), None)
    if bad is not None or len(set(models)) < len(models):
        problem = f"not a model name: {bad!r}" if bad is not None else f"a model named twice: {models}"
        raise JudgeConfigError("--model", None, None, problem)
    return models


def client_config(judge: Judge, opts: JudgeOptions, model: str | None = None) -> ClientConfig:
    """The endpoint, model and decoding settings: flags, then the judge config, then the environment
    (``model``: one member of an ensemble, else the one judge model)."""
    model = model or judge_models(judge, opts)[0]
    config = {"base_url": judge.base_url, "api_key_env": judge.api_key_env, **judge.request, **judge.decoding}
    options = {name: getattr(opts, name) for name in ("base_url", "concurrency", "timeout", "max_retries",
                                                      "backoff_base")}
    return ClientConfig.layered(config, options, {**opts.client, "model": None}, {"model": model})


def plan_jobs(units: list[Unit], judge: Judge, max_systems: int | None = None,
              common_items: bool = False) -> list[Job]:
    """The protocol's jobs, task by task (the joint rank puts every run of a task, and across
    variants every variant of it, in one prompt)."""
    by_task: dict[str, list[Unit]] = {}
    for unit in units:
        by_task.setdefault(unit.group or unit.task, []).append(unit)
    return [job for task_units in by_task.values()
            for job in judge.impl.jobs(task_units, judge, {"max_systems": max_systems,
                                                           "common_items": common_items})]


def configured_decoding(config: ClientConfig) -> dict:
    """The decoding settings the client config asks for, as first sent (before any adaptation)."""
    return config.decoding()


def _rouge(item: Item) -> tuple[float, float | None] | None:
    """ROUGE-L recall of the candidate and the baseline against the item's references (None for a
    conversation, which has none)."""
    if item.turns:
        return None
    refs, lang = list(item.references), item.lang
    return rouge_l(item.candidate, refs, lang), rouge_l(item.baseline, refs, lang) if item.baseline else None


def _records(judge: Judge, config: ClientConfig, units: list[Unit], jobs: list[Job], plan: list,
             answers, decoding: dict) -> dict[int, list[dict]]:
    """Annotation lines by unit (its index in ``units``), sorted by doc_id."""
    index = {id(unit): n for n, unit in enumerate(units)}
    records: dict[int, list[dict]] = {n: [] for n in range(len(units))}
    for job, requests in zip(jobs, plan):
        got = [next(answers) for _ in requests]
        if any(r is None for r in got):
            for unit, item in job.members:
                records[index[id(unit)]].append(report.annotation(item, "pending", config.model,
                                                                  prompt_hash=report.prompt_hash(requests)))
            continue
        for (unit, item), judgment in zip(job.members, judge_job(judge, job, got)):
            rouge = _rouge(item) if judgment.value is not None else None
            records[index[id(unit)]].append(
                report.judged_annotation(item, judgment, got, requests, config.model, decoding, rouge))
    for n, unit in enumerate(units):
        records[n] += [report.annotation(i, "skipped_no_baseline", config.model) for i in unit.skipped]
        records[n] += [report.annotation(i, "skipped_no_answer", config.model) for i in unit.no_answer]
        records[n] += [report.annotation(i, "skipped_not_common", config.model) for i in unit.not_common]
        records[n].sort(key=lambda r: r["doc_id"])
    return records


def _meta(judge: Judge, config: ClientConfig, unit: Unit, stopped: str | None) -> dict:
    return {"model": unit.model, "system": unit.system, "task": unit.task, "judge": judge.name,
            "judge_model": config.model, "baseline": unit.baseline_name,
            "judge_config_hash": judge.config_hash,
            "role_description": ROLE_DESCRIPTION, "samples_file": str(unit.path), "stopped": stopped}


def _check_rank_options(judge: Judge, opts: JudgeOptions) -> None:
    """The options that shape the joint ranking need the rank protocol."""
    for flag, given, what in (("--across-variants", opts.across_variants, "ranks the variants of a task together"),
                              ("--common-items", opts.common_items, "ranks only the items every run answered")):
        if given and judge.protocol != "rank":
            raise InputError(flag, None, None, f"{what}: it needs --judge rank (or a judge folder of protocol "
                             f"rank), not {judge.name} ({judge.protocol})")


def judge_outputs(inputs: Sequence[str | os.PathLike], opts: JudgeOptions) -> JudgeReport:
    """Judge lm-eval outputs; writes annotations and summaries unless ``opts.dry_run``.

    Several judge models (``opts.model`` a list, or the judge config's) make an ensemble: each
    member's requests are sent and cached on their own (one budget for all), and one summary per
    (run, task) reports the ensemble's verdicts, each member's headline and their agreement.
    """
    judge = load_judge(opts.judge)
    configs = [client_config(judge, opts, model) for model in judge_models(judge, opts)]
    prices = opts.prices or judge.prices
    _check_rank_options(judge, opts)
    if opts.batch is not None:
        prices = opts.batch.prices(prices)
    units = build_units(inputs, judge, opts.baseline, opts.limit, opts.across_variants)
    if not opts.allow_identical:
        refuse_identical(units)
    jobs = plan_jobs(units, judge, opts.max_systems, opts.common_items)
    plan = [judge.impl.requests(judge, job) for job in jobs]
    flat = [messages for requests in plan for messages in requests]
    if not opts.dry_run and opts.batch_export is None:  # inputs read (bad input leaves nothing), nothing paid yet
        ensure_writable(opts.out, "the judge outputs")
    result = JudgeReport(units)
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        if (opts.batch_import or opts.batch_export) and len(configs) > 1:
            raise InputError("--batch-import" if opts.batch_import else "--batch-export", None, None,
                             "a batch file holds one judge model's requests: export or import one --model at a "
                             "time (the answers land in the same cache), then run the ensemble")
        if opts.batch_import:
            result.imported = import_outputs(opts.batch_import, flat, configs[0], cache)
        if opts.batch_export:
            result.exported = export_requests(opts.batch_export, flat, configs[0], cache)
            return result
        if opts.dry_run:
            result.estimate = _estimate_all(flat, configs, cache, prices)
            return result
        result.batches = _send_all(flat, configs, cache, Budget(opts.caps, prices), opts, judge.name)
    result.batch = next((b for b in result.batches if b.stopped), result.batches[-1])
    members = [_records(judge, config, units, jobs, plan, iter(batch.responses), configured_decoding(config))
               for config, batch in zip(configs, result.batches)]
    for n, unit in enumerate(units):
        _write_unit(result, judge, configs, unit, [by_unit[n] for by_unit in members], opts)
    return result


def _estimate_all(flat: list, configs: list[ClientConfig], cache: ResponseCache, prices: Prices) -> Estimate:
    """The dry-run estimate of every member's requests together."""
    parts = [estimate(flat, config, cache, prices) for config in configs]
    costs = [p.max_cost for p in parts]
    return Estimate(sum(p.n_requests for p in parts), sum(p.n_cached for p in parts),
                    sum(p.prompt_tokens for p in parts), sum(p.max_completion_tokens for p in parts),
                    None if None in costs else sum(costs))


def _send_all(flat: list, configs: list[ClientConfig], cache: ResponseCache, budget: Budget, opts: JudgeOptions,
              name: str) -> list[BatchResult]:
    """Each member's answers, one member after the other, within one budget (with ``--batch``: one
    set of jobs per member)."""
    send = run_batch if opts.batch is None else partial(run_batch_jobs, settings=opts.batch)
    return [send(flat, config, cache, budget, progress=opts.progress,
                 desc=f"judge {name}" + (f" ({config.model})" if len(configs) > 1 else ""))
            for config in configs]


def _unit_outputs(judge: Judge, configs: list[ClientConfig], unit: Unit, members: list[list[dict]],
                  stopped: str | None) -> tuple[list[dict], schema.JudgeSummary, str]:
    """The annotation lines, summary and judge name of one unit: the one judge's, or the ensemble's."""
    meta = _meta(judge, configs[0], unit, stopped)
    if len(configs) == 1:
        return members[0], report.summarize(members[0], meta, judge, unit.systems, configured_decoding(configs[0]),
                                            unit.k_range), judge.name
    return ensemble.outputs(judge, {c.model: configured_decoding(c) for c in configs}, members, meta, unit.systems,
                            unit.k_range)


def _write_unit(result: JudgeReport, judge: Judge, configs: list[ClientConfig], unit: Unit,
                members: list[list[dict]], opts: JudgeOptions) -> None:
    """Write one unit's annotations and summary, and note them in ``result``."""
    records, summary, name = _unit_outputs(judge, configs, unit, members, result.batch.stopped)
    folder = report.output_dir(opts.out, unit.model, unit.task, name)
    try:
        report.write_outputs(folder, records, summary)
    except OSError as err:  # after paying: say where the answers are
        raise CouldNotWrite.from_os_error(err, "the judge outputs", f"every answer received is cached in "
                                          f"{opts.cache or default_cache_path()}: rerun with another --out, "
                                          "at no cost", path=folder) from None
    summary = msgspec.to_builtins(summary)
    result.summaries.append(summary)
    result.folders.append(folder)
    failed = report.first_failure(records)
    if failed and result.first_failure is None:
        result.first_failure = (folder, failed)
    if summary["n_judged"] and not summary["n_parsed"]:
        log.warning("%s / %s: none of the %d judged items parsed (first: %s)", unit.model, unit.task,
                    summary["n_judged"], failed["parse_error"])


def check_usable(result: JudgeReport) -> None:
    """Raise :class:`NothingUsable` (exit status 5) when nothing was judged and nothing is pending
    (every item skipped), or when items were judged but no verdict parsed."""
    judged = sum(s["n_judged"] for s in result.summaries)
    if not judged and not any(s["n_pending"] for s in result.summaries):
        _nothing_judged(result.summaries)
    if not judged or any(s["n_parsed"] for s in result.summaries) or result.first_failure is None:
        return
    folder, first = result.first_failure
    where = folder / "annotations.jsonl"
    if sum(s["n_refusals"] for s in result.summaries) == judged:
        hint = f"the judge model refused every item (its words are in judge_refusals of {where})"
    else:
        hint = ("the judge model may be too small to follow the reply format, or the endpoint may ignore it "
                f"(a base model without a chat template, too low a token limit): look at judge_texts in {where}")
    raise NothingUsable(f"no verdict parsed: all {judged} judged items are parse failures (the first, doc "
                        f"{first['doc_id']}: {first['parse_error']}); {hint}")


def _nothing_judged(summaries: list[dict]) -> None:
    """Every item was skipped before judging: say how many for which reason, and what to check."""
    total = sum(s["n_total"] for s in summaries)
    no_base = sum(s["n_skipped_no_baseline"] for s in summaries)
    no_answer = sum(s["n_skipped_no_answer"] for s in summaries)
    not_common = sum(s["n_skipped_not_common"] for s in summaries)
    baselines = sorted({str(s["baseline"]) for s in summaries if s["n_skipped_no_baseline"]})
    hint = []
    if no_base:
        hint.append(f"{no_base} have no baseline answer ({', '.join(baselines)}: a split without a RoleGPT "
                    "baseline file, or a --baseline run lacking these items)")
    if no_answer:
        hint.append(f"{no_answer} have no candidate answer (the run logged none)")
    if not_common:
        hint.append(f"{not_common} were not answered by every run (--common-items)")
    raise NothingUsable(f"nothing was judged: of {total} items, " + ("; ".join(hint) or "none to judge")
                        + "; the summaries were written with no win rate")
