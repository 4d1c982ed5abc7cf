"""Batch files keyed like the cache: the JSONL a Batch job or ``vllm run-batch`` reads, and its answers.

An input line is ``{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body"}``;
an output line is :class:`~rolebench_eval.outputs.batch.BatchOutputLine`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rolebench_eval.outputs.batch import BatchOutputLine, read_output_lines

from .cache import ResponseCache, canonical_json, request_keys, split_cached
from .config import ClientConfig, Messages
from .request import MalformedResponse, answer_from, sendable

URL = "/v1/chat/completions"


def request_line(key: str, messages: Messages, config: ClientConfig) -> bytes:
    """One line of a batch input file: the body the synchronous client would send, under its cache key."""
    body = {"model": config.model, "messages": sendable(messages)} | config.decoding()
    line = {"custom_id": key, "method": "POST", "url": URL, "body": body}
    return canonical_json(line).encode("utf-8") + b"\n"


def split_files(lines: Sequence[tuple[str, bytes]], max_requests: int, max_bytes: int) -> list[list]:
    """``(key, line)`` pairs in files of at most ``max_requests`` lines and ``max_bytes`` bytes."""
    files, size = [[]], 0
    for key, line in lines:
        if files[-1] and (len(files[-1]) == max_requests or size + len(line) > max_bytes):
            files.append([])
            size = 0
        files[-1].append((key, line))
        size += len(line)
    return [f for f in files if f]


def export_requests(path: str | Path, requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache,
                    key_extras=None) -> int:
    """Write the uncached requests as one batch input file; returns how many lines."""
    from rolebench_eval.fileio import write_atomic

    todo = split_cached(requests, config, cache, key_extras)[2]
    write_atomic(path, b"".join(request_line(k, m, config) for k, m in todo.items()))
    return len(todo)


def answer_of(line: BatchOutputLine, decoding: dict, redact=str) -> tuple[dict | None, str | None]:
    """(answer, None) for a line that answers (sent with ``decoding``), else (None, why not);
    ``redact`` scrubs the texts."""
    response = line.response
    if line.error or response is None or response.status_code != 200:
        error = line.error or ((response.body or {}).get("error") if response else None) or {}
        status = response.status_code if response else error.get("code", "error")
        return None, f"{status}: {error.get('message', error) if isinstance(error, dict) else error}"
    try:
        return answer_from(response.body or {}, decoding, redact), None
    except MalformedResponse as err:
        return None, f"malformed: {err}"


def import_outputs(path: str | Path, requests: Sequence[Messages], config: ClientConfig, cache: ResponseCache,
                   key_extras=None) -> dict:
    """Read a batch output file (``vllm run-batch``'s or OpenAI's) into the cache: counts by outcome.

    Lines whose ``custom_id`` is none of these requests' keys are counted as ``foreign`` and left.
    """
    todo = dict(zip(request_keys(requests, config, key_extras), requests))
    counts = {"stored": 0, "already_cached": 0, "failed": 0, "foreign": 0}
    for _, line in read_output_lines(path):
        if line.custom_id not in todo:
            counts["foreign"] += 1
            continue
        answer, _why = answer_of(line, config.decoding())
        if answer is None:
            counts["failed"] += 1
            continue
        stored = cache.put(line.custom_id, config.request_body(todo[line.custom_id]), answer)
        counts["stored" if stored else "already_cached"] += 1
    return counts
