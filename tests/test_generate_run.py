"""Both generators against the scripted OpenAI-compatible server on 127.0.0.1: exact rows and counts.

The scripts in tests/fixtures/generate/ hold, for the invented character Captain Ottoline
Brine, answers that break character ("As an AI language model"), refuse, repeat or are
empty (RoleGPT), and malformed, low-confidence, duplicate and source-mentioning triplets
(Context-Instruct). With ``concurrency=1`` the requests go out in order, so the n-th sample
of an instruction gets the n-th scripted reply.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from rolebench_eval import evaluate
from rolebench_eval.data import RoleBenchDataError, read_baseline, read_items
from rolebench_eval.errors import NothingUsable
from rolebench_eval.fileio import read_jsonl
from rolebench_eval.generate.common import GenerateOptions
from rolebench_eval.generate.context_instruct import generate_context_instruct
from rolebench_eval.generate.folder import assign_test
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
    "Explain what a compass does.": "North, mostly. Unless the sea disagrees, and the sea always disagrees.",
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
    return [row for _, row in read_jsonl(path)]


def _assert_accounted(report: dict) -> None:
    """Every tally adds up: kept + dropped (by reason) == received."""
    for what, tally in report["tallies"].items():
        assert tally["kept"] + sum(tally["dropped"].values()) == tally["received"], what


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
    refs, base = result.report["tallies"]["references"], result.report["tallies"]["baseline answers"]
    assert refs == {"received": 30, "kept": 17, "dropped": {
        "incomplete": 0, "empty": 1, "breaks_character": 6, "refusal": 0, "identical_samples": 0, "duplicate": 6}}
    assert base == {"received": 6, "kept": 4, "dropped": {
        "incomplete": 0, "empty": 0, "breaks_character": 1, "refusal": 1, "identical_samples": 0, "no_reference": 0}}
    assert refs["kept"] == sum(len(r["generated"]) for r in train + test) and base["kept"] == len(BASELINE)
    assert refs["received"] + base["received"] == result.report["answers_received"] == N_ROLEGPT
    _assert_accounted(result.report)
    assert result.report["instructions"] == {"asked": 6, "incomplete": 0, "without_reference": 1, "written": 5,
                                             "identical_samples": 1}  # France: six times the same AI answer
    assert result.report["written"] == {"general/train.jsonl": len(train), "general/test.jsonl": len(test),
                                        "general/rolegpt_baseline.jsonl": 4}
    assert result.report["instructions_file"] == {"read": 7, "repeats_dropped": 1}
    assert result.batch.n_sent == N_ROLEGPT and result.batch.stopped is None


def test_context_instruct_rows_survive_the_filters(generated):
    root, _, _, result = generated
    out = root / "out" / "role_specific"
    rows = _rows(out / "train.jsonl") + _rows(out / "test.jsonl")
    assert {r["question"]: (r["generated"][0], r["type"]) for r in rows} == SPECIFIC
    assert all(len(r["generated"]) == 1 and r["role"] == ROLE for r in rows)
    triplets = result.report["tallies"]["triplets"]
    assert triplets == {"received": 17, "kept": 7, "dropped": {
        "malformed": 3, "low_confidence": 2, "breaks_character": 1, "refusal": 1, "question_mentions_source": 1,
        "duplicate": 2}}
    assert result.report["tallies"]["replies"] == {"received": N_CI, "kept": N_CI,
                                                   "dropped": {"refusal": 0, "no_triplets": 0}}
    assert triplets["kept"] == len(rows) and result.report["kept_by_type"] == {"script_agnostic": 3,
                                                                               "script_based": 4}
    _assert_accounted(result.report)
    assert result.report["segments"] == {"description": 1, "script": 2} and result.batch.n_sent == N_CI
    # the duplicate kept is the first one asked (the description's), not the later rewording
    assert SPECIFIC["What is the name of your ship?"][0].startswith("The Mild Regret, and")


def test_the_readme_quotes_the_end_of_a_run(generated):
    from rolebench_eval.generate.cli import summary

    readme = (HERE.parent / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"```text\n(generate rolegpt: .*?)```", readme, re.S).group(1)
    assert summary(generated[2].report, "rolegpt", "data/brine") + "\n" == quoted


def test_generated_folder_is_a_rolebench_data_dir(generated):
    out = generated[0] / "out"
    for path in out.rglob("*.jsonl"):
        assert read_items(path)  # strict core reader: every row valid
    meta = json.loads((out / "rolebench_custom.json").read_text(encoding="utf-8"))
    assert meta["lang"] == "en" and set(meta["roles"][ROLE]) == {"profile", "rolegpt", "context_instruct"}
    assert meta["roles"][ROLE]["rolegpt"]["tallies"] == generated[2].report["tallies"]  # the full record
    assert meta["roles"][ROLE]["profile"]["files"]["script"]["path"] == str((FIX / "brine_script.txt").resolve())
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
    assert first.report["instructions"]["incomplete"] == 4  # 12 requests answer the first two instructions
    refs, base = first.report["tallies"]["references"], first.report["tallies"]["baseline answers"]
    # the third instruction's two answers are received, kept in the cache, and counted as incomplete
    assert (refs["received"], refs["dropped"]["incomplete"], base["received"]) == (12, 2, 2)
    _assert_accounted(first.report)
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


SEPARATORS = ("\u2028", "\u2029", "\u0085")
RAW_SEPARATORS = tuple(sep.encode("utf-8") for sep in SEPARATORS)
PIP_PROFILE = "name: Pip\nlanguage: en\ndescription: Pip is Brine's nervous first mate.\n"


def _separator_replies(tag: str) -> list[str]:
    """Six answers to one prompt, each holding U+2028, U+2029 and U+0085: two references and a baseline kept."""
    good = [f"{tag} {n}: aye,\u2028the sea\u2029goes first\u0085and so do I." for n in range(4)]
    return [good[0], good[1], "As an AI\u2028language model, I have no ship.", good[0], "", good[3]]


def _two_roles_script(brine_tag: str, pip_tag: str) -> dict:
    return {"rules": [{"id": "brine", "match": [f"You are {ROLE},"], "replies": _separator_replies(brine_tag)},
                      {"id": "pip", "match": ["You are Pip,"], "replies": _separator_replies(pip_tag)}]}


def _role_rows(out: Path) -> dict[str, dict[str, list[dict]]]:
    """Per data file, per role, the rows, in file order."""
    found: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(out.rglob("*.jsonl")):
        for row in _rows(path):
            found.setdefault(str(path.relative_to(out)), {}).setdefault(row["role"], []).append(row)
    return found


def _assert_no_reader_splits_a_row(out: Path) -> None:
    for path in out.rglob("*.jsonl"):
        raw = path.read_bytes()
        assert not any(sep in raw for sep in RAW_SEPARATORS), path
        assert len(raw.decode("utf-8").splitlines()) == len(read_items(path)), path


def test_two_characters_with_line_separators_share_a_folder_and_the_first_regenerates(llm_server, tmp_path):
    pip = tmp_path / "pip.yaml"
    pip.write_text(PIP_PROFILE, encoding="utf-8")
    instructions = tmp_path / "instructions.jsonl"  # one instruction holds a raw U+2028 itself
    instructions.write_bytes(FIX.joinpath("instructions.jsonl").read_bytes()
                             + '{"instruction": "Sing\u2028a shanty."}\n'.encode("utf-8"))
    first = llm_server(_two_roles_script("Brine v1", "Pip"))
    runs = [generate_rolegpt(BRINE, instructions, _opts(first, tmp_path / "v1")),
            generate_rolegpt(pip, instructions, _opts(first, tmp_path / "v1"))]
    out = tmp_path / "v1" / "out"
    _assert_no_reader_splits_a_row(out)
    before = _role_rows(out)
    second = llm_server(_two_roles_script("Brine v2", "never asked"))
    opts = dataclasses.replace(_opts(second, tmp_path / "v2"), out=out)  # a fresh cache: new answers
    runs.append(generate_rolegpt(BRINE, instructions, opts))
    _assert_no_reader_splits_a_row(out)
    after = _role_rows(out)

    for run in runs:  # the counts of each run (7 instructions x 6 samples)
        _assert_accounted(run.report)
        assert run.report["tallies"]["references"] == {"received": 35, "kept": 14, "dropped": {
            "incomplete": 0, "empty": 7, "breaks_character": 7, "refusal": 0, "identical_samples": 0,
            "duplicate": 7}}
        assert run.report["tallies"]["baseline answers"] == {"received": 7, "kept": 7, "dropped": {
            "incomplete": 0, "empty": 0, "breaks_character": 0, "refusal": 0, "identical_samples": 0,
            "no_reference": 0}}
        assert run.report["written"] == {"general/train.jsonl": 6, "general/test.jsonl": 1,
                                         "general/rolegpt_baseline.jsonl": 7}
    assert second.requests() and all(r["rule"] == "brine" for r in second.requests())
    assert set(after) == set(before) == {"general/train.jsonl", "general/test.jsonl", "general/rolegpt_baseline.jsonl"}
    for name in after:
        assert after[name]["Pip"] == before[name]["Pip"]  # untouched, and still first in the file
        assert list(after[name]) == ["Pip", ROLE]
        old, new = ([r["generated"] for r in rows[name][ROLE]] for rows in (before, after))
        assert all("Brine v1" in g for refs in old for g in refs) and all("Brine v2" in g for refs in new for g in refs)
    refs = [g for rows in after["general/train.jsonl"].values() for r in rows for g in r["generated"]]
    assert all(sep in g for g in refs for sep in SEPARATORS)  # escaped on disk, intact when read
    assert "Sing\u2028a shanty." in {r["question"] for f in after.values() for rows in f.values() for r in rows}
    meta = json.loads((out / "rolebench_custom.json").read_text(encoding="utf-8"))
    assert sorted(meta["roles"]) == [ROLE, "Pip"] and meta["roles"][ROLE]["rolegpt"]["requests_sent"] == 42
    sent = first.count("ok") + second.count("ok")
    with pytest.raises(RoleBenchDataError, match="holds 'en' data .* use one output folder per language"):
        generate_rolegpt(SHILAN, FIX / "instructions_zh.jsonl", opts)
    assert first.count("ok") + second.count("ok") == sent


def test_a_folder_written_raw_by_the_previous_version_still_reads(llm_server, tmp_path):
    out = tmp_path / "out"
    pip = {"train": [{"role": "Pip", "question": "Where\u2028to?", "generated": ["Aft,\u2029sir.", "Fore\u0085!"]}],
           "test": [{"role": "Pip", "question": "Tea?", "generated": ["Two\u2028sugars."]}],
           "rolegpt_baseline": [{"role": "Pip", "question": "Tea?", "generated": ["One\u2029sugar."]}]}
    for name, rows in pip.items():  # what json.dumps(ensure_ascii=False) wrote: the separators raw
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        assert len(text.splitlines()) > len(rows)  # the hazard is real: str.splitlines() cuts these rows
        (out / "general").mkdir(parents=True, exist_ok=True)
        (out / "general" / f"{name}.jsonl").write_text(text, encoding="utf-8")
    (out / "profiles").mkdir()
    (out / "profiles" / "desc.json").write_text('{"Pip": "Pip is nervous."}', encoding="utf-8")
    old_record = {"answers_dropped": {"empty": 0}, "written": {"general/train.jsonl": 1}}
    (out / "rolebench_custom.json").write_text(json.dumps(
        {"format_version": 1, "lang": "en", "roles": {"Pip": {"rolegpt": old_record}}}), encoding="utf-8")
    srv = llm_server(_script("rolegpt"))
    generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path))
    _assert_no_reader_splits_a_row(out)
    rows = _role_rows(out)
    assert {name.split("/")[1][:-6]: found["Pip"] for name, found in rows.items()} == pip
    assert {r["question"] for r in rows["general/rolegpt_baseline.jsonl"][ROLE]} == set(BASELINE)
    meta = json.loads((out / "rolebench_custom.json").read_text(encoding="utf-8"))
    assert meta["format_version"] == 2 and meta["roles"]["Pip"]["rolegpt"] == old_record
    assert load_split("custom_general", out).descriptions["Pip"] == "Pip is nervous."


def test_nothing_usable_raises_one_line_and_leaves_the_folder_as_it_was(llm_server, tmp_path):
    good = llm_server(_script("rolegpt", "context_instruct"))
    generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(good, tmp_path / "good"))
    generate_context_instruct(BRINE, _opts(good, tmp_path / "good"), segment_size=60)
    out = tmp_path / "good" / "out"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = llm_server({"default_reply": "I'm sorry, but I can't help with that.", "rules": [
        {"id": "ai", "match": ["Explain what a compass does."], "reply": "As an AI language model, I have no compass."},
        {"id": "empty", "match": ["Write a haiku about the sea."], "reply": " "}]})
    opts = dataclasses.replace(_opts(bad, tmp_path / "bad"), out=out)  # a fresh cache, the same folder
    with pytest.raises(NothingUsable) as err:
        generate_rolegpt(BRINE, FIX / "instructions.jsonl", opts)
    assert str(err.value) == (
        f"{ROLE}: received 36 answers to 6 instructions and kept none (references: refusal 20, "
        "empty 5, breaks_character 5; baseline answers: refusal 4, empty 1, breaks_character 1); "
        f"nothing written, {out} is unchanged")
    with pytest.raises(NothingUsable) as err:
        generate_context_instruct(BRINE, opts, segment_size=60)
    assert str(err.value) == (f"{ROLE}: received 5 replies with 0 triplets and kept none (replies: refusal 5; "
                              f"triplets: none); nothing written, {out} is unchanged")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with pytest.raises(NothingUsable):  # and into a new folder: no folder at all
        generate_rolegpt(BRINE, FIX / "instructions.jsonl", dataclasses.replace(opts, out=tmp_path / "new"))
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("temperature,says", [
    (0.7, "6 of 6 instructions got 6 identical samples although temperature 0.7 was sent: the endpoint seems "
          "to ignore temperature"),
    (0.0, "6 of 6 instructions got 6 identical samples at temperature 0: use --temperature > 0")])
def test_identical_samples_warn_once_and_are_counted_apart(llm_server, tmp_path, caplog, temperature, says):
    srv = llm_server({"default_reply": "Aye, Captain. Salt in the wound, sugar in the tea!", "rules": []})
    with caplog.at_level(logging.WARNING, logger="rolebench_eval.generate"):
        result = generate_rolegpt(BRINE, FIX / "instructions.jsonl", _opts(srv, tmp_path, temperature=temperature))
    warnings = [r.getMessage() for r in caplog.records if "identical samples" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(says) and result.report["warnings"] == warnings
    refs, base = result.report["tallies"]["references"], result.report["tallies"]["baseline answers"]
    assert (refs["kept"], refs["dropped"]["identical_samples"], refs["dropped"]["duplicate"]) == (6, 24, 0)
    assert (base["kept"], base["dropped"]["identical_samples"]) == (0, 6)
    _assert_accounted(result.report)
    rows = _rows(tmp_path / "out" / "general" / "train.jsonl") + _rows(tmp_path / "out" / "general" / "test.jsonl")
    assert len(rows) == 6 and all(len(r["generated"]) == 1 for r in rows)
    assert _rows(tmp_path / "out" / "general" / "rolegpt_baseline.jsonl") == []


def test_chinese_character_end_to_end_with_the_rolegpt_replay(llm_server, tmp_path):
    rules = [{"id": "tea", "match": ["请介绍一下如何泡一杯好茶。"],
              "replies": ["姜茶最好，水要滚，姜要老。", "我是一个AI，无法喝茶。", "先烫杯，再下姜，灯不灭，人就不慌。",
                          "姜茶最好，水要滚，姜要老。", "茶要慢慢泡，人要慢慢熬。", "滚水冲老姜，喝了暖到脚底板。"]},
             {"id": "seasons", "match": ["一年有几个季节？"], "replies": ["四个。可海上只有两个：有台风的和没台风的。", "四季。"]},
             {"id": "story", "match": ["给我讲一个关于大海的短故事。"],
              "replies": ["从前有条船迷了路，看见我的灯，就回家了。", "海很大，灯很小，可船认得灯。"]}]
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


def test_a_kill_between_a_roles_files_is_refused_until_the_command_finishes(generated, tmp_path, monkeypatch):
    import shutil

    from rolebench_eval.datacheck import check_data
    from rolebench_eval.generate import folder
    from rolebench_eval.generate.profile import load_profile

    out = tmp_path / "out"
    shutil.copytree(generated[0] / "out", out)
    rows = {name: [r for _, r in read_jsonl(out / "general" / f"{name}.jsonl")] for name in ("train", "test")}
    real, calls = folder.write_jsonl, []

    def killed_after_the_first_file(path, data):
        if calls:
            raise KeyboardInterrupt  # the kill, between two atomic file writes
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(folder, "write_jsonl", killed_after_the_first_file)
    with pytest.raises(KeyboardInterrupt):
        folder.write_role(out, load_profile(BRINE), "rolegpt", "general", rows, {})
    with pytest.raises(RoleBenchDataError, match=rf"roles\.{ROLE}\.writing.*generate rolegpt. was stopped"):
        load_split("custom_general", out)
    assert any("was stopped while writing" in p for p in check_data(out).problems)  # data check agrees with run
    monkeypatch.setattr(folder, "write_jsonl", real)
    folder.write_role(out, load_profile(BRINE), "rolegpt", "general", rows, {})  # the rerun finishes the role
    assert len(load_split("custom_general", out).items) == len(rows["test"])
    assert not check_data(out).problems
