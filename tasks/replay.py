"""``rolegpt``: an lm-eval model that replays the dataset's RoleGPT (GPT-4) answers.

RoleGPT is the paper's strongest baseline and its answers ship with RoleBench
(``rolegpt_baseline.jsonl``), so it costs nothing to evaluate. The task documents carry
the answer matched on the raw (role, question); items without one are not scored, and the
number skipped is logged per task.
"""

from __future__ import annotations

import logging
from collections import Counter

# lm-eval imports its built-in models only while its registry is empty: load them first,
# or registering ours would hide `hf`, `vllm`, ... from the same run.
import lm_eval.models  # noqa: F401
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from rolebench_eval.data import NO_ROLEGPT_ANSWER
from rolebench_eval.outputs.models import REPLAY_MODEL

log = logging.getLogger(__name__)


@register_model(REPLAY_MODEL)  # its row on a leaderboard: outputs.models.REPLAY_LABEL
class RoleGPTReplay(LM):
    """Answers every RoleBench item with the released RoleGPT answer; no weights, no GPU."""

    def __init__(self, **kwargs):
        super().__init__()

    @classmethod
    def create_from_arg_string(cls, arg_string: str = "", additional_config: dict | None = None):
        return cls()

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        answers, missing, total = [], Counter(), Counter()
        for request in requests:
            if "rolegpt" not in request.doc:
                raise ValueError(f"rolegpt replays RoleBench tasks only; {request.task_name} is not one")
            total[request.task_name] += 1
            answer = request.doc["rolegpt"]
            if answer is None:
                missing[request.task_name] += 1
                answer = NO_ROLEGPT_ANSWER
            answers.append(answer)
        for task, count in sorted(missing.items()):
            log.warning("rolegpt: %d of %d items of %s have no RoleGPT answer in the dataset; "
                        "they are skipped, not scored", count, total[task], task)
        return answers

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("rolegpt replays generated answers; it has no log-likelihoods")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("rolegpt replays generated answers; it has no log-likelihoods")
