"""Both generators against the scripted OpenAI-compatible server on 127.0.0.1: exact rows and counts.

The scripts in tests/fixtures/generate/ hold, for the invented character Captain Ottoline
Brine, answers that break character ("As an AI language model"), refuse, repeat or are
empty (RoleGPT), and malformed, low-confidence, duplicate and source-mentioning triplets
(Context-Instruct). With ``concurrency=1`` the requests go out in order, so the n-th sample
of an instruction gets the n-th scripted reply.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rolebench_eval import evaluate
from rolebench_eval.generate.context_instruct import generate_context_instruct
from rolebench_eval.data import RoleBenchDataError, read_baseline, read_items
from rolebench_eval.generate.common import GenerateOptions, assign_test
from rolebench_eval.generate.rolegpt import generate_rolegpt
from rolebench_eval.llm.budget import Caps
from rolebench_eval.metrics import rouge_l
from rolebench_eval.source import load_split

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "generate"
BRINE, SHILAN = FIX / "brine.yaml", FIX / "shilan.yaml"
ROLE = "Captain Ottoline Brine"
KEY = "sk-test-DISTINCTIVE-generate-91c2"
N_ROLEGPT, N_CI = 36, 5  # 6 instructions x 6 samples; description + 2 script segments x 2 templates

# What must survive the filters (tests/fixtures/generate/*_script.json).
GENERAL = {
    "Give me three tips for staying calm during a storm.": [
        "Tie yourself to the mast, drink your tea, and curse loudly.",
        "Breathe like the tide: slow in, slow out. Salt in the wound, sugar in the tea!",
        "Count the waves, not the clouds, and keep your boots dry."],
    "Explain what a compass does.": ["A compass points north until it lies to you, Pip. Then you use your nose."],
    "Write a haiku about the sea.": [
        "Grey water at dawn / the wreck waits under the fog / tea goes cold on deck",
        "Salt on my knuckles / the sea goes first, always first / gulls laugh at the rest",
        "Fog eats the compass / copper and rust on the wind / steer by your own nose",
        "Barnacles hold fast / so do debts and so do I / pay me in salvage",
        "Old Halloway's lamp / a brass helmet for the oil / the sea keeps the change"],
    "Describe your ideal breakfast.": [
        "Barnacle stew, cold, and tea so strong it could tow a barge.",
        "Fried bread, black tea, and nobody talking to me.", "Whatever Pip burns least, with salt on it.",
        "Tea first. Then more tea. Food is for landlubbers.", "A kipper, a biscuit and a sunrise without fog."],
    "Translate 'good morning' into Spanish.": [
        "Buenos dias, and mind the rail.", "It's 'buenos dias', lad. Now fetch my tea.",
        "Buenos dias! The sea says it louder."],
}
BASELINE = {
    "Give me three tips for staying calm during a storm.": "Storms pass. Captains stay. Sit down and hold the rail.",
    "Explain what a compass does.": "A compass points north until it lies to you, Pip. Then you use your nose.",
    "Describe your ideal breakfast.": "Porridge with brine. Don't ask.",
    "Translate 'good morning' into Spanish.": "Buenos dias. Even the Spanish sea goes first.",
}
SPECIFIC = {
    "What is the name of your ship?": ("The Mild Regret, and she regrets nothing mildly.", "script_agnostic"),
    "Why did you steer by smell when the compass spun?": (
        "A compass can lie, Pip, but a wreck always stinks of copper and rust.", "script_based"),
    "What does a wreck smell like to you?": ("Copper, rust and other people's bad decisions.", "script_based"),
    "How do you deal with fog?": ("I drink tea and wait for the smell of salvage.", "script_agnostic"),
    "What did Mrs. Halloway want from you?": (
        "Payment for her lamp oil, the old shark. I paid her in salvage.", "script_based"),
    "What did you give Halloway for the oil?": ("A brass diving helmet, polished twice.", "script_based"),
    "What do you do on your day off?": ("Day off? The sea doesn't take one, so neither do I.", "script_agnostic"),
}


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _script(*names: str) -> dict:
    rules = []
    for name in names:
        rules += json.loads((FIX / f"{name}_script.json").read_text(encoding="utf-8"))["rules"]
    return {"default_reply": "UNSCRIPTED", "rules": rules}


def _opts(srv, root: Path, **kw) -> GenerateOptions:
    return GenerateOptions(model="gen-m", out=root / "out", base_url=srv.url, cache=root / "cache.sqlite",
                           concurrency=1, timeout=2, backoff_base=0.01, progress=False, **kw)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _data_files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.jsonl"))}


@pytest.fixture(scope="module")
def generated(tmp_path_factory, fake_server):
    """One uninterrupted run of both generators: (root, server, rolegpt result, context-instruct result)."""
    root = tmp_path_factory.mktemp("generated")
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", KEY)
    with fake_server(_script("rolegpt", "context_instruct"), root / "server", expected_key=KEY) as srv:
        rolegpt = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, root))
        ci = generate_context_instruct(BRINE, _opts(srv, root), segment_size=60)
        yield root, srv, rolegpt, ci
    mp.undo()


def test_rolegpt_rows_survive_the_filters(generated):
    root, _, result, _ = generated
    out = root / "out" / "general"
    train, test = _rows(out / "train.jsonl"), _rows(out / "test.jsonl")
    assert {r["question"]: r["generated"] for r in train + test} == GENERAL
    assert all(r["role"] == ROLE and "type" not in r for r in train + test)
    assert {r["question"]: r["generated"] for r in _rows(out / "rolegpt_baseline.jsonl")} == {
        q: [a] for q, a in BASELINE.items()}
    split = dict(zip(GENERAL, assign_test(list(GENERAL), 0.2)))
    assert {r["question"] for r in test} == {q for q, t in split.items() if t} and test and train
    assert result.report["answers_dropped"] == {"empty": 1, "breaks_character": 6, "refusal": 1, "duplicate": 6}
    assert (result.report["instructions_without_reference"], result.report["instructions_without_baseline"]) == (1, 1)
    assert result.report["written"] == {"general/train.jsonl": len(train), "general/test.jsonl": len(test),
                                        "general/rolegpt_baseline.jsonl": 4}
    assert (result.report["instructions"], result.report["repeated_instructions_dropped"]) == (6, 1)
    assert result.batch.n_sent == N_ROLEGPT and result.batch.stopped is None


def test_context_instruct_rows_survive_the_filters(generated):
    root, _, _, result = generated
    out = root / "out" / "role_specific"
    rows = _rows(out / "train.jsonl") + _rows(out / "test.jsonl")
    assert {r["question"]: (r["generated"][0], r["type"]) for r in rows} == SPECIFIC
    assert all(len(r["generated"]) == 1 and r["role"] == ROLE for r in rows)
    assert result.report["dropped"] == {"malformed": 3, "low_confidence": 2, "breaks_character": 1, "refusal": 1,
                                        "question_mentions_source": 1, "duplicate": 2}
    assert result.report["triplets_parsed"] == 14 and result.report["kept"] == {"script_agnostic": 3, "script_based": 4}
    assert result.report["segments"] == {"description": 1, "script": 2} and result.batch.n_sent == N_CI
    # the duplicate kept is the first one asked (the description's), not the later rewording
    assert SPECIFIC["What is the name of your ship?"][0].startswith("The Mild Regret, and")


def test_generated_folder_is_a_rolebench_data_dir(generated):
    out = generated[0] / "out"
    for path in out.rglob("*.jsonl"):
        assert read_items(path)  # strict core reader: every row valid
    meta = json.loads((out / "rolebench_custom.json").read_text(encoding="utf-8"))
    assert meta["lang"] == "en" and set(meta["roles"][ROLE]) == {"profile", "rolegpt", "context_instruct"}
    general, specific = load_split("custom_general", out), load_split("custom_specific", out)
    assert (general.split.lang, specific.split.lang) == ("en", "en")
    assert ROLE in general.descriptions and "Your catchphrases are:" in general.descriptions[ROLE]
    assert len(general.baseline) == 4 and set(general.baseline) >= {(ROLE, i.question) for i in general.items}


def test_requests_carry_paper_sampling_settings_and_no_key(generated):
    root = generated[0]
    with sqlite3.connect(root / "cache.sqlite") as db:
        bodies = [json.loads(r[0]) for r in db.execute("SELECT request FROM responses")]
    assert len(bodies) == N_ROLEGPT + N_CI
    assert {(b["temperature"], b["top_p"], "seed" in b) for b in bodies} == {(0.7, 0.95, False)}
    assert sorted({b["max_tokens"] for b in bodies}) == [512, 2048]
    leaks = [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert all(r["auth"] for r in generated[1].requests())  # the key did reach the server, from the env


def test_rerun_sends_nothing_and_rewrites_the_same_files(generated, tmp_path):
    root, srv, _, _ = generated
    before, sent = _data_files(root / "out"), srv.count("ok")
    again = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, root))
    ci = generate_context_instruct(BRINE, _opts(srv, root), segment_size=60)
    assert srv.count("ok") == sent and again.batch.n_sent == ci.batch.n_sent == 0
    assert again.batch.n_cached == N_ROLEGPT and _data_files(root / "out") == before


def test_budget_cap_keeps_complete_items_and_resumes(llm_server, tmp_path, generated):
    srv = llm_server(_script("rolegpt"))
    first = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path, caps=Caps(max_requests=14)))
    assert first.batch.stopped.startswith("budget") and srv.count("ok") == 14
    assert first.report["pending_instructions"] == 4  # 12 requests answer the first two instructions
    rows = _rows(tmp_path / "out" / "general" / "train.jsonl") + _rows(tmp_path / "out" / "general" / "test.jsonl")
    assert sorted(r["question"] for r in rows) == sorted(list(GENERAL)[:2])
    done = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path))
    assert done.batch.n_sent == N_ROLEGPT - 14 and done.batch.stopped is None
    reference = {k: v for k, v in _data_files(generated[0] / "out").items() if k.startswith("general")}
    assert _data_files(tmp_path / "out") == reference


def test_dry_run_sends_nothing(llm_server, tmp_path):
    srv = llm_server(_script("rolegpt", "context_instruct"))
    est = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path, dry_run=True)).estimate
    assert (est.n_requests, est.n_cached, est.max_completion_tokens) == (N_ROLEGPT, 0, N_ROLEGPT * 512)
    est = generate_context_instruct(BRINE, _opts(srv, tmp_path, dry_run=True), segment_size=60).estimate
    assert (est.n_requests, est.max_completion_tokens) == (N_CI, N_CI * 2048)
    assert srv.requests() == [] and not (tmp_path / "out").exists()


def test_characters_share_a_folder_but_languages_do_not_mix(llm_server, tmp_path):
    srv = llm_server({"default_reply": "Aye, Captain.", "rules": []})
    pip = tmp_path / "pip.yaml"
    pip.write_text("name: Pip\nlanguage: en\ndescription: Pip is Brine's nervous first mate.\n", encoding="utf-8")
    generate_rolegpt(pip, FIX / "instructions.jsonl", _opts(srv, tmp_path, test_fraction=0.5))
    generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path, test_fraction=0.5))
    generate_rolegpt(pip, FIX / "instructions.jsonl", _opts(srv, tmp_path, test_fraction=0.5))  # rewrites Pip only
    baseline = read_baseline(tmp_path / "out" / "general" / "rolegpt_baseline.jsonl")
    assert sorted({role for role, _ in baseline}) == ["Captain Ottoline Brine", "Pip"] and len(baseline) == 12
    desc = json.loads((tmp_path / "out" / "profiles" / "desc.json").read_text(encoding="utf-8"))
    assert desc["Pip"] == "Pip is Brine's nervous first mate"
    sent = srv.count("ok")
    with pytest.raises(RoleBenchDataError, match="holds 'en' data .* use one output folder per language"):
        generate_rolegpt(SHILAN, FIX / "instructions_zh.jsonl", _opts(srv, tmp_path))
    assert srv.count("ok") == sent


def test_chinese_character_end_to_end_with_the_rolegpt_replay(llm_server, tmp_path):
    rules = [{"id": "tea", "match": ["请介绍一下如何泡一杯好茶。"],
              "replies": ["姜茶最好，水要滚，姜要老。", "我是一个AI，无法喝茶。", "先烫杯，再下姜，灯不灭，人就不慌。",
                          "姜茶最好，水要滚，姜要老。", "茶要慢慢泡，人要慢慢熬。", "滚水冲老姜，喝了暖到脚底板。"]},
             {"id": "seasons", "match": ["一年有几个季节？"], "reply": "四个。可海上只有两个：有台风的和没台风的。"},
             {"id": "story", "match": ["给我讲一个关于大海的短故事。"], "reply": "从前有条船迷了路，看见我的灯，就回家了。"}]
    srv = llm_server({"rules": rules})
    generate_rolegpt(SHILAN, FIX / "instructions_zh.jsonl", _opts(srv, tmp_path))
    out = tmp_path / "out"
    rows = _rows(out / "general" / "train.jsonl") + _rows(out / "general" / "test.jsonl")
    tea = next(r for r in rows if r["question"] == "请介绍一下如何泡一杯好茶。")
    assert tea["generated"] == ["姜茶最好，水要滚，姜要老。", "先烫杯，再下姜，灯不灭，人就不慌。", "茶要慢慢泡，人要慢慢熬。"]
    data = load_split("custom_general", out)
    assert data.split.lang == "zh"
    results = evaluate(model="rolegpt", tasks=["rolebench_custom_general"], data_dir=out, log_samples=True)
    got = results["results"]["rolebench_custom_general"]
    want = [rouge_l(data.baseline[(i.role, i.question)], list(i.references), "zh") for i in data.items]
    assert got["sample_len"] == len(data.items) and got["cus,none"] == pytest.approx(sum(want) / len(want))
    docs = results["samples"]["rolebench_custom_general"]
    assert {d["doc"]["lang"] for d in docs} == {"zh"} and docs[0]["doc"]["system_prompt"].startswith("你是石灯婆婆")


def test_custom_splits_need_a_generated_folder(fixture_data_dir):
    with pytest.raises(RoleBenchDataError, match="rolebench_custom.json.*written by `rolebench-eval generate`"):
        load_split("custom_specific", fixture_data_dir)
