"""The paper's prompting studies as task variants: k retrieved demonstrations, two layouts.

``rolebench_<split>_fewshot`` puts k demonstrations into the one user turn before the
question ("few-shot prompt engineering", Table 7); ``rolebench_<split>_dialogue`` gives them
as earlier user/assistant turns ("few-shot dialogue engineering", Table 7; the retrieval
augmentation of Table 8). Demonstrations are the role's train items most similar to the
question under BM25 (:mod:`rolebench_eval.retrieval`; question and first reference indexed
together, the question as query), never an item with the scored question itself; the most
similar one comes last, next to the question. ``k`` (``--metadata '{"k": 5}'``) defaults to 3.

Besides the single-turn metrics each variant reports ``prompt_tokens``: the length of the
rendered prompt in the model's tokenizer when lm-eval hands us one (``--apply_chat_template``
with a tokenizer-backed model: hf, vllm, local-completions), else in the paper metric's
tokens (whitespace words; Chinese characters). Results record which in
``metadata.prompt_tokens_unit``.
"""

from __future__ import annotations

import logging
from typing import Callable

from rolebench_eval.catalogue import language
from rolebench_eval.data import is_degenerate
from rolebench_eval.errors import InputError
from rolebench_eval.metrics import response_tokens
from rolebench_eval.prompts import render_question
from rolebench_eval.retrieval import BM25Index
from rolebench_eval.source import load_split

from .conversation import ConversationTask, Turn
from .multiturn import item_id

log = logging.getLogger(__name__)
DEFAULT_K = 3
METADATA_KEYS = ("k",)  # the --metadata keys these tasks read
RETRIEVAL = "BM25Okapi (k1=1.5, b=0.75) over the role's train items (question + first reference), query: the question"
MODEL_TOKENS, PAPER_TOKENS = "model tokenizer", "paper metric tokens"


def fewshot_user_turn(demos: list[Turn], question: str, lang: str) -> str:
    """The question with its demonstrations before it; the bare question when there are none."""
    if not demos:
        return question
    head, shot, tail = language(lang).fewshot_turn  # the catalogue's texts of the one user turn
    shots = [shot.format(question=render_question(d["question"]), answer=d["answer"].strip()) for d in demos]
    return "\n\n".join([head, *shots, tail.format(question=render_question(question))])


def k_from(meta: dict | None) -> int:
    value = (meta or {}).get("k", DEFAULT_K)
    if isinstance(value, bool) or not str(value).isdigit():
        raise InputError("--metadata", None, "k", f"expected a number of demonstrations (0 or more), got {value!r}")
    return int(value)


def demonstrations(docs: list[dict], train: list, lang: str, k: int) -> list[list[Turn]]:
    """For each document, the ``k`` train items of its role most similar to its question, best last."""
    pools: dict[str, list] = {}
    for item in train:
        if item.references and not is_degenerate(item.references[0]):
            pools.setdefault(item.role, []).append(item)
    indexes = {role: BM25Index([f"{i.question}\n{i.references[0]}" for i in pool], lang) for role, pool in pools.items()}
    out = []
    for doc in docs:
        pool, asked = pools.get(doc["role"], []), doc["question"].strip()
        best = indexes[doc["role"]].top_k(doc["question"], k, lambda i: pool[i].question.strip() == asked) if pool else []
        out.append([{"question": pool[i].question, "answer": pool[i].references[0]} for i in reversed(best)])
    return out


def count_prompt_tokens(context: str, chat_template: Callable | None, lang: str) -> tuple[int, str]:
    """Tokens of the rendered prompt and their unit: the model's tokenizer when reachable, else the paper's.

    lm-eval passes the model's ``apply_chat_template`` (a bound method) with a chat template;
    chat-completion APIs (untokenized requests) get the paper's tokens.
    """
    lm = getattr(chat_template, "__self__", None)
    if lm is not None and getattr(lm, "tokenizer", None) is not None and getattr(lm, "tokenized_requests", True) \
            and callable(getattr(lm, "tok_encode", None)):
        return len(lm.tok_encode(context)), MODEL_TOKENS
    return response_tokens(context, lang), PAPER_TOKENS


class StudyTask(ConversationTask):
    """A single-turn split whose documents carry ``k`` retrieved demonstrations."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        self.k = k_from(config.get("metadata"))
        self._prompt_tokens: dict[str, int] = {}
        self._missing_warned = False
        super().__init__(config=config)

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        import datasets

        super().download(dataset_kwargs, **kwargs)  # the test documents, provenance in metadata
        meta = self.config.metadata
        train = load_split((dataset_kwargs or {}).get("split"), meta.get("data_dir"), meta.get("revision"), file="train")
        docs = self.dataset["test"].to_list()
        demos = demonstrations(docs, train.items, train.split.lang, self.k)
        docs = [dict(doc, item_id=item_id(doc["role"], doc["question"]), demonstrations=d) for doc, d in zip(docs, demos)]
        short = sum(len(d) < self.k for d in demos)
        if short:
            log.warning("%s: %d of %d items have fewer than %d demonstrations (their role has too few train items)",
                        self.config.task, short, len(docs), self.k)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        self.config.metadata = meta | {"k": self.k, "retrieval": RETRIEVAL, "train_data": train.provenance,
                                       "items_with_fewer_demonstrations": short}

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False,
                        fewshot_as_multiturn=False, chat_template=None, gen_prefix=None):
        context = super().fewshot_context(doc, num_fewshot, system_instruction, apply_chat_template,
                                          fewshot_as_multiturn, chat_template, gen_prefix)
        chat = chat_template if apply_chat_template else None
        count, unit = count_prompt_tokens(context, chat, doc["lang"])
        self._prompt_tokens[doc["item_id"]] = count
        if self.config.metadata.get("prompt_tokens_unit") != unit:
            self.config.metadata = self.config.metadata | {"prompt_tokens_unit": unit}
        return context

    def process_results(self, doc, results):
        scores = super().process_results(doc, results)
        if scores and doc["item_id"] in self._prompt_tokens:
            scores["prompt_tokens"] = self._prompt_tokens[doc["item_id"]]
        elif scores and not self._missing_warned:  # requests came from lm-eval's request cache
            self._missing_warned = True
            log.warning("%s: prompt_tokens not reported for documents whose prompt this run did not render "
                        "(--cache_requests)", self.config.task)
        return scores


class FewShotTask(StudyTask):
    """``rolebench_*_fewshot``: the demonstrations and the question in one user turn."""

    def user_turn(self, doc: dict) -> str:
        return fewshot_user_turn(doc["demonstrations"], doc["question"], doc["lang"])


class DialogueTask(StudyTask):
    """``rolebench_*_dialogue``: the demonstrations as earlier user/assistant turns."""

    def turns(self, doc: dict) -> list[Turn]:
        return doc["demonstrations"]
