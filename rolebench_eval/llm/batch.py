"""The requests of :func:`~rolebench_eval.llm.client.run_batch`, sent as OpenAI Batch jobs (half the price).

Only uncached requests are sent, as JSONL files (``custom_id`` = the cache key, :mod:`.batchfile`)
split at the per-file limits, each started with ``batches.create``. Each job is recorded beside the
cache (:mod:`rolebench_eval.outputs.batch`) as soon as it exists, so a killed or repeated run polls
the same jobs and never submits a request twice; answers land in the same cache under the same keys.
A job that ends is read into the cache whatever its status (an expired or cancelled job keeps what it
completed); its error-file lines are resubmitted up to ``max_resubmits`` times, and what is still
unanswered is left for a rerun.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from rolebench_eval.flags import number_arg
from rolebench_eval.outputs import codec
from rolebench_eval.outputs.batch import BatchJob, BatchJobs, BatchOutputLine, jobs_path, read_jobs, write_jobs

from .batchfile import URL, answer_of, request_line, split_files
from .budget import Budget, Prices, estimate_tokens
from .cache import ResponseCache
from .client import BatchResult, answer_all, session
from .config import ClientConfig, Messages
from .request import ChatClient, EndpointError, failure_kind

log = logging.getLogger(__name__)
#: The Batch API's limits per input file (``batches.create``: "up to 50,000 requests ... 200 MB").
MAX_REQUESTS, MAX_BYTES = 50_000, 200 * 1024 * 1024
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchSettings:
    """``poll_interval`` seconds between looks at the jobs; ``max_resubmits`` new jobs for error-file
    lines; ``discount`` the batch price as a share of the synchronous one; the per-file limits."""

    poll_interval: float = 30.0
    max_resubmits: int = 2
    discount: float = 0.5
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES

    def prices(self, prices: Prices | None) -> Prices | None:
        """``prices`` at the batch discount (what ``--dry-run`` and ``--max-cost`` count)."""
        if prices is None or not prices.known:
            return prices
        return Prices(prices.input_per_million * self.discount, prices.output_per_million * self.discount)


class _Jobs:
    """One ``--batch`` run: submit what no recorded job carries, poll every job until it ends, collect."""

    def __init__(self, client: ChatClient, cache: ResponseCache, budget: Budget, settings: BatchSettings,
                 todo: dict, bar, done: int):
        config = client.config
        self.client, self.config, self.cache, self.budget = client, config, cache, budget
        self.settings, self.todo, self.bar, self.done0 = settings, todo, bar, done
        self.path = None if cache.path == ":memory:" else jobs_path(cache.path)
        self.record, self.endpoint = read_jobs(self.path) if self.path else BatchJobs(), config.endpoint_id()
        self.reserved: dict[str, tuple] = {}
        self.errors: dict[str, str] = {}
        self.counts: dict[str, tuple] = {}  # job id -> (status, completed, failed, total)
        self.n_sent = self.n_resubmitted = 0
        self.stopped = self.stop_kind = None

    def _save(self) -> None:
        if self.path:
            write_jobs(self.path, self.record)

    def _call(self, fn, *args, **kwargs):
        """An SDK call; a wrong key, URL or model is an :class:`EndpointError` (exit 2)."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified like the synchronous client's failures
            fatal = self.client.fatal(exc)
            if fatal is not None or failure_kind(exc) == "rejected":
                raise fatal or EndpointError(self.client.endpoint, None, None, self.client.describe(exc)) from None
            raise

    def pending(self) -> list[BatchJob]:
        return [j for j in self.record.jobs if j.endpoint == self.endpoint and not j.collected]

    def submit(self, keys: list[str], attempt: int) -> None:
        """Reserve the budget for each request, then upload and start one job per file."""
        chosen = []
        for key in keys:
            reservation = self.budget.reserve(estimate_tokens(self.todo[key]), self.config.max_tokens)
            if reservation is None:
                self.stopped, self.stop_kind = f"budget: {self.budget.exhausted}", "budget"
                break
            self.reserved[key] = reservation
            chosen.append((key, request_line(key, self.todo[key], self.config)))
        sdk = self.client.sdk
        for part in split_files(chosen, self.settings.max_requests, self.settings.max_bytes):
            data = b"".join(line for _, line in part)
            uploaded = self._call(sdk.files.create, file=("rolebench_batch.jsonl", data), purpose="batch")
            batch = self._call(sdk.batches.create, input_file_id=uploaded.id, endpoint=URL, completion_window="24h",
                               metadata={"tool": "rolebench-eval"})
            self.record.jobs.append(BatchJob(id=batch.id, endpoint=self.endpoint, model=self.config.model,
                                             keys=[k for k, _ in part], attempt=attempt, status=batch.status))
            self._save()  # at once: a kill from here on resumes this job, never submits it again
            self.n_sent += len(part)
            log.info("submitted batch %s: %d requests (attempt %d)", batch.id, len(part), attempt)

    def poll(self) -> None:
        """Look at every unfinished job until all have ended; collect each as it ends."""
        while True:
            for job in self.pending():
                try:
                    batch = self._call(self.client.sdk.batches.retrieve, job.id)
                except EndpointError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a transient failure: look again next round
                    log.warning("could not look at batch %s (%s); trying again", job.id, self.client.describe(exc))
                    continue
                job.status, counts = batch.status, batch.request_counts
                done = (counts.completed, counts.failed, counts.total) if counts else (0, 0, len(job.keys))
                self.counts[job.id] = (batch.status, *done)
                if batch.status in TERMINAL:
                    self.collect(job, batch)
                self._save()
            self.show()
            if not self.pending():
                return
            time.sleep(self.settings.poll_interval)

    def collect(self, job: BatchJob, batch) -> None:
        """Read the job's output and error files into the cache; resubmit error lines or leave them."""
        answered, failed = set(), {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                for raw in self._call(self.client.sdk.files.content, file_id).content.splitlines():
                    if raw.strip():
                        self._store(codec.decode(raw, BatchOutputLine, f"batch {job.id} output"), job, answered,
                                    failed)
        if batch.status == "failed" and batch.errors:
            why = "; ".join(e.message or "" for e in batch.errors.data or [])
            failed.update({k: f"batch failed: {why}" for k in job.keys if k not in answered})
        job.collected = True
        for key in set(job.keys) - answered:
            if key in self.reserved:
                self.budget.release(self.reserved.pop(key))
        retry = [k for k in failed if k in self.todo and job.attempt < self.settings.max_resubmits
                 and batch.status != "failed"]
        self.errors.update({k: v for k, v in failed.items() if k not in retry})
        if retry:
            log.warning("batch %s: %d request(s) in its error file (first: %s); resubmitting them (attempt %d of %d)",
                        job.id, len(retry), failed[retry[0]], job.attempt + 1, self.settings.max_resubmits)
            self.n_resubmitted += len(retry)
            self.submit(retry, job.attempt + 1)
        left = [k for k in job.keys if k not in answered and k not in failed]
        if left:
            log.warning("batch %s ended %s with %d of %d requests unanswered: they are left for a rerun",
                        job.id, batch.status, len(left), len(job.keys))

    def _store(self, line: BatchOutputLine, job: BatchJob, answered: set, failed: dict) -> None:
        key = line.custom_id
        answer, why = answer_of(line, self.config.decoding(), self.client.redact)
        if answer is None:
            failed[key] = self.client.redact(why)
            return
        reservation = self.reserved.pop(key, None)
        if reservation:
            self.budget.settle(reservation, answer["prompt_tokens"], answer["completion_tokens"])
        messages = self.todo.get(key)
        request = self.config.request_body(messages) if messages is not None else {"batch": job.id}
        self.cache.put(key, self.client.redact.value(request), answer)
        answered.add(key)

    def show(self) -> None:
        """The bar: requests the jobs report done, and each job state with its count."""
        states = Counter(status for status, *_ in self.counts.values())
        done = len(self.cache.get_many(self.todo))
        running = sum(c + f for s, c, f, _ in self.counts.values() if s not in TERMINAL)
        self.bar.set_postfix_str(", ".join(f"{s} {n}" for s, n in sorted(states.items()))
                                 + f"; failed {len(self.errors)}", refresh=False)
        self.bar.update(min(self.bar.total, self.done0 + done + running) - self.bar.n)


def run_batch_jobs(requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache,
                   budget: Budget | None = None, settings: BatchSettings = BatchSettings(), progress: bool = True,
                   desc: str = "requests", key_extras=None) -> BatchResult:
    """:func:`~rolebench_eval.llm.client.run_batch` through the Batch API (see the module docstring)."""
    result = answer_all(requests, config, cache, key_extras, lambda todo, result: _send(
        todo, config, cache, budget or Budget(), settings, result, progress, desc))
    missing = sum(r is None for r in {k: r for k, r in zip(result.keys, result.responses)}.values())
    if missing and result.stopped is None:
        result.stopped, result.stop_kind = f"batch: {missing} request(s) left unanswered", "batch"
    return result


def _send(todo: dict, config: ClientConfig, cache: ResponseCache, budget: Budget, settings: BatchSettings,
          result: BatchResult, progress: bool, desc: str) -> None:
    with session(config, result, desc, progress) as (client, bar):
        jobs = _Jobs(client, cache, budget, settings, todo, bar, result.n_cached)
        carried = {k for j in jobs.pending() for k in j.keys}
        resumed = [j.id for j in jobs.pending() if carried & set(todo)]
        if resumed:
            log.info("resuming %d recorded batch job(s): %s", len(resumed), ", ".join(resumed))
        jobs.submit([k for k in todo if k not in carried], 0)
        jobs.poll()
    result.n_sent, result.n_retries, result.errors = jobs.n_sent, jobs.n_resubmitted, jobs.errors
    result.n_failed, result.spent, result.endpoint = len(jobs.errors), budget.spent(), client.endpoint
    result.stopped, result.stop_kind = jobs.stopped, jobs.stop_kind
    result.decoding = config.decoding()


def add_batch_arguments(parser) -> None:
    """``--batch`` and its settings, ``--batch-export`` and ``--batch-import`` (an argparse group)."""
    group = parser.add_argument_group("batch (OpenAI Batch API: half the price, answers within 24 h)")
    group.add_argument("--batch", action="store_true",
                       help="send the uncached requests as Batch jobs (recorded beside --cache: a rerun "
                            "polls the same jobs) and wait for them")
    group.add_argument("--batch-poll-interval", **number_arg(strict=True), default=30.0, metavar="SECONDS",
                       help="seconds between looks at the jobs (default 30)")
    group.add_argument("--batch-resubmits", **number_arg(int), default=2, metavar="N",
                       help="new jobs for the lines of a job's error file (default 2); then left for a rerun")
    group.add_argument("--batch-discount", **number_arg(), default=0.5, metavar="SHARE",
                       help="the batch price as a share of --price-input/--price-output, for --dry-run and "
                            "--max-cost (default 0.5)")
    group.add_argument("--batch-export", metavar="FILE", help="write the uncached requests as a batch input "
                       "file (for vllm run-batch or any OpenAI-batch tool), send nothing")
    group.add_argument("--batch-import", metavar="FILE", help="read a batch output file (vllm run-batch's, "
                       "OpenAI's) into the cache first")


def settings_from_args(args) -> BatchSettings | None:
    """The settings of :func:`add_batch_arguments`, or None without ``--batch``."""
    if not args.batch:
        return None
    return BatchSettings(poll_interval=args.batch_poll_interval, max_resubmits=args.batch_resubmits,
                         discount=args.batch_discount)
