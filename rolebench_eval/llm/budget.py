"""Spending limits and dry-run estimates.

Before a request is sent, :class:`Budget` reserves one request and its estimated prompt tokens plus
``max_tokens`` (the most it can cost); the answer's reported usage then replaces the reservation. A
request that would take spent plus reserved over a cap is not sent, so caps hold exactly for requests,
and for tokens and money while :func:`estimate_tokens` (a character heuristic) does not undercount.
Only answered requests are counted.
"""

from __future__ import annotations

import argparse
import math
import threading
from dataclasses import dataclass
from typing import Sequence

from rolebench_eval.errors import InputError
from rolebench_eval.flags import number_arg

from .cache import ResponseCache, split_cached

_PER_MESSAGE = 4  # chat-format overhead per message, in tokens


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens; None when unknown (then no cost is computed)."""

    input_per_million: float | None = None
    output_per_million: float | None = None

    @property
    def known(self) -> bool:
        return self.input_per_million is not None and self.output_per_million is not None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        """The price of a request, or None when prices are unknown."""
        if not self.known:
            return None
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True)
class Caps:
    """Limits for one run; None = no limit."""

    max_requests: int | None = None
    max_total_tokens: int | None = None  # prompt + completion, all requests together
    max_cost: float | None = None

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(None, None, name, f"a cap must be a finite number >= 0, got {value!r}")


def estimate_tokens(messages: Sequence[dict]) -> int:
    """Approximate prompt tokens: ASCII characters / 4, other characters (CJK) 1 each.

        >>> estimate_tokens([{"role": "user", "content": "abcdefgh"}])
        6
        >>> estimate_tokens([{"role": "user", "content": "你好"}])
        6
    """
    total = 0
    for message in messages:
        text = str(message.get("content", ""))
        ascii_chars = sum(1 for ch in text if ord(ch) < 128)
        total += _PER_MESSAGE + -(-ascii_chars // 4) + (len(text) - ascii_chars)
    return total


class Budget:
    """Thread-safe spending against :class:`Caps` (see the module docstring)."""

    def __init__(self, caps: Caps | None = None, prices: Prices | None = None):
        self.caps, self.prices = caps or Caps(), prices or Prices()
        if self.caps.max_cost is not None and not self.prices.known:
            raise InputError(None, None, "--max-cost", "a money cap needs prices: give --price-input and "
                                                       "--price-output (per million tokens)")
        self._lock = threading.Lock()
        self._used = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
        self._held = [0, 0, 0.0]  # requests, tokens, cost reserved by requests in flight
        self.exhausted: str | None = None

    def reserve(self, prompt_tokens: int, max_completion_tokens: int) -> tuple | None:
        """Hold the most a request can cost; None (and ``exhausted`` set) if a cap forbids it."""
        tokens, cost = prompt_tokens + max_completion_tokens, self.prices.cost(prompt_tokens, max_completion_tokens)
        caps, used = self.caps, self._used
        with self._lock:
            requests, held_tokens, held_cost = self._held
            if caps.max_requests is not None and used["requests"] + requests + 1 > caps.max_requests:
                refusal = f"max_requests={caps.max_requests} reached"
            elif caps.max_total_tokens is not None and (used["prompt_tokens"] + used["completion_tokens"]
                                                        + held_tokens + tokens > caps.max_total_tokens):
                refusal = f"max_total_tokens={caps.max_total_tokens} would be exceeded"
            elif caps.max_cost is not None and used["cost"] + held_cost + cost > caps.max_cost:
                refusal = f"max_cost={caps.max_cost} would be exceeded"
            else:
                self._held = [requests + 1, held_tokens + tokens, held_cost + (cost or 0.0)]
                return (prompt_tokens, tokens, cost or 0.0)
            self.exhausted = self.exhausted or refusal
            return None

    def release(self, reservation: tuple) -> None:
        """Give a reservation back (the request got no answer)."""
        _, tokens, cost = reservation
        with self._lock:
            self._held = [self._held[0] - 1, self._held[1] - tokens, self._held[2] - cost]

    def settle(self, reservation: tuple, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        """Replace a reservation by the usage reported (the estimate when none is reported)."""
        estimate, tokens, _ = reservation
        prompt = estimate if prompt_tokens is None else prompt_tokens
        completion = tokens - estimate if completion_tokens is None else completion_tokens
        self.release(reservation)
        with self._lock:
            for name, value in (("requests", 1), ("prompt_tokens", prompt), ("completion_tokens", completion),
                                ("cost", self.prices.cost(prompt, completion) or 0.0)):
                self._used[name] += value

    def spent(self) -> dict:
        """What the answered requests used: requests, prompt/completion tokens, cost (or None)."""
        with self._lock:
            return self._used | {"cost": self._used["cost"] if self.prices.known else None}


@dataclass
class Estimate:
    """A dry run: what answering a batch would send and could cost at most."""

    n_requests: int
    n_cached: int
    prompt_tokens: int
    max_completion_tokens: int
    max_cost: float | None

    def lines(self) -> list[str]:
        """Human-readable lines for the terminal."""
        cost = "unknown (no prices configured)" if self.max_cost is None else f"${self.max_cost:.4f}"
        return [
            f"requests to send: {self.n_requests} (another {self.n_cached} already cached, free)",
            f"prompt tokens: ~{self.prompt_tokens} (estimated from characters)",
            f"completion tokens: at most {self.max_completion_tokens} (max_tokens per request)",
            f"cost: at most {cost}",
        ]


def estimate(requests: Sequence[list[dict]], config, cache: ResponseCache, prices: Prices | None = None,
             key_extras: Sequence[dict | None] | None = None) -> Estimate:
    """Count and price the requests of a batch that ``cache`` has no answer for; sends nothing."""
    _, cached, todo = split_cached(requests, config, cache, key_extras)
    prompt = sum(estimate_tokens(m) for m in todo.values())
    completion = len(todo) * config.max_tokens
    return Estimate(len(todo), len(cached), prompt, completion, (prices or Prices()).cost(prompt, completion))


class _RenamedMaxTokens(argparse.Action):
    """``--max-tokens`` is ambiguous (lm-eval, OpenAI, vLLM: a per-request cap; here it was the run's
    budget): one line naming both flags, exit 2."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(2, f"{parser.prog}: error: {option_string} is ambiguous here and not accepted: give "
                       "--max-new-tokens N for the completion-token cap per request, or --max-total-tokens N "
                       "for the token budget of the whole run (prompt + completion)\n")


def add_budget_arguments(parser) -> None:
    """The budget flags shared by ``judge`` and ``generate`` (an argparse argument group)."""
    budget = parser.add_argument_group("budget (stops cleanly, keeping everything done)")
    budget.add_argument("--max-requests", **number_arg(int), help="at most this many requests")
    budget.add_argument("--max-total-tokens", **number_arg(int),
                        help="at most this many tokens in all requests together (prompt + completion); "
                             "the cap per request is --max-new-tokens")
    budget.add_argument("--max-tokens", nargs="?", action=_RenamedMaxTokens, help=argparse.SUPPRESS)
    budget.add_argument("--max-cost", **number_arg(), help="at most this many US dollars (needs prices)")
    budget.add_argument("--price-input", **number_arg(), help="USD per million prompt tokens")
    budget.add_argument("--price-output", **number_arg(), help="USD per million completion tokens")


def budget_from_args(args) -> tuple[Caps, Prices | None]:
    """Caps and prices from the flags of :func:`add_budget_arguments`; both prices or none."""
    prices = None
    if args.price_input is not None or args.price_output is not None:
        if args.price_input is None or args.price_output is None:
            raise InputError(None, None, "--price-input", "give both --price-input and --price-output")
        prices = Prices(args.price_input, args.price_output)
    return Caps(args.max_requests, args.max_total_tokens, args.max_cost), prices
