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
from pathlib import Path
from typing import Sequence

from rolebench_eval.data import NO_ROLEGPT_ANSWER
from rolebench_eval.errors import InputError
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, run_batch
from rolebench_eval.metrics import rouge_l
from rolebench_eval.outputs import find_runs, latest_samples, read_records

from . import report
from .config import MODEL_ENV, Judge, JudgeConfigError, load_judge
from .protocols import Item, judge_item, requests_for

log = logging.getLogger(__name__)
ROLE_DESCRIPTION = "role name + the role prompt the candidate was given (doc['system_prompt'])"


@dataclass
class JudgeOptions:
    """Everything a judge run takes besides its inputs (the CLI flags).

    ``baseline`` is "rolegpt" (the dataset's RoleGPT answers in each doc) or the path of
    another model's lm-eval samples. Client fields left None come from the judge config;
    ``client`` holds any other :class:`~rolebench_eval.llm.config.ClientConfig` setting by
    name (the CLI puts every LLM flag given there).
    """

    judge: str
    baseline: str = "rolegpt"
    model: str | None = None
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
    dry_run: bool = False
    progress: bool = True


@dataclass
class Unit:
    """The items of one (model, task) and what was left out before judging."""

    model: str  # the run's name (rolebench_eval.outputs.run_identity)
    task: str
    path: Path  # its samples file
    baseline_name: str | None
    items: list[Item]
    skipped: list[Item]
    no_answer: list[Item]


@dataclass
class JudgeReport:
    """What a run produced: summaries (none in a dry run), the batch and the estimate."""

    units: list[Unit]
    estimate: Estimate | None = None
    batch: BatchResult | None = None
    summaries: list[dict] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def client_config(judge: Judge, opts: JudgeOptions) -> ClientConfig:
    """The endpoint, model and decoding settings: flags, then the judge config, then the environment."""
    model = opts.client.get("model") or opts.model or judge.model or os.environ.get(MODEL_ENV)
    if not model:
        raise JudgeConfigError(f"no judge model: pass --model, set 'model' in {judge.folder / 'config.yaml'} "
                               f"or set ${MODEL_ENV}")
    config = {"base_url": judge.base_url, "api_key_env": judge.api_key_env, **judge.request, **judge.decoding}
    options = {name: getattr(opts, name) for name in ("base_url", "concurrency", "timeout", "max_retries",
                                                      "backoff_base")}
    return ClientConfig.layered(config, options, opts.client, {"model": model})


def _item(doc_id: int, doc: dict, candidate: str, baseline: str | None) -> Item:
    return Item(doc_id=doc_id, role=doc["role"], question=doc["question"], lang=doc["lang"], kind=doc["kind"],
                references=tuple(doc["references"]), role_prompt=doc["system_prompt"], candidate=candidate,
                baseline=baseline)


def _is_no_answer(response: str) -> bool:
    """True for what the ``rolegpt`` replay logs when the dataset has no answer for an item."""
    return response == NO_ROLEGPT_ANSWER


def _samples_of(inputs: Sequence[str | os.PathLike]) -> list:
    """The newest samples file of each (run, task) under ``inputs``; unreadable inputs are errors."""
    runs, errors = find_runs(inputs)
    if errors:
        raise errors[0]
    found = latest_samples(runs)
    if not found:
        raise InputError(inputs[0] if len(inputs) == 1 else None, None, None,
                         "no lm-eval samples_<task>_<date>.jsonl files (was lm-eval run with --log_samples?)")
    return found


def baseline_answers(source: str | os.PathLike, task: str) -> tuple[str, dict[tuple[str, str], str]]:
    """Another model's answers for ``task``, keyed by raw (role, question), and its run name."""
    files = [(run, path) for run, t, path in _samples_of([source]) if t == task]
    if not files:
        raise InputError(source, None, None, f"the baseline has no samples for task {task}")
    if len(files) > 1:
        raise InputError(source, None, None, f"several runs have samples for task {task} "
                         f"({', '.join(str(p) for _, p in files)}); point at one model's folder or file")
    run, path = files[0]
    return run.name, {(r.doc["role"], r.doc["question"]): r.response for r in read_records(path)}


def build_units(inputs: Sequence[str | os.PathLike], judge: Judge, baseline: str,
                limit: int | None = None) -> list[Unit]:
    """Read every samples file and pair each candidate answer with its baseline answer."""
    units = []
    for run, task, path in _samples_of(inputs):
        samples = read_records(path, limit)
        name, answers = None, None
        if judge.protocol != "rubric":
            if baseline == "rolegpt":
                name = "rolegpt"
            else:
                name, answers = baseline_answers(baseline, task)
        unit = Unit(run.name, task, path, name, [], [], [])
        for s in samples:
            base = None if name is None else (
                s.doc.get("rolegpt") if answers is None else answers.get((s.doc["role"], s.doc["question"])))
            item = _item(s.doc_id, s.doc, s.response, base)
            if _is_no_answer(s.response):
                unit.no_answer.append(item)
            elif name is not None and base is None:
                unit.skipped.append(item)
            else:
                unit.items.append(item)
        for what, left_out in (("baseline (" + str(name) + ")", unit.skipped), ("candidate", unit.no_answer)):
            if left_out:
                log.warning("%s: %d of %d items have no %s answer; they are skipped, not judged",
                            path, len(left_out), len(samples), what)
        units.append(unit)
    return units


def _records(judge: Judge, model: str, unit: Unit, plan: list, answers) -> list[dict]:
    records = []
    for item, requests in zip(unit.items, plan):
        got = [next(answers) for _ in requests]
        if any(r is None for r in got):
            records.append(report.annotation(item, "pending", model, prompt_hash=report.prompt_hash(requests)))
            continue
        judgment = judge_item(judge, item, [r["text"] for r in got])
        rouge = None
        if judgment.value is not None:
            refs, lang = list(item.references), item.lang
            rouge = (rouge_l(item.candidate, refs, lang),
                     rouge_l(item.baseline, refs, lang) if item.baseline is not None else None)
        records.append(report.judged_annotation(item, judgment, got, requests, model, rouge))
    records += [report.annotation(i, "skipped_no_baseline", model) for i in unit.skipped]
    records += [report.annotation(i, "skipped_no_answer", model) for i in unit.no_answer]
    return sorted(records, key=lambda r: r["doc_id"])


def _meta(judge: Judge, config: ClientConfig, unit: Unit, stopped: str | None) -> dict:
    return {"model": unit.model, "task": unit.task, "judge": judge.name,
            "judge_model": config.model, "baseline": unit.baseline_name,
            "judge_config_hash": judge.config_hash,
            "judge_decoding": {"temperature": config.temperature, "seed": config.seed,
                               "max_tokens": config.max_tokens},
            "role_description": ROLE_DESCRIPTION, "samples_file": str(unit.path), "stopped": stopped}


def judge_outputs(inputs: Sequence[str | os.PathLike], opts: JudgeOptions) -> JudgeReport:
    """Judge lm-eval outputs; writes annotations and summaries unless ``opts.dry_run``."""
    judge = load_judge(opts.judge)
    config = client_config(judge, opts)
    prices = opts.prices or judge.prices
    units = build_units(inputs, judge, opts.baseline, opts.limit)
    plans = [[requests_for(judge, item) for item in unit.items] for unit in units]
    flat = [messages for plan in plans for requests in plan for messages in requests]
    result = JudgeReport(units)
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        if opts.dry_run:
            result.estimate = estimate(flat, config, cache, prices)
            return result
        result.batch = run_batch(flat, config, cache, Budget(opts.caps, prices), progress=opts.progress,
                                 desc=f"judge {judge.name}")
    answers = iter(result.batch.responses)
    for unit, plan in zip(units, plans):
        records = _records(judge, config.model, unit, plan, answers)
        summary = report.summarize(records, _meta(judge, config, unit, result.batch.stopped),
                                   judge.protocol, judge.rubric)
        folder = report.output_dir(opts.out, unit.model, unit.task, judge.name)
        report.write_outputs(folder, records, summary)
        result.summaries.append(summary)
        result.folders.append(folder)
    return result
