"""What both generators share: options, the sampling client config, filters, the split rule.

Requests go through :func:`rolebench_eval.llm.client.run_batch` (the judges' client): every
answer is cached the moment it arrives, so a rerun sends nothing and a killed run resumes;
retries, the budget caps and the dry-run estimate are the client's.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from rolebench_eval.errors import InputError
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, Messages, run_batch

PROMPTS_DIR = Path(__file__).parent / "prompts"
FILTER_KEYS = ("breaks_character", "refusal", "question_mentions_source")
_NOT_WORD = re.compile(r"[\W_]+")


class GenerateError(InputError):
    """Bad input or settings for a generator (the message names the file, option or field)."""


@dataclass
class GenerateOptions:
    """Endpoint, decoding, budget and output settings shared by both generators (the CLI flags).

    Decoding defaults are the paper's RoleGPT settings (temperature 0.7, top_p 0.95); no
    seed is sent, so several samples of one prompt differ. Request settings left None take
    the client's defaults (:class:`~rolebench_eval.llm.config.ClientConfig`); ``client``
    holds any client setting by name, over everything else (the CLI puts every LLM flag
    given there).
    """

    model: str
    out: str | os.PathLike
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    cache: str | os.PathLike | None = None
    caps: Caps = field(default_factory=Caps)
    prices: Prices | None = None
    temperature: float = 0.7
    top_p: float | None = 0.95
    max_new_tokens: int | None = None  # None: the generator's default (RoleGPT 512, Context-Instruct 2048)
    concurrency: int | str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    backoff_base: float | None = None
    client: dict = field(default_factory=dict)
    test_fraction: float = 0.2
    filters: str | os.PathLike | None = None
    dry_run: bool = False
    progress: bool = True

    def client_config(self) -> ClientConfig:
        """The client config (decoding settings are part of every cache key)."""
        if not 0 < self.test_fraction < 1:
            raise GenerateError(f"--test-fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        decoding = {"model": self.model, "base_url": self.base_url, "api_key_env": self.api_key_env,
                    "temperature": self.temperature, "top_p": self.top_p, "seed": None}
        if self.max_new_tokens is not None:
            decoding["max_tokens"] = self.max_new_tokens
        requests = {"concurrency": self.concurrency, "timeout": self.timeout, "max_retries": self.max_retries,
                    "backoff_base": self.backoff_base}
        return ClientConfig.layered(decoding, requests, self.client)

    def settings(self) -> dict:
        """What is recorded next to the data: model and decoding (no key, no URL secrets)."""
        config = self.client_config()
        return {"model": config.model, "temperature": config.temperature, "top_p": config.top_p,
                "max_new_tokens": config.max_tokens, "test_fraction": self.test_fraction}


@dataclass
class GenerationResult:
    """What a generator did: its report (also in ``rolebench_custom.json``), the batch or estimate."""

    report: dict
    estimate: Estimate | None = None
    batch: BatchResult | None = None


def ask(requests: Sequence[Messages], extras: Sequence[dict], opts: GenerateOptions,
        desc: str) -> tuple[Estimate | None, BatchResult | None]:
    """A dry-run estimate (nothing sent) or the answers, from the cache or the endpoint."""
    config = opts.client_config()
    with ResponseCache(opts.cache or default_cache_path()) as cache:
        if opts.dry_run:
            return estimate(requests, config, cache, opts.prices, key_extras=extras), None
        return None, run_batch(requests, config, cache, Budget(opts.caps, opts.prices), progress=opts.progress,
                               desc=desc, key_extras=extras)


# --------------------------------------------------------------------------- filters


def load_filters(path: str | os.PathLike | None = None) -> dict[str, tuple[str, ...]]:
    """The filter lists (``generate/prompts/filters.yaml`` unless ``path``), normalised."""
    path = Path(path) if path else PROMPTS_DIR / "filters.yaml"
    if not path.is_file():
        raise GenerateError(f"{path}: filters file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GenerateError(f"{path}: invalid YAML ({err})") from None
    if not isinstance(data, dict):
        raise GenerateError(f"{path}: expected a mapping with keys {', '.join(FILTER_KEYS)}")
    lists = {}
    for key in FILTER_KEYS:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise GenerateError(f"{path}: field '{key}': expected a list of non-empty strings")
        lists[key] = tuple(_fold(v) for v in value)
    return lists


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def matched_filter(text: str, filters: dict[str, tuple[str, ...]], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` whose list has a phrase occurring in ``text``, else None.

    Example:
        >>> matched_filter("As an AI language model, I...", {"breaks_character": ("as an ai",)}, ["breaks_character"])
        'breaks_character'
    """
    folded = _fold(text)
    for key in keys:
        if any(phrase in folded for phrase in filters.get(key, ())):
            return key
    return None


def normalize_question(question: str) -> str:
    """The duplicate key of a question: NFKC, case-folded, without spaces and punctuation.

    Example:
        >>> normalize_question(" What's your  ship called?") == normalize_question("whats your ship called")
        True
    """
    return _NOT_WORD.sub("", _fold(question))


# --------------------------------------------------------------------------- train/test split


def split_position(question: str) -> float:
    """Where a question falls in [0, 1): the first 8 bytes of sha256(normalised question)."""
    digest = hashlib.sha256(normalize_question(question).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_test(questions: Sequence[str], fraction: float) -> list[bool]:
    """True for the questions that go to ``test.jsonl``.

    A question is a test question when :func:`split_position` is below ``fraction``, so the
    split is deterministic, independent of order and of the other questions, and one
    instruction lands on the same side for every role. With two or more questions and one
    side empty, the question nearest the boundary moves over, so both files have rows.
    """
    where = [split_position(q) for q in questions]
    test = [w < fraction for w in where]
    if len(questions) >= 2 and not any(test):
        test[min(range(len(where)), key=where.__getitem__)] = True
    elif len(questions) >= 2 and all(test):
        test[max(range(len(where)), key=where.__getitem__)] = False
    return test
