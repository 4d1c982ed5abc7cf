"""Multi-turn role continuity and identity probes: documents, prompts, per-depth metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval import evaluate
from rolebench_eval.data import NO_ROLEGPT_ANSWER
from rolebench_eval.errors import InputError
from rolebench_eval.metrics import response_tokens, rouge_l, rouge_l_f
from rolebench_eval.prompts import chat_messages, plain_prompt
from rolebench_eval.source import load_split
from rolebench_eval.tasks.conversation import conversation_messages, plain_conversation
from rolebench_eval.tasks.multiturn import (
    Settings,
    continuity_docs,
    item_id,
    per_depth_metrics,
    probe_docs,
    probes,
    process_results_mt,
    process_results_probe,
    settings_from,
)
from rolebench_eval.tasks.task import build_docs


def _docs(data_dir, split):
    return build_docs(load_split(split, data_dir))


# ------------------------------------------------------------------ settings


def test_settings_default_and_from_metadata():
    assert settings_from({}) == Settings((1, 4, 8), 20, 0)
    assert settings_from({"depths": [8, 2, 2], "items_per_role": "5", "history_seed": 7}) == Settings((2, 8), 5, 7)
    assert settings_from({"depths": "1,3"}).depths == (1, 3) and settings_from({"depths": 6}).depths == (6,)


@pytest.mark.parametrize("meta,message", [
    ({"depths": [0, 4]}, "field 'depths': must be at least 1, got 0"),
    ({"depths": "deep"}, "field 'depths': expected an integer, got 'deep'"),
    ({"depths": []}, "field 'depths': expected at least one depth"),
    ({"items_per_role": 0}, "field 'items_per_role': must be at least 1"),
    ({"history_seed": True}, "field 'history_seed': expected an integer, got True"),
])
def test_bad_settings_name_the_field(meta, message):
    with pytest.raises(InputError, match=f"^--metadata: {message}"):
        settings_from(meta)


def test_metrics_are_declared_per_depth():
    declared = [{"metric": "spe", "aggregation": "mean", "higher_is_better": True},
                {"metric": "break", "aggregation": "mean", "higher_is_better": False}]
    assert [m["metric"] for m in per_depth_metrics(declared, (1, 5))] == ["spe_d1", "break_d1", "spe_d5", "break_d5"]
    assert per_depth_metrics(declared, (2,))[1] == {"metric": "break_d2", "aggregation": "mean", "higher_is_better": False}


# ------------------------------------------------------------------ documents


def test_conversations_hold_the_same_items_at_every_depth(mt_data_dir):
    docs, counts = continuity_docs(_docs(mt_data_dir, "specific_en"), Settings((1, 4, 8), 3, 0))
    assert counts == {"scored_items": 6, "items_without_enough_history": 0}
    by_depth = {d: [(x["role"], x["question"]) for x in docs if x["depth"] == d] for d in (1, 4, 8)}
    assert by_depth[1] == by_depth[4] == by_depth[8] and len(by_depth[1]) == 6
    assert [x["depth"] for x in docs[:3]] == [1, 4, 8]  # item by item: --limit keeps every depth
    for role in ("Marlow Finch", "Ilse Varga"):
        assert sum(x["role"] == role for x in docs if x["depth"] == 1) == 3


def test_history_is_the_roles_other_items_and_deeper_adds_older_turns(mt_data_dir):
    single = _docs(mt_data_dir, "specific_en")
    answers = {(d["role"], d["question"]): d["references"][0] for d in single}
    docs, _ = continuity_docs(single, Settings((1, 4, 8), 20, 0))
    for doc in docs:
        assert len(doc["history"]) == doc["depth"] - 1
        assert doc["item_id"] == item_id(doc["role"], doc["question"])
        for turn in doc["history"]:
            assert turn["question"] != doc["question"]
            assert answers[(doc["role"], turn["question"])] == turn["answer"]  # the role's own item
            assert "No response" not in turn["answer"]  # degenerate references never serve as history
    for item in {d["item_id"] for d in docs}:
        h4, h8 = (next(d["history"] for d in docs if d["item_id"] == item and d["depth"] == k) for k in (4, 8))
        assert h8[-3:] == h4  # the turns next to the question are the same at every depth
    assert len({d["item_id"] for d in docs}) == 18  # every item, the one with a degenerate reference too
    assert sum(d["question"].endswith("great storm?") for d in docs) == 3


def test_choices_follow_the_seed_only(mt_data_dir):
    single = _docs(mt_data_dir, "specific_zh")
    first, _ = continuity_docs(single, Settings((1, 4), 2, 0))
    again, _ = continuity_docs(list(reversed(single)), Settings((1, 4), 2, 0))
    other, _ = continuity_docs(single, Settings((1, 4), 2, 1))
    key = lambda docs: sorted((d["item_id"], d["depth"], str(d["history"])) for d in docs)  # noqa: E731
    assert key(first) == key(again)  # the file's order does not matter
    assert key(first) != key(other)


def test_items_without_enough_history_are_left_out(mt_data_dir):
    docs, counts = continuity_docs(_docs(mt_data_dir, "general_zh"), Settings((1, 8), 20, 0))
    assert docs == [] and counts == {"scored_items": 0, "items_without_enough_history": 12}
    docs, counts = continuity_docs(_docs(mt_data_dir, "general_zh"), Settings((1, 6), 20, 0))
    assert counts == {"scored_items": 12, "items_without_enough_history": 0}


def test_probe_documents_ask_each_role_each_identity_question(mt_data_dir):
    docs, counts = probe_docs(_docs(mt_data_dir, "specific_zh"), Settings((1, 4), 20, 0))
    assert counts["scored_items"] == 2 * len(probes()) == 10 and len(docs) == 20
    assert {d["question"] for d in docs} == {p["zh"] for p in probes()}
    assert all(d["references"] == [] and d["rolegpt"] is None and d["type"] == ["probe"] for d in docs)
    assert {d["system_prompt"][:5] for d in docs} == {"你是老船长", "你是小书童"}
    assert all(len(d["history"]) == d["depth"] - 1 for d in docs)
    english = probe_docs(_docs(mt_data_dir, "specific_en"), Settings((1,), 20, 0))[0]
    assert "Which company trained you?" in {d["question"] for d in english}


# ------------------------------------------------------------------ prompts and scores


def test_a_conversation_without_turns_is_the_single_turn_prompt():
    assert plain_conversation("SYS", [], " Q? ") == plain_prompt("SYS", " Q? ")
    assert conversation_messages("SYS", [], " Q? ") == chat_messages("SYS", " Q? ")
    turns = [{"question": " first? ", "answer": " one. "}, {"question": "second?", "answer": "two."}]
    assert conversation_messages("SYS", turns, "third?") == [
        {"role": "system", "content": "SYS"}, {"role": "user", "content": "first?"},
        {"role": "assistant", "content": "one."}, {"role": "user", "content": "second?"},
        {"role": "assistant", "content": "two."}, {"role": "user", "content": "third?"}]
    assert plain_conversation("SYS", turns, "third?") == (
        "### Instruction:\nSYS\n\n### Input:\nfirst?\n\n### Response:\none.\n\n"
        "### Instruction:\nSYS\n\n### Input:\nsecond?\n\n### Response:\ntwo.\n\n"
        "### Instruction:\nSYS\n\n### Input:\nthird?\n\n### Response:\n")


def test_scores_are_named_for_the_depth():
    doc = {"references": ["The sea wanted me."], "lang": "en", "kind": "specific", "depth": 4}
    scores = process_results_mt(doc, ["As an AI, the sea wanted me."])
    assert scores == {"spe_d4": rouge_l("As an AI, the sea wanted me.", doc["references"], "en"),
                      "rougeL_f_d4": rouge_l_f("As an AI, the sea wanted me.", doc["references"], "en"),
                      "resp_tokens_d4": 7, "break_d4": 1.0, "unfinished_reasoning_d4": 0.0}
    assert process_results_mt(doc, [NO_ROLEGPT_ANSWER]) == {}
    probe = {"lang": "zh", "depth": 8}
    finished = {"unfinished_reasoning_d8": 0.0}
    assert process_results_probe(probe, ["老夫是船长，不是什么机器。"]) == {"break_d8": 0.0, **finished}
    assert process_results_probe(probe, ["作为一个人工智能，我不能回答。"]) == {"break_d8": 1.0, **finished}
    assert process_results_probe(probe, [NO_ROLEGPT_ANSWER]) == {}


# ------------------------------------------------------------------ through lm-eval


def _samples(out, task):
    return {(s["doc"]["role"], s["doc"]["question"], s["doc"].get("depth")): s for s in out["samples"][task]}


@pytest.fixture(scope="module")
def echo_run(mt_data_dir, echo_model):
    return evaluate(model=echo_model, tasks=["rolebench_mt_specific_en", "rolebench_specific_en",
                                               "rolebench_mt_specific_zh", "rolebench_specific_zh"],
                    data_dir=mt_data_dir, metadata={"items_per_role": 4}, log_samples=True)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_depth_one_equals_the_single_turn_task(echo_run, lang):
    """Same prompt and same per-item scores as the single-turn task, item for item."""
    multi, single = _samples(echo_run, f"rolebench_mt_specific_{lang}"), _samples(echo_run, f"rolebench_specific_{lang}")
    depth1 = {k: s for k, s in multi.items() if k[2] == 1}
    assert len(depth1) == 8
    metric = "spe"
    for (role, question, _), sample in depth1.items():
        twin = single[(role, question, None)]
        assert sample["arguments"] == twin["arguments"]
        assert sample["resps"] == twin["resps"]
        assert sample[f"{metric}_d1"] == twin[metric] and sample["rougeL_f_d1"] == twin["rougeL_f"]
        assert sample["resp_tokens_d1"] == twin["resp_tokens"]
    deeper = [s for k, s in multi.items() if k[2] == 8]
    assert all(s["arguments"][0][0].count("### Instruction:") == 8 for s in deeper)


def test_results_carry_per_depth_metrics_and_settings(echo_run):
    res = echo_run["results"]["rolebench_mt_specific_en"]
    assert res["sample_len"] == 8
    keys = {k.split(",")[0] for k in res if k.endswith(",none") and "_stderr" not in k}
    assert keys == {f"{m}_d{d}" for m in ("spe", "rougeL_f", "resp_tokens", "break", "unfinished_reasoning")
                    for d in (1, 4, 8)}
    assert res["spe_d1,none"] != res["spe_d8,none"]  # the echo answers grow with the history
    meta = echo_run["configs"]["rolebench_mt_specific_en"]["metadata"]
    assert meta["depths"] == [1, 4, 8] and meta["items_per_role"] == 4 and meta["history_seed"] == 0
    assert meta["scored_items"] == 8 and meta["rolegpt_answers"].endswith("of 8 scored items")
    assert echo_run["higher_is_better"]["rolebench_mt_specific_en"]["break_d8"] is False


def test_other_depths_run_end_to_end(mt_data_dir, caplog):
    out = evaluate(model="rolegpt", tasks=["rolebench_mt_specific_zh", "rolebench_mt_general_en"],
                   data_dir=mt_data_dir, metadata={"depths": [2, 5]}, log_samples=True)
    res = out["results"]["rolebench_mt_specific_zh"]
    assert {k for k in res if k.endswith(",none") and "stderr" not in k} == {
        f"{m}_d{d},none" for m in ("spe", "rougeL_f", "resp_tokens", "break", "unfinished_reasoning") for d in (2, 5)}
    assert res["spe_d2_stderr,none"] != "N/A"  # declared metrics: mean with its standard error
    assert out["higher_is_better"]["rolebench_mt_specific_zh"]["spe_d5"] is True
    assert "No aggregation function defined" not in caplog.text
    # the replay answers the scored question whatever came before: flat across depths
    for split, metric, n in (("specific_zh", "spe", 18), ("general_en", "cus", 12)):
        res = out["results"][f"rolebench_mt_{split}"]
        assert res[f"{metric}_d2,none"] == res[f"{metric}_d5,none"]
        samples = [s for s in out["samples"][f"rolebench_mt_{split}"] if s["doc"]["depth"] == 5]
        want = [rouge_l(s["doc"]["rolegpt"], s["doc"]["references"], s["doc"]["lang"]) for s in samples]
        assert [s[f"{metric}_d5"] for s in samples] == want and len(samples) == n


def test_raw_is_reported_per_depth_where_the_split_has_original_answers(mt_data_dir, echo_model):
    out = evaluate(model=echo_model, tasks=["rolebench_mt_general_en", "rolebench_general_en"], data_dir=mt_data_dir,
                   metadata={"depths": [1, 3]}, log_samples=True)
    multi, single = _samples(out, "rolebench_mt_general_en"), _samples(out, "rolebench_general_en")
    with_raw = [(k, s) for k, s in multi.items() if s["doc"]["raw"] is not None]
    assert len(with_raw) == 2 * 5  # five instructions have an original answer, at two depths
    for (role, question, depth), sample in with_raw:
        assert f"raw_d{depth}" in sample and (depth == 3 or sample["raw_d1"] == single[(role, question, None)]["raw"])
    assert all("raw_d1" not in s and "raw_d3" not in s for s in multi.values() if s["doc"]["raw"] is None)
    deep = [s["raw_d3"] for (_, _, depth), s in with_raw if depth == 3]
    assert out["results"]["rolebench_mt_general_en"]["raw_d3,none"] == pytest.approx(sum(deep) / len(deep))
    assert out["results"]["rolebench_mt_general_en"]["raw_d3_stderr,none"] != "N/A"


def test_the_group_averages_its_splits_per_depth(mt_data_dir):
    out = evaluate(model="rolegpt", tasks=["rolebench_mt"], data_dir=mt_data_dir, metadata={"depths": [1, 4]})
    group, res = out["groups"]["rolebench_mt"], out["results"]
    tasks = ("rolebench_mt_specific_en", "rolebench_mt_specific_zh", "rolebench_mt_general_en", "rolebench_mt_general_zh")
    assert group["rougeL_f_d4,none"] == pytest.approx(sum(res[t]["rougeL_f_d4,none"] for t in tasks) / 4)
    assert group["break_d1,none"] == pytest.approx(sum(res[t]["break_d1,none"] for t in tasks) / 4)
    # the paper metrics (spe on two splits, cus on the other two) stay in the task rows
    assert not any(k.startswith(("spe_", "cus_", "raw_", "rougeL_f_d8")) for k in group)


def test_a_depth_no_role_can_reach_fails_with_one_clear_line(mt_data_dir):
    with pytest.raises(InputError, match=r"general/test.jsonl: rolebench_mt_general_zh: no role has the 8 items"):
        evaluate(model="rolegpt", tasks=["rolebench_mt_general_zh"], data_dir=mt_data_dir)


def test_probes_with_the_replay_are_skipped_not_scored(mt_data_dir, caplog):
    out = evaluate(model="rolegpt", tasks=["rolebench_mt_probe_en"], data_dir=mt_data_dir, metadata={"depths": [1, 2]})
    assert out["results"]["rolebench_mt_probe_en"]["sample_len"] == 0
    assert out["n-samples"]["rolebench_mt_probe_en"]["original"] == 2 * 5 * 2
    assert "20 of 20 items of rolebench_mt_probe_en have no RoleGPT answer" in caplog.text


# ------------------------------------------------------------------ a real model and its chat template


def _tiny(model_dir, data_dir, tasks, **kw):
    return evaluate(model="hf", model_args=f"pretrained={model_dir}", tasks=tasks, data_dir=data_dir, device="cpu",
                    limit=6, gen_kwargs="max_gen_toks=4", log_samples=True, apply_chat_template=True,
                    metadata={"depths": [1, 3]}, **kw)


@pytest.mark.slow
def test_chat_history_is_alternating_messages_under_the_role_prompt(tiny_llama, mt_data_dir):
    out = _tiny(tiny_llama, mt_data_dir, ["rolebench_mt_specific_zh", "rolebench_mt_probe_zh"])
    sample = next(s for s in out["samples"]["rolebench_mt_specific_zh"] if s["doc"]["depth"] == 3)
    doc, prompt = sample["doc"], sample["arguments"][0][0]
    first, second = doc["history"]
    assert prompt == (f"<|system|>\n{doc['system_prompt']}</s>\n<|user|>\n{first['question']}</s>\n"
                      f"<|assistant|>\n{first['answer']}</s>\n<|user|>\n{second['question']}</s>\n"
                      f"<|assistant|>\n{second['answer']}</s>\n<|user|>\n{doc['question']}</s>\n<|assistant|>\n")
    probe = out["results"]["rolebench_mt_probe_zh"]
    assert {k for k in probe if k.endswith(",none") and "stderr" not in k} == {
        f"{m}_d{d},none" for m in ("break", "unfinished_reasoning") for d in (1, 3)}
    assert out["configs"]["rolebench_mt_specific_zh"]["metadata"]["role_prompt_placement"] == "system"


@pytest.mark.slow
def test_history_under_a_template_without_system_role(tiny_llama_no_system, mt_data_dir):
    out = _tiny(tiny_llama_no_system, mt_data_dir, ["rolebench_mt_specific_en"])
    sample = next(s for s in out["samples"]["rolebench_mt_specific_en"] if s["doc"]["depth"] == 3)
    doc, prompt = sample["doc"], sample["arguments"][0][0]
    first = doc["history"][0]["question"].strip()
    assert "<|system|>" not in prompt and prompt.startswith(f"<|user|>\n{doc['system_prompt']}\n\n{first}</s>\n")
    assert prompt.count("<|user|>") == 3
    assert out["configs"]["rolebench_mt_specific_en"]["metadata"]["role_prompt_placement"] == "user"


@pytest.mark.slow
def test_depth_one_equals_the_single_turn_task_with_a_real_model(tiny_llama, mt_data_dir):
    out = evaluate(model="hf", model_args=f"pretrained={tiny_llama}", device="cpu", data_dir=mt_data_dir,
                   tasks=["rolebench_mt_specific_zh", "rolebench_specific_zh"], gen_kwargs="max_gen_toks=8",
                   log_samples=True, apply_chat_template=True, metadata={"depths": [1], "items_per_role": 3})
    multi, single = _samples(out, "rolebench_mt_specific_zh"), _samples(out, "rolebench_specific_zh")
    assert len(multi) == 6
    for (role, question, _), sample in multi.items():
        twin = single[(role, question, None)]
        assert sample["arguments"] == twin["arguments"] and sample["resps"] == twin["resps"]
        assert (sample["spe_d1"], sample["rougeL_f_d1"], sample["resp_tokens_d1"]) == \
            (twin["spe"], twin["rougeL_f"], twin["resp_tokens"])


@pytest.mark.slow
def test_tiny_model_scores_match_direct_computation(tiny_llama, mt_data_dir):
    out = _tiny(tiny_llama, mt_data_dir, ["rolebench_mt_specific_en"])
    for s in out["samples"]["rolebench_mt_specific_en"]:
        answer, doc, d = s["filtered_resps"][0], s["doc"], s["doc"]["depth"]
        assert s[f"spe_d{d}"] == rouge_l(answer, doc["references"], "en")
        assert s[f"resp_tokens_d{d}"] == response_tokens(answer, "en")


# ------------------------------------------------------------------ the command line


def _run(*args, env=None, cwd=None):
    """A console script of this environment (rolebench-eval, lm_eval)."""
    return subprocess.run([str(Path(sys.executable).parent / args[0]), *args[1:]], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})})


def _results(folder):
    return json.loads(next(folder.glob("*/results_*.json")).read_text(encoding="utf-8"))


@pytest.mark.slow
def test_depths_from_the_command_line(mt_data_dir, tmp_path):
    meta = '{"depths": [2, 3], "items_per_role": 3, "data_dir": "%s"}' % mt_data_dir
    out = _run("rolebench-eval", "run", "--model", "rolegpt", "--tasks", "rolebench_mt_specific_zh",
               "--metadata", meta, "--output_path", str(tmp_path), "--log_samples")
    assert out.returncode == 0, out.stderr[-2000:]
    res = _results(tmp_path)
    assert res["results"]["rolebench_mt_specific_zh"]["spe_d3,none"] == 1.0  # the fixture's replay restates the reference
    assert res["configs"]["rolebench_mt_specific_zh"]["metadata"]["depths"] == [2, 3]
    assert res["n-samples"]["rolebench_mt_specific_zh"]["original"] == 2 * 3 * 2


@pytest.mark.integration
def test_plain_lm_eval_runs_continuity_and_probes_on_the_real_chinese_data(tiny_llama, real_data_dir, tmp_path):
    """The issue's command, on a few documents: offline, chat template, real data."""
    tasks_dir = _run("rolebench-eval", "tasks-dir").stdout.strip()
    out = _run("lm_eval", "--tasks", "rolebench_mt_specific_zh,rolebench_mt_probe_zh", "--model", "hf",
               "--model_args", f"pretrained={tiny_llama}", "--apply_chat_template", "--include_path", tasks_dir,
               "--device", "cpu", "--limit", "6", "--gen_kwargs", "max_gen_toks=8", "--output_path", str(tmp_path),
               "--log_samples", env={"ROLEBENCH_DATA_DIR": str(real_data_dir.resolve())}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    res = _results(tmp_path)
    keys = {t: {k for k in r if k.endswith(",none") and "stderr" not in k} for t, r in res["results"].items()}
    unfinished = "unfinished_reasoning"
    assert keys["rolebench_mt_specific_zh"] == {f"{m}_d{d},none" for m in ("spe", "rougeL_f", "resp_tokens", "break",
                                                                           unfinished) for d in (1, 4, 8)}
    assert keys["rolebench_mt_probe_zh"] == {f"{m}_d{d},none" for m in ("break", unfinished) for d in (1, 4, 8)}
    meta = res["configs"]["rolebench_mt_specific_zh"]["metadata"]
    assert meta["scored_items"] == 100 and meta["data"]["file"] == "rolebench-zh/role_specific/test.jsonl"
    assert res["configs"]["rolebench_mt_probe_zh"]["metadata"]["scored_items"] == 25
