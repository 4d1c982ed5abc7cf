"""lm-eval integration: task loading, the rolegpt replay, prompts as models see them."""

from __future__ import annotations

import json
from statistics import mean

import pytest

from rolebench_eval import catalogue, evaluate
from rolebench_eval.metrics import response_tokens, rouge_l, rouge_l_f
from rolebench_eval.prompts import plain_prompt, role_prompt
from rolebench_eval.source import load_split
from rolebench_eval.tasks import TASKS_DIR

TASKS = ["rolebench_general_en", "rolebench_specific_en", "rolebench_rolegen_general_en",
         "rolebench_rolegen_specific_en", "rolebench_general_zh", "rolebench_specific_zh"]
# Your own characters (rolebench-eval generate); in no group.
CUSTOM_TASKS = ["rolebench_custom_general", "rolebench_custom_specific"]
GROUPS = ["rolebench", "rolebench_en", "rolebench_rolegen_en", "rolebench_zh"]


def expected_replay(data_dir, split):
    """What the replay must score, computed directly from the files."""
    data = load_split(split, data_dir)
    lang = data.split.lang
    pairs = [(data.baseline[(i.role, i.question)], i.references) for i in data.items
             if data.baseline and (i.role, i.question) in data.baseline]
    return {
        "n": len(pairs),
        "rouge": mean(rouge_l(h, r, lang) for h, r in pairs) if pairs else None,
        "rougeL_f": mean(rouge_l_f(h, r, lang) for h, r in pairs) if pairs else None,
        "resp_tokens": mean(response_tokens(h, lang) for h, _ in pairs) if pairs else None,
    }


def test_all_tasks_and_groups_are_indexed():
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=TASKS_DIR, include_defaults=False)
    assert sorted(tm.all_tasks) == sorted(catalogue.names())
    assert set(TASKS + CUSTOM_TASKS + GROUPS) <= catalogue.names()


@pytest.fixture(scope="module")
def fixture_run(fixture_data_dir):
    return evaluate(model="rolegpt", tasks=GROUPS[1:], data_dir=fixture_data_dir, log_samples=True)


@pytest.mark.parametrize("task,split,metric", [
    ("rolebench_general_en", "general_en", "cus"),
    ("rolebench_specific_en", "specific_en", "spe"),
    ("rolebench_rolegen_specific_en", "rolegen_specific_en", "spe"),
    ("rolebench_general_zh", "general_zh", "cus"),
    ("rolebench_specific_zh", "specific_zh", "spe"),
])
def test_replay_scores_equal_direct_computation(fixture_run, fixture_data_dir, task, split, metric):
    want = expected_replay(fixture_data_dir, split)
    got = fixture_run["results"][task]
    assert got["sample_len"] == want["n"]
    assert got[f"{metric},none"] == pytest.approx(want["rouge"], abs=1e-12)
    assert got["rougeL_f,none"] == pytest.approx(want["rougeL_f"], abs=1e-12)
    assert got["resp_tokens,none"] == pytest.approx(want["resp_tokens"], abs=1e-12)
    assert ("spe" if metric == "cus" else "cus") + ",none" not in got


def test_replay_skips_items_without_rolegpt_answer(fixture_run, caplog):
    assert fixture_run["n-samples"]["rolebench_specific_en"]["original"] == 3
    assert fixture_run["results"]["rolebench_specific_en"]["sample_len"] == 2  # one has no answer
    general = fixture_run["results"]["rolebench_rolegen_general_en"]  # no baseline file at all
    assert general["sample_len"] == 0 and "cus,none" not in general
    meta = fixture_run["configs"]["rolebench_specific_en"]["metadata"]
    assert meta["rolegpt_answers"] == "2 of 3 items"


def test_groups_average_what_all_their_splits_report(fixture_run):
    res = fixture_run["results"]
    assert res["rolebench_zh"]["rougeL_f,none"] == pytest.approx(
        (res["rolebench_general_zh"]["rougeL_f,none"] + res["rolebench_specific_zh"]["rougeL_f,none"]) / 2)
    assert res["rolebench_en"]["resp_tokens,none"] == pytest.approx(
        (res["rolebench_general_en"]["resp_tokens,none"] + res["rolebench_specific_en"]["resp_tokens,none"]) / 2)
    # a paper metric of one kind is read from its task row, never averaged over half of the group
    assert not {"cus,none", "spe,none", "raw,none"} & (set(res["rolebench_zh"]) | set(res["rolebench_en"]))


def test_a_group_run_gives_no_lm_eval_warning(fixture_data_dir, caplog):
    with caplog.at_level("WARNING"):
        out = evaluate(model="rolegpt", tasks=["rolebench_zh"], data_dir=fixture_data_dir)
    assert out["results"]["rolebench_zh"]["rougeL_f,none"] > 0
    assert not [r.getMessage() for r in caplog.records if "Group 'rolebench_zh'" in r.getMessage()]


def test_results_record_data_provenance_and_versions(fixture_run, fixture_data_dir):
    meta = fixture_run["configs"]["rolebench_specific_zh"]["metadata"]
    assert meta["version"] == 1.1 and meta["prompt_version"] == "1"
    assert meta["data"]["origin"] == "local" and len(meta["data"]["sha256"]) == 64
    assert meta["role_descriptions"] == "0 of 2 roles"
    assert fixture_run["configs"]["rolebench_specific_en"]["metadata"]["role_descriptions"] == "2 of 2 roles"


def test_plain_prompt_carries_the_role_prompt(fixture_run, fixture_data_dir):
    sample = fixture_run["samples"]["rolebench_specific_en"][0]
    doc = sample["doc"]
    desc = load_split("specific_en", fixture_data_dir).descriptions[doc["role"]]
    assert sample["arguments"][0][0] == plain_prompt(role_prompt(doc["role"], "en", desc), doc["question"])


def test_data_dir_from_environment(monkeypatch, fixture_data_dir):
    monkeypatch.setenv("ROLEBENCH_DATA_DIR", str(fixture_data_dir))
    out = evaluate(model="rolegpt", tasks=["rolebench_specific_zh"])
    assert out["results"]["rolebench_specific_zh"]["sample_len"] == 2


def test_bad_data_fails_with_the_file_and_line(tmp_path, fixture_data_dir):
    import shutil

    from rolebench_eval.data import RoleBenchDataError

    root = tmp_path / "copy"
    shutil.copytree(fixture_data_dir, root)
    path = root / "rolebench-zh/role_specific/test.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + '{"role": "x", "question": "y"}\n', encoding="utf-8")
    with pytest.raises(RoleBenchDataError, match=r"test.jsonl:3: field 'generated': missing"):
        evaluate(model="rolegpt", tasks=["rolebench_specific_zh"], data_dir=root)


# ------------------------------------------------------------------ a real model


def _hf_run(model_dir, data_dir, **kw):
    return evaluate(model="hf", model_args=f"pretrained={model_dir}", tasks=["rolebench_specific_zh"],
                    data_dir=data_dir, device="cpu", limit=2, gen_kwargs="max_gen_toks=8", log_samples=True, **kw)


@pytest.mark.slow
def test_tiny_llama_gets_the_role_prompt_as_system_message(tiny_llama, fixture_data_dir):
    out = _hf_run(tiny_llama, fixture_data_dir, apply_chat_template=True)
    prompt = out["samples"]["rolebench_specific_zh"][0]["arguments"][0][0]
    assert prompt.startswith("<|system|>\n你是老船长。现在请你回答") and "</s>\n<|user|>\n老船长，您最难忘" in prompt
    assert set(out["results"]["rolebench_specific_zh"]) >= {"spe,none", "rougeL_f,none", "resp_tokens,none"}
    assert out["configs"]["rolebench_specific_zh"]["metadata"]["role_prompt_placement"] == "system"


@pytest.mark.slow
def test_template_without_system_role_gets_the_prompt_in_the_user_turn(tiny_llama_no_system, fixture_data_dir, caplog):
    out = _hf_run(tiny_llama_no_system, fixture_data_dir, apply_chat_template=True)
    prompt = out["samples"]["rolebench_specific_zh"][0]["arguments"][0][0]
    assert "<|system|>" not in prompt and prompt.startswith("<|user|>\n你是老船长。现在请你回答")
    assert out["configs"]["rolebench_specific_zh"]["metadata"]["role_prompt_placement"] == "user"
    assert "folded into the user turn" in caplog.text


@pytest.mark.slow
def test_tiny_llama_plain_text(tiny_llama, fixture_data_dir):
    out = _hf_run(tiny_llama, fixture_data_dir)
    prompt = out["samples"]["rolebench_specific_zh"][1]["arguments"][0][0]
    assert prompt == plain_prompt(role_prompt("小书童", "zh"), " 小书童，你每天几点起床？")


# ------------------------------------------------------------------ the paper, on the real data


@pytest.mark.integration
def test_replay_reproduces_the_paper(real_data_dir, tmp_path):
    out = evaluate(model="rolegpt", tasks=["rolebench_specific_en", "rolebench_specific_zh", "rolebench_rolegen_specific_en"],
                   data_dir=real_data_dir, output_path=tmp_path, log_samples=True)
    res = out["results"]
    assert round(res["rolebench_specific_en"]["spe,none"], 4) == 0.3229  # Table 3
    assert round(res["rolebench_specific_zh"]["spe,none"], 4) == 0.2478  # Table 4
    assert res["rolebench_rolegen_specific_en"]["sample_len"] == 500  # 2034 of 2534 have no baseline
    written = sorted(p.name.split("_20")[0] for p in (tmp_path / "rolegpt").iterdir())
    assert written == ["results", "samples_rolebench_rolegen_specific_en", "samples_rolebench_specific_en",
                       "samples_rolebench_specific_zh"]
    line = json.loads(next((tmp_path / "rolegpt").glob("samples_rolebench_specific_zh_*")).open().readline())
    assert line["spe"] == rouge_l(line["doc"]["rolegpt"], line["doc"]["references"], "zh")


def test_adapter_trained_with_other_prompts_is_flagged(tmp_path, fixture_data_dir, caplog):
    from rolebench_eval.provenance import PROVENANCE_FILE

    record = {"prompt": {"format": "chat", "prompt_version": "0", "chat_template_sha256": None},
              "base_model": {"name_or_path": "base"}}
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps(record), encoding="utf-8")
    evaluate(model="rolegpt", model_args=f"model=rolegpt,peft={tmp_path}", tasks=["rolebench_specific_zh"],
             data_dir=fixture_data_dir)
    mismatches = [r.getMessage() for r in caplog.records if "TRAIN/EVAL PROMPT MISMATCH" in r.getMessage()]
    assert any("role-prompt version mismatch" in m for m in mismatches)
    assert any("without --apply_chat_template" in m for m in mismatches)


def test_raw_is_scored_on_covered_items_only_and_recorded(fixture_run, fixture_data_dir):
    data = load_split("general_en", fixture_data_dir)
    expected = [rouge_l(data.baseline[(i.role, i.question)], [raw], "en")
                for i, raw in zip(data.items, data.raw) if raw is not None]
    res = fixture_run["results"]["rolebench_general_en"]
    assert res["raw,none"] == pytest.approx(mean(expected), abs=1e-12) and len(expected) == 3
    samples = fixture_run["samples"]["rolebench_general_en"]
    assert [("raw" in s) for s in samples] == [raw is not None for raw in data.raw]  # no raw, no 0
    meta = fixture_run["configs"]["rolebench_general_en"]["metadata"]
    assert meta["raw"]["coverage"] == "3 of 4 items have a raw answer" and meta["raw"]["fields"] == {"target": 6}
    assert meta["data_audit"]["raw_answers"] == "3 of 4 items" and meta["version"] == 1.2
    assert "raw,none" not in fixture_run["results"]["rolebench_general_zh"]  # no instructions-zh file
    assert fixture_run["configs"]["rolebench_general_zh"]["metadata"]["raw"]["found"] is False


def test_the_replay_table_shows_splits_without_rolegpt_answers(fixture_data_dir):
    from rolebench_eval.reproduce import comparison_rows, format_rows

    results = evaluate(model="rolegpt", tasks=["rolebench_rolegen_general_en", "rolebench_general_zh"],
                       data_dir=fixture_data_dir, log_samples=True)
    rows = {(r.task, r.metric): r for r in comparison_rows(results)}
    cus = rows[("rolebench_rolegen_general_en", "cus")]
    assert (cus.measured, cus.paper, cus.scored, cus.items) == (None, 0.6020, 0, 2)
    assert cus.note == "no RoleGPT answers in the dataset for this split"
    assert rows[("rolebench_general_zh", "raw")].note == "no instructions-zh/instructions-general.jsonl in this copy of RoleBench"
    assert "no RoleGPT answers" in format_rows(list(rows.values()))
