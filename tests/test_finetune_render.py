"""Training prompts equal, string for string and token for token, what the RoleBench tasks give lm-eval."""

from __future__ import annotations

import json

import msgspec
import pytest
from rolebench_eval.finetune.args import RecipeError, RoleBenchArguments
from rolebench_eval.finetune.data import Sample, build_mix
from rolebench_eval.provenance import (
    PROVENANCE_FILE,
    check_adapter_provenance,
    provenance_warnings,
)
from rolebench_eval.finetune.render import IGNORE_INDEX, Renderer
from rolebench_eval.provenance import chat_template_sha256
from rolebench_eval.prompts import PROMPT_VERSION, plain_prompt, role_prompt
from rolebench_eval.outputs.adapter import Provenance
from rolebench_eval.source import load_split

SPLITS = ["general_en", "specific_en", "general_zh", "specific_zh"]


@pytest.fixture
def tasks(fixture_data_dir):
    """One RoleBenchTask per split, as lm-eval builds them (fresh per test: a task caches its template probe)."""
    from lm_eval.tasks import get_task_dict

    from rolebench_eval.tasks.runner import task_manager

    tm = task_manager(metadata={"data_dir": str(fixture_data_dir)})
    return get_task_dict([f"rolebench_{s}" for s in SPLITS], tm)


def _hflm(model_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(model_dir), device="cpu", batch_size=1)


def _train_docs_and_samples(fixture_data_dir, split):
    """The task's documents for the split's *train* items, and our training samples of the same items."""
    from rolebench_eval.tasks.task import build_docs

    docs = build_docs(load_split(split, fixture_data_dir, file="train"))
    args = RoleBenchArguments(data_dir=str(fixture_data_dir), splits=[split], references_per_item=5)
    return docs, build_mix(args, seed=0).train


@pytest.mark.parametrize("model, chat", [("tiny_llama", True), ("tiny_llama_no_system", True), ("tiny_llama", False)])
def test_prompts_equal_the_tasks_rendering(request, tasks, fixture_data_dir, model, chat):
    model_dir = request.getfixturevalue(model)
    lm = _hflm(model_dir)
    renderer = Renderer(lm.tokenizer, "chat" if chat else "plain")
    checked = 0
    for split in SPLITS:
        task = tasks[f"rolebench_{split}"]
        docs, samples = _train_docs_and_samples(fixture_data_dir, split)
        for doc in docs:
            expected = task.fewshot_context(doc, 0, apply_chat_template=chat,
                                            chat_template=lm.apply_chat_template if chat else None)
            for sample in (s for s in samples if (s.role, s.question) == (doc["role"], doc["question"])):
                assert renderer.prompt(sample) == expected
                row = renderer.encode(sample, max_length=512)
                context_ids = lm.tok_encode(expected)
                assert row["input_ids"][: len(context_ids)] == context_ids  # the tokens lm-eval feeds the model
                assert row["labels"][: len(context_ids)] == [IGNORE_INDEX] * len(context_ids)
                assert row["labels"][len(context_ids):] == row["input_ids"][len(context_ids):]
                checked += 1
    assert checked == 7  # every train sample of the fixture (general_en: 3 + 1 references, others: 1 each)
    if model == "tiny_llama_no_system":
        assert renderer.placement == "user" and task._template_keeps_system(lm.apply_chat_template) is False
    elif chat:
        assert renderer.placement == "system"


def test_completion_is_the_answer_closed_like_a_template_turn(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    sample = Sample("老船长", "zh", "specific", " 老船长，您怕风暴吗？", " 怕？老夫见过的风暴比你吃过的饭还多。", None, "s", 0)
    prompt, completion = Renderer(tok, "chat").pair(sample)
    assert prompt == f"<|system|>\n{role_prompt('老船长', 'zh')}</s>\n<|user|>\n老船长，您怕风暴吗？</s>\n<|assistant|>\n"
    assert completion == "怕？老夫见过的风暴比你吃过的饭还多。</s>\n"
    row = Renderer(tok, "chat").encode(sample, 512)
    answer_ids = [t for t in row["labels"] if t != IGNORE_INDEX]
    assert tok.decode(answer_ids) == completion and tok.eos_token_id in answer_ids
    prompt, completion = Renderer(tok, "plain").pair(sample)
    assert (prompt, completion) == (plain_prompt(role_prompt("老船长", "zh"), sample.question),
                                    "怕？老夫见过的风暴比你吃过的饭还多。</s>")


def test_auto_format_and_unsplittable_templates(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert Renderer(tok).format == "chat"
    tok.chat_template = tok.chat_template.replace("<|assistant|>\n{% endif %}", "<|assistant|>\n<think>{% endif %}")
    sample = Sample("r", "en", "general", "q", "a", None, "s", 0)
    with pytest.raises(RecipeError, match="does not start with its own generation prompt"):
        Renderer(tok, "chat").pair(sample)
    tok.chat_template = None
    assert Renderer(tok).format == "plain"
    with pytest.raises(RecipeError, match="no chat template"):
        Renderer(tok, "chat")


def test_prompt_overflow_is_dropped_and_long_answers_cut(tiny_llama):
    from transformers import AutoTokenizer

    renderer = Renderer(AutoTokenizer.from_pretrained(tiny_llama), "chat")
    short = Sample("r", "en", "general", "q", "a " * 200, None, "s", 0)
    prompt_len = len(renderer.tokenizer(renderer.prompt(short))["input_ids"])
    rows, stats = renderer.encode_all([short], max_length=prompt_len + 5)
    assert len(rows[0]["input_ids"]) == prompt_len + 5 and stats == {"dropped_prompt_too_long": 0, "answer_cut_at_max_length": 1}
    rows, stats = renderer.encode_all([short], max_length=prompt_len)
    assert rows == [] and stats["dropped_prompt_too_long"] == 1


def test_template_hash_matches_lm_eval(tiny_llama):
    from lm_eval.utils import hash_string
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert chat_template_sha256(tok) == hash_string(tok.chat_template)  # lm-eval's results "chat_template_sha"


RECORD = {"prompt": {"format": "chat", "prompt_version": PROMPT_VERSION, "chat_template_sha256": "abc"},
          "base_model": {"name_or_path": "org/base"}}


@pytest.mark.parametrize("record_patch, kwargs, expected", [
    ({}, {}, []),
    ({"prompt": {"format": "chat", "prompt_version": "0", "chat_template_sha256": "abc"}}, {}, ["role-prompt version mismatch"]),
    ({}, {"chat_template_sha256": "xyz"}, ["chat template mismatch"]),
    ({}, {"apply_chat_template": False}, ["without --apply_chat_template"]),
    ({"prompt": {"format": "plain", "prompt_version": PROMPT_VERSION}}, {"apply_chat_template": True}, ["plain-text prompts"]),
    ({"prompt": {"format": "plain", "prompt_version": PROMPT_VERSION}}, {"apply_chat_template": False}, []),
    ({}, {"base": "org/other"}, ["base model mismatch"]),
])
def test_provenance_warnings(record_patch, kwargs, expected):
    args = {"base": "org/base", "prompt_version": PROMPT_VERSION, "chat_template_sha256": "abc"} | kwargs
    warnings = provenance_warnings(msgspec.convert(RECORD | record_patch, Provenance), **args)
    assert len(warnings) == len(expected) and all(e in w for e, w in zip(expected, warnings))


def test_check_adapter_provenance_reads_the_evaluated_tokenizer(tmp_path, tiny_llama, tiny_llama_no_system):
    from transformers import AutoTokenizer

    assert check_adapter_provenance(tmp_path, str(tiny_llama), PROMPT_VERSION) == []  # no provenance file
    sha = chat_template_sha256(AutoTokenizer.from_pretrained(tiny_llama))
    record = {"prompt": {"format": "chat", "prompt_version": PROMPT_VERSION, "chat_template_sha256": sha},
              "base_model": {"name_or_path": str(tiny_llama)}}
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert check_adapter_provenance(tmp_path, str(tiny_llama), PROMPT_VERSION, apply_chat_template=True) == []
    warnings = check_adapter_provenance(tmp_path, str(tiny_llama_no_system), "2")
    assert [w.split(":")[0] for w in warnings] == ["role-prompt version mismatch", "chat template mismatch",
                                                   "base model mismatch"]
    (tmp_path / PROVENANCE_FILE).write_text("{not json", encoding="utf-8")
    assert "unreadable provenance file" in check_adapter_provenance(tmp_path, str(tiny_llama), PROMPT_VERSION)[0]
