"""The prompting-study variants: BM25 demonstrations, the two layouts, prompt_tokens."""

from __future__ import annotations

import shutil

import pytest

from rolebench_eval import evaluate
from rolebench_eval.errors import InputError
from rolebench_eval.generate.profile import DialoguePair
from rolebench_eval.generate.retrieval import DialogueIndex
from rolebench_eval.generate.retrieval import tokenize as generate_tokenize
from rolebench_eval.metrics import response_tokens
from rolebench_eval.prompts import plain_prompt
from rolebench_eval.retrieval import BM25Index, tokenize
from rolebench_eval.source import load_split
from rolebench_eval.tasks.conversation import plain_conversation
from rolebench_eval.tasks.studies import PAPER_TOKENS, demonstrations, fewshot_user_turn, k_from
from rolebench_eval.tasks.task import build_docs


# ------------------------------------------------------------------ retrieval (ground)

TEXTS = ["Where's the WRECK?", "沉船在哪？", "The wreck lies north, lad.", "", "Fog shut the harbour. Aye!",
         "Ｆｕｌｌ－width ＡＢＣ", "北边的冰山比船还高。", "storm storm storm"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_tokenisation_is_data_generations(lang):
    assert [tokenize(t, lang) for t in TEXTS] == [generate_tokenize(t, lang) for t in TEXTS]


@pytest.mark.parametrize("lang,query", [("en", "where is the wreck in the storm"), ("zh", "冰山在哪边？")])
def test_bm25_ranks_as_data_generation_does(lang, query):
    pairs = [DialoguePair(user=t, assistant=TEXTS[(i + 3) % len(TEXTS)]) for i, t in enumerate(TEXTS)]
    ours = BM25Index([f"{p.user}\n{p.assistant}" for p in pairs], lang)
    theirs = DialogueIndex(pairs, lang)
    assert ours.scores(query) == theirs.scores(query) and max(ours.scores(query)) > 0
    assert [pairs[i] for i in ours.top_k(query, 4)] == theirs.top_k(query, 4)
    best = ours.top_k(query, 1)[0]
    assert best not in ours.top_k(query, 3, exclude=lambda i: i == best)
    assert BM25Index([], lang).top_k(query, 3) == [] and ours.top_k(query, 0) == []


# ------------------------------------------------------------------ documents and layouts


def test_fewshot_turn_is_the_bare_question_without_demonstrations():
    assert fewshot_user_turn([], " Q? ", "en") == " Q? "
    demos = [{"question": " A? ", "answer": " a. "}, {"question": "B?", "answer": "b."}]
    assert fewshot_user_turn(demos, " Q? ", "en") == (
        "Here are some questions you were asked before, with your answers:\n\n"
        "Question: A?\nAnswer: a.\n\nQuestion: B?\nAnswer: b.\n\nNow answer this question:\nQ?")
    assert fewshot_user_turn(demos[:1], "问？", "zh") == (
        "以下是你以前被问过的一些问题和你的回答：\n\n问题：A?\n回答：a.\n\n现在请回答这个问题：\n问？")


@pytest.mark.parametrize("value", [-1, "three", True, 1.5])
def test_bad_k_names_the_field(value):
    with pytest.raises(InputError, match="^--metadata: field 'k': expected a number of demonstrations"):
        k_from({"k": value})


def test_demonstrations_come_from_the_roles_train_items_never_the_question(mt_data_dir):
    test, train = load_split("specific_zh", mt_data_dir), load_split("specific_zh", mt_data_dir, file="train")
    docs = build_docs(test)
    demos = demonstrations(docs, train.items, "zh", 3)
    by_role = {}
    for item in train.items:
        by_role.setdefault(item.role, {})[item.question] = item.references[0]
    for doc, shots in zip(docs, demos):
        assert all(by_role[doc["role"]][s["question"]] == s["answer"] for s in shots)
        assert all(s["question"].strip() != doc["question"].strip() for s in shots)
        assert len(shots) == (3 if doc["role"] == "老船长" else 2)  # 小书童 has two train items
    storm = next(i for i, d in enumerate(docs) if d["question"] == "老船长，您怕风暴吗？")  # also a train question
    assert "老船长，您怕风暴吗？" not in [s["question"] for s in demos[storm]]
    index = BM25Index([f"{q}\n{a}" for q, a in by_role["老船长"].items()], "zh")
    scores = dict(zip(by_role["老船长"], index.scores(docs[0]["question"])))
    ranked = [scores[s["question"]] for s in demos[0]]
    assert ranked == sorted(ranked)  # the most similar last, next to the question


# ------------------------------------------------------------------ through lm-eval

ZERO_SHOT = {"specific_en": ("spe", 18), "general_zh": ("cus", 12)}


def _by_item(out, task):
    return {(s["doc"]["role"], s["doc"]["question"]): s for s in out["samples"][task]}


@pytest.fixture(scope="module")
def zero_k_run(mt_data_dir, echo_model):
    tasks = [f"rolebench_{split}{variant}" for split in ZERO_SHOT for variant in ("", "_fewshot", "_dialogue")]
    return evaluate(model=echo_model, tasks=tasks, data_dir=mt_data_dir, metadata={"k": 0}, log_samples=True)


@pytest.mark.parametrize("split", sorted(ZERO_SHOT))
@pytest.mark.parametrize("variant", ["fewshot", "dialogue"])
def test_without_demonstrations_both_layouts_are_the_zero_shot_task(zero_k_run, split, variant):
    metric, n = ZERO_SHOT[split]
    zero, study = _by_item(zero_k_run, f"rolebench_{split}"), _by_item(zero_k_run, f"rolebench_{split}_{variant}")
    assert study.keys() == zero.keys() and len(study) == n
    for key, sample in study.items():
        assert sample["arguments"] == zero[key]["arguments"] and sample[metric] == zero[key][metric]
        assert sample["prompt_tokens"] == response_tokens(sample["arguments"][0][0], sample["doc"]["lang"])
    meta = zero_k_run["configs"][f"rolebench_{split}_{variant}"]["metadata"]
    assert meta["k"] == 0 and meta["prompt_tokens_unit"] == PAPER_TOKENS
    assert meta["train_data"]["file"].endswith(f"{'general' if 'general' in split else 'role_specific'}/train.jsonl")


@pytest.fixture(scope="module")
def study_run(mt_data_dir, echo_model):
    tasks = [f"rolebench_{s}_{v}" for s in ("specific_en", "specific_zh") for v in ("fewshot", "dialogue")]
    return evaluate(model=echo_model, tasks=tasks, data_dir=mt_data_dir, metadata={"k": 2}, log_samples=True)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demonstrations_in_one_turn_or_as_earlier_turns(study_run, lang):
    fewshot, dialogue = (_by_item(study_run, f"rolebench_specific_{lang}_{v}") for v in ("fewshot", "dialogue"))
    for key, sample in fewshot.items():
        doc = sample["doc"]
        assert len(doc["demonstrations"]) == 2 and doc["demonstrations"] == dialogue[key]["doc"]["demonstrations"]
        assert sample["arguments"][0][0] == plain_prompt(doc["system_prompt"], fewshot_user_turn(
            doc["demonstrations"], doc["question"], lang))
        assert dialogue[key]["arguments"][0][0] == plain_conversation(doc["system_prompt"], doc["demonstrations"],
                                                                      doc["question"])
    res = study_run["results"]
    assert res[f"rolebench_specific_{lang}_dialogue"]["prompt_tokens,none"] > \
        res[f"rolebench_specific_{lang}_fewshot"]["prompt_tokens,none"]  # the plain layout repeats the role prompt


def test_replay_scores_do_not_depend_on_the_layout(mt_data_dir):
    out = evaluate(model="rolegpt", tasks=["rolebench_specific_en", "rolebench_specific_en_fewshot",
                                           "rolebench_specific_en_dialogue"], data_dir=mt_data_dir)
    res = out["results"]
    assert res["rolebench_specific_en"]["spe,none"] == res["rolebench_specific_en_fewshot"]["spe,none"] \
        == res["rolebench_specific_en_dialogue"]["spe,none"]
    assert res["rolebench_specific_en_fewshot"]["sample_len"] == 17  # one item has no RoleGPT answer


def test_a_missing_train_split_fails_with_one_clear_line(mt_data_dir, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(mt_data_dir, root)
    (root / "rolebench-eng/instruction-generalization/role_specific/train.jsonl").unlink()
    with pytest.raises(InputError, match=r"role_specific/train.jsonl: file not found; point ROLEBENCH_DATA_DIR"):
        evaluate(model="rolegpt", tasks=["rolebench_specific_en_dialogue"], data_dir=root)


@pytest.mark.slow
def test_chat_layouts_and_prompt_tokens_in_the_models_tokenizer(tiny_llama, mt_data_dir):
    from transformers import AutoTokenizer

    out = evaluate(model="hf", model_args=f"pretrained={tiny_llama}", device="cpu", limit=3,
                   tasks=["rolebench_specific_zh_fewshot", "rolebench_specific_zh_dialogue"], data_dir=mt_data_dir,
                   gen_kwargs="max_gen_toks=4", log_samples=True, apply_chat_template=True, metadata={"k": 2})
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    sample = out["samples"]["rolebench_specific_zh_dialogue"][0]
    doc, prompt = sample["doc"], sample["arguments"][0][0]
    (q1, a1), (q2, a2) = ((d["question"], d["answer"]) for d in doc["demonstrations"])
    assert prompt == (f"<|system|>\n{doc['system_prompt']}</s>\n<|user|>\n{q1}</s>\n<|assistant|>\n{a1}</s>\n"
                      f"<|user|>\n{q2}</s>\n<|assistant|>\n{a2}</s>\n<|user|>\n{doc['question']}</s>\n<|assistant|>\n")
    for task in ("rolebench_specific_zh_fewshot", "rolebench_specific_zh_dialogue"):
        assert out["configs"][task]["metadata"]["prompt_tokens_unit"] == "model tokenizer"
        for s in out["samples"][task]:
            assert s["prompt_tokens"] == len(tokenizer(s["arguments"][0][0])["input_ids"])
    fewshot = out["samples"]["rolebench_specific_zh_fewshot"][0]["arguments"][0][0]
    assert fewshot.count("<|user|>") == 1 and "以下是你以前被问过的一些问题和你的回答" in fewshot


@pytest.mark.integration
def test_chinese_studies_on_the_real_data(real_data_dir):
    tasks = [f"rolebench_{s}_zh{v}" for s in ("specific", "general") for v in ("", "_fewshot", "_dialogue")]
    out = evaluate(model="rolegpt", tasks=tasks, data_dir=real_data_dir, log_samples=True)
    res = out["results"]
    for split, metric, n in (("specific", "spe", 239), ("general", "cus", 1451)):
        zero = res[f"rolebench_{split}_zh"][f"{metric},none"]
        for variant in ("fewshot", "dialogue"):
            task = f"rolebench_{split}_zh_{variant}"
            assert res[task][f"{metric},none"] == zero and res[task]["sample_len"] == n
            assert out["configs"][task]["metadata"]["items_with_fewer_demonstrations"] == 0
            for s in out["samples"][task]:
                assert len(s["doc"]["demonstrations"]) == 3
                assert s["doc"]["question"].strip() not in {d["question"].strip() for d in s["doc"]["demonstrations"]}
        assert res[f"rolebench_{split}_zh_dialogue"]["prompt_tokens,none"] > \
            res[f"rolebench_{split}_zh_fewshot"]["prompt_tokens,none"]
