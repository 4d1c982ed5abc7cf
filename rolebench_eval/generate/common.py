"""What both generators share: options, the sampling client config, the request call, the result.

Requests go through :func:`rolebench_eval.llm.client.run_batch` (the judges' client): every
answer is cached the moment it arrives, so a rerun sends nothing and a killed run resumes;
retries, the budget caps and the dry-run estimate are the client's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rolebench_eval.errors import InputError
from rolebench_eval.llm.budget import Budget, Caps, Estimate, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, default_cache_path
from rolebench_eval.llm.client import BatchResult, ClientConfig, Messages, run_batch

PROMPTS_DIR = Path(__file__).parent / "prompts"


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
            raise GenerateError("--test-fraction", None, None,
                                f"must be between 0 and 1 (exclusive), got {self.test_fraction}")
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
