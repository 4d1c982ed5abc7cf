"""Reasoning models scored on their answers: the lm-eval filter ``rolebench_reasoning``.

Most open models think before they answer (``<think>…</think>``). Every RoleBench task's
``filter_list`` (the template) runs this filter, so lm-eval logs the raw text in ``resps`` and
the answer in ``filtered_resps``, and scores, judges and the item browser see the answer only:

- a closed block: the answer is what follows the first end marker (as vLLM's reasoning parsers
  split), so markers quoted inside the answer stay part of it;
- an end marker without a start marker: the chat template opened the block in the prompt
  (DeepSeek-R1, QwQ); the same rule;
- a start marker that never closes: an unfinished answer. It scores as the empty answer, is
  counted (the per-item metric ``unfinished_reasoning``, a share in the results) and the run
  warns once with the fix;
- no marker: the text as it came (a model that does not reason).

The markers are the catalogue's (``reasoning`` in ``splits.yaml``); ``--metadata
'{"reasoning_markers": ["<reasoning>", "</reasoning>"]}'`` picks others for a run, recorded
in the results' ``filter_list``.
"""

from __future__ import annotations

import logging

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter

from rolebench_eval.catalogue import reasoning_markers
from rolebench_eval.errors import InputError
from rolebench_eval.outputs import UNFINISHED_REASONING as METRIC  # noqa: F401  (what the tasks report)
from rolebench_eval.reasoning import UnfinishedAnswer, answer, is_unfinished  # noqa: F401  (the pure cut, shared)

log = logging.getLogger(__name__)
NAME = "rolebench_reasoning"  # the filter's registered name, as the task YAMLs name it
METADATA_KEY = "reasoning_markers"
_warned = False


def markers(meta: dict | None) -> tuple[str, str]:
    """(start, end) of a run: ``--metadata reasoning_markers``, else the catalogue's."""
    given = (meta or {}).get(METADATA_KEY)
    if given is None:
        return reasoning_markers()
    if not (isinstance(given, (list, tuple)) and len(given) == 2 and all(isinstance(m, str) and m.strip()
                                                                         for m in given)):
        raise InputError("--metadata", None, METADATA_KEY,
                         f"expected [start, end], two non-empty strings such as [\"<think>\", \"</think>\"], "
                         f"got {given!r}")
    return given[0], given[1]


def filter_list(config_filters: list[dict] | None, meta: dict | None) -> list[dict] | None:
    """The task's ``filter_list`` with this run's markers in the reasoning filter (others as they are)."""
    if not config_filters:
        return config_filters
    start, end = markers(meta)
    return [{**ensemble, "filter": [{**step, "start": start, "end": end} if step.get("function") == NAME else step
                                    for step in ensemble["filter"]]} for ensemble in config_filters]


def warn_unfinished(unfinished: int, total: int, end: str) -> None:
    """Once per run: how many answers never closed their reasoning, and what to change."""
    global _warned
    if not unfinished or _warned:
        return
    _warned = True
    log.warning("%d of %d answers end inside an unclosed reasoning block (no %s): they score as empty answers "
                "(unfinished_reasoning in the results). Raise max_gen_toks (--gen_kwargs max_gen_toks=4096), or "
                "let the model stop reasoning: think_end_token=%s or enable_thinking=False in --model_args. "
                "Warned once per run.", unfinished, total, end, end)


@register_filter(NAME)
class ReasoningFilter(Filter):
    """Each generation's answer without its reasoning block (:func:`answer`)."""

    def __init__(self, start: str | None = None, end: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        default = reasoning_markers()
        self.start, self.end = start or default[0], end or default[1]

    def apply(self, resps, docs):
        out = [[answer(text, self.start, self.end) if isinstance(text, str) else text for text in inst]
               for inst in resps]
        warn_unfinished(sum(is_unfinished(a) for inst in out for a in inst), sum(len(inst) for inst in out), self.end)
        return out
