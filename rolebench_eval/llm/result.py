"""What a batch of requests did (:class:`BatchResult`), and what to do when it stopped early."""

from __future__ import annotations

from dataclasses import dataclass, field

from rolebench_eval.errors import EXIT_BUDGET, EXIT_REQUESTS

# What to change, by the cause of a stop; a retry warning says the same (without "then rerun").
HINTS = {
    "timeout": "the endpoint did not answer within --timeout {timeout:g} s: raise --timeout (a local model "
               "may need minutes per answer) or lower --concurrency",
    "connection": "cannot reach {endpoint}: check that the server is running and --base-url",
    "rate_limit": "the endpoint kept rate-limiting (429): lower --concurrency or wait",
    "server": "the endpoint kept failing (5xx): wait, lower --concurrency or raise --max-retries",
    "malformed": "the endpoint kept answering with something that is not a chat completion (an HTML page, "
                 "no choices): check --base-url (it should be the OpenAI-compatible /v1 root)",
}
_FINAL = {
    "rejected": "the endpoint rejected {n_failed} request(s) (first: {first}); they are left unanswered. "
                "Fix what the message names, then rerun the same command (answers received are kept)",
    "budget": "rerun the same command with a higher cap to finish",
    "interrupted": "rerun the same command to resume",
}


@dataclass
class BatchResult:
    """What :func:`run_batch` did. ``responses[i]`` answers ``requests[i]`` (None if not answered).

    Attributes:
        stopped: None when every request has an answer, else why not ("budget: ...",
            "error: ...", "interrupted").
        stop_kind: the cause, for the hint: ``budget``, ``timeout``, ``connection``,
            ``rate_limit``, ``server``, ``malformed``, ``rejected`` or ``interrupted``.
        errors: request key -> the scrubbed error of each request that failed for good.
        decoding: the decoding fields sent at the end of the run (after any adaptation).
        adaptations: what was changed because the endpoint refused a setting.
    """

    keys: list[str]
    responses: list[dict | None]
    n_cached: int = 0
    n_sent: int = 0
    n_retries: int = 0
    n_failed: int = 0
    stopped: str | None = None
    stop_kind: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    spent: dict = field(default_factory=dict)
    decoding: dict = field(default_factory=dict)
    adaptations: list[str] = field(default_factory=list)
    peak_concurrency: int = 0
    timeout: float = 0.0
    endpoint: str = ""

    @property
    def exit_code(self) -> int:
        """3 for a budget stop, 4 for failed requests, 0 when complete."""
        if self.stopped is None:
            return 0
        return EXIT_BUDGET if self.stop_kind == "budget" else EXIT_REQUESTS

    def hint(self) -> str:
        """What to do about ``stopped``, in words that match its cause."""
        first = next(iter(self.errors.values()), "")
        kind = self.stop_kind or ""
        text = HINTS[kind] + ", then rerun the same command" if kind in HINTS else _FINAL.get(kind, "rerun")
        return text.format(timeout=self.timeout, endpoint=self.endpoint, n_failed=self.n_failed, first=first)

    def stop_message(self, kept: str = "every answer received is kept") -> str:
        """One line for the terminal: why the run stopped, what is kept, what to do."""
        return f"stopped before the end ({self.stopped}); {kept}. {self.hint()}"
