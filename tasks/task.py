"""RoleBench as an lm-eval task: data from :mod:`rolebench_eval.source`, per-role prompts.

Every task YAML names ``class: !function rolebench_eval.tasks.task.RoleBenchTask`` and a
split in ``dataset_kwargs``. The class reads the split at run time (``--metadata
'{"data_dir": ...}'``, ``$ROLEBENCH_DATA_DIR`` or the Hub), renders the role prompt as a
per-document system message and records where the data came from in the results.
"""

from __future__ import annotations

import logging

from lm_eval.api.task import ConfigurableTask

from rolebench_eval.catalogue import paper_metric
from rolebench_eval.data import NO_ROLEGPT_ANSWER
from rolebench_eval.errors import InputError
from rolebench_eval.metrics import item_scores
from rolebench_eval.prompts import (
    PROMPT_VERSION,
    chat_messages,
    fold_system,
    plain_prompt,
    role_prompt,
    template_keeps_system,
)
from rolebench_eval.source import SplitData, load_split

from . import reasoning, shard

log = logging.getLogger(__name__)
_CHECKED_ADAPTERS: set[tuple[str, bool]] = set()
# The --metadata keys every RoleBench task reads (the adapter's keys usually arrive from model_args).
METADATA_KEYS = ("data_dir", "revision", shard.METADATA_KEY, "peft", "lora_local_path", "pretrained")


def warn_on_adapter_mismatch(meta: dict, apply_chat_template: bool) -> list[str]:
    """Warn loudly when an adapter was trained with other prompts than this evaluation renders.

    lm-eval passes ``model_args`` to tasks as metadata, so ``peft=`` (hf) or
    ``lora_local_path=`` (vLLM) tells which adapter runs. Checked once per adapter.
    """
    adapter = meta.get("peft") or meta.get("lora_local_path")
    if not adapter or (str(adapter), apply_chat_template) in _CHECKED_ADAPTERS:
        return []
    _CHECKED_ADAPTERS.add((str(adapter), apply_chat_template))
    from rolebench_eval.provenance import check_adapter_provenance

    problems = check_adapter_provenance(adapter, str(meta.get("pretrained") or ""), PROMPT_VERSION,
                                        apply_chat_template=apply_chat_template)
    for problem in problems:
        log.warning("TRAIN/EVAL PROMPT MISMATCH for adapter %s: %s", adapter, problem)
    return problems



def build_docs(data: SplitData) -> list[dict]:
    """lm-eval documents: the raw row plus the rendered role prompt and the RoleGPT answer."""
    lang, kind = data.split.lang, data.split.kind
    docs = []
    raw = data.raw if data.raw is not None else [None] * len(data.items)
    for item, raw_answer in zip(data.items, raw):
        rolegpt = data.baseline.get((item.role, item.question)) if data.baseline is not None else None
        docs.append({
            "role": item.role,
            "question": item.question,
            "references": list(item.references),
            "type": list(item.types),
            "lang": lang,
            "kind": kind,
            "system_prompt": role_prompt(item.role, lang, data.descriptions.get(item.role)),
            "description": data.descriptions.get(item.role),  # the profile text (judges' description slot)
            "rolegpt": rolegpt,
            "raw": raw_answer,  # the instruction's original answer (RAW's reference), general items only
        })
    return docs


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Per-item scores: the paper metric (``cus`` or ``spe``), ``raw``, ROUGE-L F, answer length and
    ``unfinished_reasoning`` (1.0 when the answer is the empty one of an unclosed reasoning block).

    ``raw`` (general items) is the paper metric against the instruction's original answer; an
    item without one gets no ``raw`` at all (never a 0), so the mean is over covered items.
    """
    prediction = results[0]
    if prediction == NO_ROLEGPT_ANSWER:
        return {}
    scores = item_scores(prediction, doc["references"], doc["lang"], doc.get("raw"))
    out = {paper_metric(doc["kind"]): scores.recall, "rougeL_f": scores.f, "resp_tokens": scores.length,
           reasoning.METRIC: float(reasoning.is_unfinished(prediction))}
    if scores.raw is not None:
        out["raw"] = scores.raw
    return out


class RoleBenchTask(ConfigurableTask):
    """A zero-shot RoleBench split whose system prompt depends on the document's role."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        config.pop("class", None)  # TaskConfig does not know the key that brought us here
        config["filter_list"] = reasoning.filter_list(config.get("filter_list"), config.get("metadata"))
        self._keeps_system: bool | None = None
        super().__init__(config=config)

    def download(self, dataset_kwargs: dict | None = None, **kwargs) -> None:
        import datasets

        meta = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        split = (dataset_kwargs or {}).get("split")
        data = load_split(split, meta.get("data_dir"), meta.get("revision"))
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(build_docs(data))})
        covered = sum(1 for d in self.dataset["test"] if d["rolegpt"] is not None)
        self.config.metadata = meta | {
            "data": data.provenance,
            "prompt_version": PROMPT_VERSION,
            "role_descriptions": f"{len({i.role for i in data.items} & set(data.descriptions))} of "
                                 f"{len({i.role for i in data.items})} roles",
            "rolegpt_answers": f"{covered} of {len(data.items)} items",
            "data_audit": data.audit,
        }
        if data.raw_provenance is not None:
            self.config.metadata["raw"] = data.raw_provenance
            if not data.raw_provenance.get("found"):
                log.warning("%s: %s is not in this copy of RoleBench; RAW is not measured", self.config.task,
                            data.raw_provenance["file"])

    def doc_iterator(self, *, rank: int = 0, limit: int | None = None, world_size: int = 1, samples=None):
        """lm-eval's documents, only this run's shard (``--shard K/N``) when one is asked for.

        The single run's ``doc_id`` is kept (shards skip, never renumber), so merged parts are
        the single run sample for sample; ``--limit`` and lm-eval's ranks then apply within the shard.
        """
        meta = self.config.metadata if isinstance(self.config.metadata, dict) else {}
        parsed = shard.parse_shard(meta.get(shard.METADATA_KEY))
        if parsed is None:
            return super().doc_iterator(rank=rank, limit=limit, world_size=world_size, samples=samples)
        if samples:
            raise InputError("--samples", None, None, "choose documents with --shard or with --samples, not both")
        from lm_eval.utils import create_iterator

        docs = list(self.eval_docs)
        chosen = shard.select(docs, *parsed, task=self.config.task)
        self.config.metadata = meta | {shard.METADATA_KEY: shard.shard_record(docs, chosen, *parsed, meta)}
        return create_iterator(((i, docs[i]) for i in chosen), rank=int(rank), limit=int(limit) if limit else None,
                               world_size=int(world_size))

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False,
                        fewshot_as_multiturn=False, chat_template=None, gen_prefix=None):
        if num_fewshot:
            raise ValueError("RoleBench tasks are zero-shot, as in the paper")
        warn_on_adapter_mismatch(self.config.metadata or {}, bool(apply_chat_template and chat_template))
        system = "\n\n".join(s for s in (system_instruction, doc["system_prompt"]) if s)
        if not (apply_chat_template and chat_template):
            return plain_prompt(system, doc["question"])
        messages = chat_messages(system, doc["question"])
        if not self._template_keeps_system(chat_template):
            messages = fold_system(messages)
        return chat_template(messages, add_generation_prompt=True)

    def _template_keeps_system(self, chat_template) -> bool:
        """Probe once whether the chat template renders a system message at all.

        lm-eval drops the system message when a template rejects it; the role prompt
        would vanish. In that case it goes into the user turn, and we say so.
        """
        if self._keeps_system is None:
            self._keeps_system = template_keeps_system(chat_template)
            placement = "system" if self._keeps_system else "user"
            self.config.metadata = dict(self.config.metadata or {}) | {"role_prompt_placement": placement}
            if not self._keeps_system:
                log.warning("%s: the chat template drops system messages; the role prompt is folded into "
                            "the user turn instead", self.config.task)
        return self._keeps_system
