"""``<cache>.batches.json``: the Batch jobs a cache waits for (read and written by :mod:`rolebench_eval.llm.batch`);
and the lines of a batch output file (OpenAI's, ``vllm run-batch``'s).

Each job is recorded the moment ``batches.create`` returns, with the cache keys it carries (its
lines' ``custom_id``), so a killed or repeated ``--batch`` run polls the same jobs instead of
submitting their requests again; a job whose results went into the cache is marked ``collected``.
"""

from __future__ import annotations

import os
from pathlib import Path

from msgspec import Struct, field

from . import codec

FORMAT_VERSION = 1


class BatchJob(Struct, kw_only=True):
    """One submitted batch: its id, where it went (endpoint id, model) and the keys it answers."""

    id: str
    endpoint: str
    model: str
    keys: list[str]
    attempt: int = 0  # 0: first submission; n: the n-th resubmission of error-file lines
    status: str = "validating"  # as last seen
    collected: bool = False  # its output and error files are read into the cache


class BatchJobs(Struct, kw_only=True):
    format_version: int = FORMAT_VERSION
    jobs: list[BatchJob] = field(default_factory=list)


def jobs_path(cache_path: str | os.PathLike) -> Path:
    """The record beside a cache file: ``llm_cache.sqlite`` -> ``llm_cache.sqlite.batches.json``."""
    return Path(f"{cache_path}.batches.json")


def read_jobs(path: str | os.PathLike) -> BatchJobs:
    """The record (an empty one when the file does not exist); a newer format is refused."""
    if not Path(path).exists():
        return BatchJobs()
    record = codec.read(path, BatchJobs, "batch-job record")
    if record.format_version != FORMAT_VERSION:
        raise codec.refuse_version(path, "format_version", record.format_version, (FORMAT_VERSION,),
                                   "not a batch-job record of this rolebench-eval")
    return record


def write_jobs(path: str | os.PathLike, record: BatchJobs) -> Path:
    """Write the record atomically (a kill leaves the old or the new one, never half)."""
    return codec.write(path, record)


class BatchResponse(Struct, kw_only=True):
    status_code: int
    body: dict | None = None
    request_id: str | None = None


class BatchOutputLine(Struct, kw_only=True):
    """One line of a batch output or error file: OpenAI's Batch API and ``vllm run-batch`` write the same.

    ``{"id": ..., "custom_id": <cache key>, "response": {"status_code": 200, "request_id": ...,
    "body": <chat completion>}, "error": null}``; a failed line has a non-200 ``response`` or an ``error``.
    """

    custom_id: str
    response: BatchResponse | None = None
    error: dict | None = None
    id: str | None = None


def read_output_lines(path: str | os.PathLike):
    """``(line number, BatchOutputLine)`` for each line of a batch output file (``--batch-import``)."""
    return codec.read_lines(path, BatchOutputLine, "batch output file")
