"""``rolebench-eval judge check``: one judge model's health on one character set (library API).

Example:
    >>> from .check import CheckOptions, check_judge  # doctest: +SKIP
    >>> report = check_judge(CheckOptions(model="gpt-4o", split="specific_zh", data_dir="RoleBench"))  # doctest: +SKIP
    >>> report.health.identification.accuracy, report.health.identification.roles_at_or_below_chance  # doctest: +SKIP

The identification questions and the labelled pairs go to the judge through the package's LLM
client (:func:`rolebench_eval.llm.client.run_batch`: cached, one budget for both, priced by a dry
run); the measured biases are read from judge summaries. The result (:mod:`rolebench_eval.outputs.health`)
is written atomically to ``<out>/health/<judge model>/<set>/health.json``, with
``identification.jsonl`` beside it: every question, the names shown and the judge's words.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rolebench_eval import __version__
from rolebench_eval.errors import CouldNotWrite, InputError, NothingUsable
from rolebench_eval.fileio import ensure_writable, write_jsonl
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, run_batch
from rolebench_eval.outputs import health as schema
from rolebench_eval.outputs import sanitize_model_name
from rolebench_eval.outputs.judge import decode_summary
from rolebench_eval.source import load_split

from . import agreement, health
from .config import Judge, load_judge
from .protocols import Item, Job
from .protocols.base import judge_job
from .protocols.identify import LOWEST, Choice
from .run import JudgeOptions, client_config

log = logging.getLogger(__name__)


@dataclass
class CheckOptions:
    """What to check, with which judge model; client fields left out come from the judge folders."""

    model: str | None = None
    client: dict = field(default_factory=dict)  # any ClientConfig setting by name (the CLI's LLM flags)
    split: str | None = None  # (a) identification on this catalogue split
    data_dir: str | os.PathLike | None = None
    answers: str = "reference"  # or "rolegpt"
    k: int | None = None  # these three: else the identify folder's settings
    items_per_role: int | None = None
    choice_seed: int | None = None
    identify: str = "identify"  # the judge folder of the identification prompts
    labels: str | os.PathLike | None = None  # (b) a human-labels file
    judge: str = "pairwise"  # the judge (pairwise or rank) whose verdicts (b) compares with people's
    judgments: Sequence[str | os.PathLike] = ()  # (c) judge output folders of this model
    out: str | os.PathLike = "judgments"
    cache: str | os.PathLike | None = None
    caps: Caps = field(default_factory=Caps)
    prices: Prices | None = None
    dry_run: bool = False
    progress: bool = True


@dataclass
class Part:
    """The requests of one check: its judge folder, client, jobs and each job's requests."""

    name: str
    judge: Judge
    config: ClientConfig
    jobs: list[Job]
    plan: list[list] = field(default_factory=list)


@dataclass
class CheckReport:
    """What a check produced: the summary and where (none in a dry run), the estimates, the batches."""

    health: schema.JudgeHealth | None = None
    folder: Path | None = None
    estimates: list[tuple[str, Estimate]] = field(default_factory=list)
    results: list[BatchResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return next((r.exit_code for r in self.results if r.exit_code), 0)


def _settings(judge: Judge, opts: CheckOptions) -> dict:
    """The identify folder's settings with the options given over them (each checked as the flag would be)."""
    given = {key: getattr(opts, key) for key in LOWEST if getattr(opts, key) is not None}
    for key, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < LOWEST[key]:
            raise InputError(f"--{key.replace('_', '-')}", None, None,
                             f"expected a whole number >= {LOWEST[key]}, got {value!r}")
    if opts.answers not in ("reference", "rolegpt"):
        raise InputError("--answers", None, None, f"expected reference or rolegpt, got {opts.answers!r}")
    return {**judge.settings, **given}


def identification_part(opts: CheckOptions, judge: Judge, config: ClientConfig) -> tuple[Part, dict]:
    """The identification questions of ``opts.split`` and how they were asked (the summary's fields)."""
    settings = _settings(judge, opts)
    data = load_split(opts.split, opts.data_dir)
    if opts.answers == "rolegpt" and data.baseline is None:
        raise InputError("--answers", None, None, f"split {opts.split} has no RoleGPT answers "
                         "(rolegpt_baseline.jsonl); use --answers reference")
    found = health.answers_by_role(data.items, opts.answers, data.baseline)
    if len(found) < 2:
        raise InputError("--split", None, None, f"identification needs two roles or more with {opts.answers} "
                         f"answers; {opts.split} has {len(found)}")
    k = min(settings["k"], len(found))
    if k < settings["k"]:
        log.warning("%s has %d roles: showing all %d names with each answer (k = %d, not %d)", opts.split,
                    len(found), k, k, settings["k"])
    seed = settings["choice_seed"]
    jobs = []
    for role, entries in sorted(health.choose(found, settings["items_per_role"], seed).items()):
        for index, question, occurrence, answer in entries:
            item = Item(doc_id=index, role=role, question=question, lang=data.split.lang, kind=data.split.kind,
                        references=(), role_prompt="", candidate=answer, baseline=None)
            jobs.append(Choice([(None, item)], names=health.names_shown(role, question, occurrence, list(found),
                                                                        k, seed)))
    asked = {"split": opts.split, "answers": opts.answers, "k": k, "choice_seed": seed,
             "items_per_role": settings["items_per_role"],
             "data": {key: str(value) for key, value in data.provenance.items()}}
    return Part("identification", judge, config, jobs), asked


def agreement_part(opts: CheckOptions, model: str) -> tuple[Part, list[tuple[int, schema.HumanLabel]]]:
    """The labelled answers as the ``--judge`` (pairwise or rank) judges runs, and the labels."""
    judge = load_judge(opts.judge)
    if judge.protocol not in ("pairwise", "rank"):
        raise InputError("--judge", None, None, f"agreement with people compares pairwise or rank verdicts; "
                         f"{judge.name} is a {judge.protocol} judge")
    labels = schema.read_labels(opts.labels)
    config = client_config(judge, JudgeOptions(judge=opts.judge, client={**opts.client, "model": model}))
    return Part("agreement", judge, config, agreement.jobs(judge, labels, Path(opts.labels))), labels


def _answers(part: Part, result: BatchResult) -> list:
    """Per job: its judgments, or None when an answer is missing (budget, failed request)."""
    got, out = iter(result.responses), []
    for job, requests in zip(part.jobs, part.plan):
        responses = [next(got) for _ in requests]
        out.append(None if any(r is None for r in responses) else (judge_job(part.judge, job, responses), responses))
    return out


def _identification(part: Part, answered: list, asked: dict) -> tuple[schema.Identification, list[dict]]:
    """(a), and one line per question for ``identification.jsonl``."""
    outcomes: dict[str, list] = {}
    rows, pending = [], 0
    for job, done in zip(part.jobs, answered):
        item = job.item
        if done is None:
            pending += 1
            continue
        (judgment,), responses = done
        outcomes.setdefault(item.role, []).append(judgment.score)
        value = judgment.value or {}
        rows.append({"doc_id": item.doc_id, "role": item.role, "question": item.question, "answer": item.candidate,
                     "names": list(job.names), "named": value.get("named"), "correct": value.get("correct"),
                     "parse_error": judgment.error, "judge_text": responses[0].get("text") or ""})
    return health.identification(outcomes, pending, asked), rows


def measured_summaries(folders: Sequence[str | os.PathLike], model: str) -> list:
    """(path, summary) of every judge summary under ``folders`` whose judge model is ``model``."""
    from rolebench_eval.outputs import codec

    found = []
    for folder in folders:
        if not Path(folder).exists():
            raise InputError(folder, None, None, "no such judge output folder")
        for path in sorted(Path(folder).rglob("summary.json")):
            summary = decode_summary(codec.read_bytes(path, "judge summary"), path)
            if summary.judge_model == model:
                found.append((path, summary))
    return found


def set_name(opts: CheckOptions) -> str:
    """The character set's name in the output path: the split (a generated folder's name before a
    custom split), else the labels file's name, else ``judgments``."""
    if opts.split:
        custom = opts.split.startswith("custom_") and opts.data_dir
        return f"{Path(opts.data_dir).name}-{opts.split}" if custom else opts.split
    return Path(opts.labels).stem if opts.labels else "judgments"


def _plan(opts: CheckOptions) -> tuple[ClientConfig, list[Part], dict, list]:
    identify = load_judge(opts.identify)
    if identify.protocol != "identify":
        raise InputError("--identify-judge", None, None, f"{identify.name} is a {identify.protocol} judge, "
                         "not an identification one (protocol: identify)")
    config = client_config(identify, JudgeOptions(judge=opts.identify, model=opts.model, client=opts.client))
    parts, asked, labels = [], {}, []
    if opts.split:
        part, asked = identification_part(opts, identify, config)
        parts.append(part)
    if opts.labels:
        part, labels = agreement_part(opts, config.model)
        parts.append(part)
    for part in parts:
        part.plan = [part.judge.impl.requests(part.judge, job) for job in part.jobs]
    return config, parts, asked, labels


def check_judge(opts: CheckOptions) -> CheckReport:
    """Run the checks ``opts`` asks for (at least one); writes the summary unless ``opts.dry_run``."""
    if not (opts.split or opts.labels or opts.judgments):
        raise InputError("--split", None, None, "nothing to check: give --split (identification), --labels "
                         "(agreement with people) and/or --judgments (the biases judge runs measured)")
    config, parts, asked, labels = _plan(opts)
    if not opts.dry_run:  # after the inputs are read (bad input leaves nothing behind), before anything is paid
        ensure_writable(opts.out, "the judge health summary")
    biases = health.biases(measured_summaries(opts.judgments, config.model)) if opts.judgments else None
    prices = opts.prices or next((p.judge.prices for p in parts if p.judge.prices.known), None)
    report, budget = CheckReport(), Budget(opts.caps, prices)
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        for part in parts:
            flat = [messages for requests in part.plan for messages in requests]
            if opts.dry_run:
                report.estimates.append((part.name, estimate(flat, part.config, cache, prices)))
            else:
                report.results.append(run_batch(flat, part.config, cache, budget, progress=opts.progress,
                                                desc=f"judge check: {part.name}"))
    if opts.dry_run:
        return report
    made = {"judge_model": config.model, "endpoint": config.endpoint_id(), "biases": biases,
            "decoding": config.decoding(), "package_version": __version__,
            "complete": all(r.stopped is None for r in report.results),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows = []
    for part, result in zip(parts, report.results):
        answered = _answers(part, result)
        if part.name == "identification":
            made["identification"], rows = _identification(part, answered, asked)
        else:
            made["agreement"] = agreement.summary(part.judge, answered, labels, str(opts.labels))
    report.health = schema.JudgeHealth(**made)
    report.folder = _write(opts, config.model, report.health, rows)
    _check_usable(report.health)
    return report


def _write(opts: CheckOptions, model: str, summary: schema.JudgeHealth, rows: list[dict]) -> Path:
    folder = Path(opts.out) / "health" / sanitize_model_name(model) / set_name(opts)
    try:
        if summary.identification is not None:
            write_jsonl(folder / "identification.jsonl", rows)
        schema.write(folder / schema.HEALTH_FILE, summary)
    except OSError as err:  # after paying: say where the answers are
        raise CouldNotWrite.from_os_error(err, "the judge health summary", "every answer received is cached in "
                                          f"{opts.cache or default_cache_path()}: rerun with another --out, at no "
                                          "cost", path=folder) from None
    return folder


def _check_usable(summary: schema.JudgeHealth) -> None:
    """:class:`NothingUsable` (exit 5) when the judge answered but no reply of any check parsed."""
    checks = [c for c in (summary.identification, summary.agreement) if c is not None]
    answered = sum(c.n_parsed + c.n_parse_failures for c in checks)
    if answered and not any(c.n_parsed for c in checks):
        where = "judge_text in identification.jsonl" if summary.identification else "its replies (the cache)"
        raise NothingUsable(f"no reply of the judge parsed ({answered} answered); the judge may be too small to "
                            f"follow the reply format: look at {where}")
