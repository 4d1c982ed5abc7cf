"""``rolebench-eval generate``: profiles, BM25 retrieval, triplet parsing, the split rule, inputs.

The generators themselves (against the scripted server) are tested in test_generate_run.py.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import yaml

from rolebench_eval.data import RoleBenchDataError
from rolebench_eval.generate import filters, profile, retrieval, triplets
from rolebench_eval.generate.common import GenerateError
from rolebench_eval.generate.filters import Filters, Tally, load_filters
from rolebench_eval.generate.folder import assign_test, split_position
from rolebench_eval.generate.profile import DialoguePair, ProfileError, all_dialogues, load_profile
from rolebench_eval.generate.retrieval import DialogueIndex
from rolebench_eval.generate.rolegpt import BASELINE_REASONS, REFERENCE_REASONS, build_requests, read_instructions
from rolebench_eval.generate.rolegpt import screen_samples
from rolebench_eval.generate.triplets import parse_triplets
from rolebench_eval.prompts import role_prompt

FIX = Path(__file__).parent / "fixtures" / "generate"
BRINE, SHILAN = FIX / "brine.yaml", FIX / "shilan.yaml"
ROLE = "Captain Ottoline Brine"


@pytest.mark.parametrize("module", [profile, retrieval, filters, triplets])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


# --------------------------------------------------------------------------- profiles


def test_profile_and_script_dialogue_pairs():
    p = load_profile(BRINE)
    assert (p.name, p.lang, p.aliases) == (ROLE, "en", ("BRINE",))
    assert p.catchphrases == ("Salt in the wound, sugar in the tea!", "The sea goes first.")
    pairs = all_dialogues(p)
    assert pairs[:3] == list(p.dialogues)
    assert pairs[3:] == [
        DialoguePair("Captain, the compass is spinning again.", "Then we steer by the smell of the wreck, Pip."),
        DialoguePair("And what does the wreck smell like?", "Copper, rust and other people's bad decisions. Mind the rail."),
        DialoguePair("You owe me for the lamp oil, Ottoline.",
                     "I owe the sea my life and you a fair price for oil. The sea goes first."),
        DialoguePair("Then pay me in salvage.", "A brass diving helmet, polished twice. Deal?"),
    ]


def test_role_prompt_carries_description_and_catchphrases():
    messages = build_requests(load_profile(BRINE), ["Hello?"], samples=1, top_k=0)[0][0]
    assert messages[0]["content"] == role_prompt(ROLE, "en", (
        "Captain Ottoline Brine commands the salvage barge Mild Regret on the Grey Reach. She is gruff, superstitious "
        "and fond of tea, trusts her nose more than any instrument, and pays her debts in salvage rather than coin. "
        "Her first mate is a nervous young sailor called Pip. Your catchphrases are: "
        '"Salt in the wound, sugar in the tea!", "The sea goes first."'))
    zh = build_requests(load_profile(SHILAN), ["你好"], samples=1, top_k=0)[0][0][0]["content"]
    assert zh.startswith("你是石灯婆婆，你的特征描述是：石灯婆婆是雾湾灯塔的守塔人，")
    assert "只盯着海面的灯光。你的口头禅是：“灯不灭，人就不慌。”。现在请你回答" in zh


@pytest.mark.parametrize("edit,field,problem", [
    (lambda d: d.pop("name"), "name", "missing"),
    (lambda d: d.update(language="fr"), "language", "expected one of en, zh"),
    (lambda d: d.update(description="  "), "description", "non-empty string"),
    (lambda d: d.update(catchphrases="Ahoy"), "catchphrases", "list of strings"),
    (lambda d: d.update(catchphrases=["ok", 3]), "catchphrases[1]", "non-empty string"),
    (lambda d: d["dialogues"][1].update(assistant=""), "dialogues[1].assistant", "non-empty string"),
    (lambda d: d["dialogues"].append({"user": "hi"}), "dialogues[3]", "exactly 'user' and 'assistant'"),
    (lambda d: d.update(catchphrase=["typo"]), "catchphrase", "unknown field"),
    (lambda d: d.update(script="no_such_script.txt"), "script", "script file not found"),
])
def test_bad_profiles_name_file_and_field(tmp_path, edit, field, problem):
    data = yaml.safe_load(BRINE.read_text(encoding="utf-8"))
    (tmp_path / "brine_script.txt").write_bytes((FIX / "brine_script.txt").read_bytes())
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value).startswith(f"{path}: field '{field}':") and problem in str(err.value)


def test_unreadable_profiles(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    for name, problem in (("list.yaml", "expected a mapping"), ("broken.yaml", "invalid YAML"),
                          ("absent.yaml", "profile file not found")):
        with pytest.raises(ProfileError, match=problem) as err:
            load_profile(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)


# --------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize("query,expected_user", [
    ("How do you find a wreck in the fog when the compass fails?", "Captain, the compass is spinning again."),
    ("Do you ever feel seasick?", "Do you ever get seasick on rough water?"),
    ("Who sells you lamp oil?", "You owe me for the lamp oil, Ottoline."),
    ("What is your favourite food for breakfast?", "What is your favourite food?"),
])
def test_bm25_retrieval_picks_the_expected_pair(query, expected_user):
    index = DialogueIndex(all_dialogues(load_profile(BRINE)), "en")
    assert index.top_k(query, 1)[0].user == expected_user


def test_bm25_retrieval_chinese_by_characters_and_ranking_order():
    index = DialogueIndex(all_dialogues(load_profile(SHILAN)), "zh")
    assert index.top_k("晚上你睡觉吗", 1)[0].user == "你晚上为什么不睡觉？"
    assert index.top_k("台风来了怎么办", 1)[0].user == "你怕不怕台风？"
    en = DialogueIndex(all_dialogues(load_profile(BRINE)), "en")
    query = "How do you find a wreck in the fog when the compass fails?"
    scores = en.scores(query)
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
    assert en.top_k(query, 3) == [en.pairs[i] for i in ranked[:3]]
    assert scores[ranked[0]] > scores[ranked[1]] >= scores[ranked[2]] > 0
    assert DialogueIndex([], "en").top_k(query, 5) == []


def test_rolegpt_prompt_has_retrieved_pairs_as_turns_then_the_instruction():
    query = "How do you find a wreck in the fog when the compass fails?"
    requests, extras = build_requests(load_profile(BRINE), [query], samples=3, top_k=2)
    assert len(requests) == 3 and requests[0] == requests[2]
    assert extras == [{"generator": "rolegpt", "sample": s} for s in range(3)]
    demos = DialogueIndex(all_dialogues(load_profile(BRINE)), "en").top_k(query, 2)
    assert [m["role"] for m in requests[0]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in requests[0][1:]] == [demos[0].user, demos[0].assistant, demos[1].user,
                                                       demos[1].assistant, query]


# --------------------------------------------------------------------------- parsing, split, inputs


@pytest.mark.parametrize("text,expected,malformed", [
    ("Question: A?\nConfidence: 8\nAnswer: B.", [("A?", 8.0, "B.")], 0),
    (("Sure!\n1. **Question:** A?\n**Confidence:** 9/10\n**Answer:** B\ncontinued.\n---\n2) Question: C?\n"
      "Confidence: 7.5\nAnswer: D"), [("A?", 9.0, "B continued."), ("C?", 7.5, "D")], 0),
    ("问题：你住哪？\n置信度：9\n回答：雾湾灯塔。", [("你住哪？", 9.0, "雾湾灯塔。")], 0),
    ('```json\n[{"question": "A?", "confidence": "8", "answer": "B"}, {"question": "C?", "answer": "D"}, 3]\n```',
     [("A?", 8.0, "B")], 2),
    ("Question: A?\nConfidence: high\nAnswer: B\nQuestion: C?\nConfidence: 11\nAnswer: D", [], 2),
    ("Question: A?\nConfidence: 8\nConfidence: 9\nAnswer: B", [], 1),
    ("Answer: orphan\nQuestion: A?\nConfidence: 8\nAnswer:\nB on the next line", [("A?", 8.0, "B on the next line")], 1),
    ("I'm sorry, I can't do that.", [], 0),
    ("", [], 0),
    ("[not json", [], 0),
])
def test_parse_triplets(text, expected, malformed):
    found, bad = parse_triplets(text)
    assert [(t.question, t.confidence, t.answer) for t in found] == expected
    assert bad == malformed


def test_split_rule_is_deterministic_order_free_and_keeps_both_sides():
    questions = [f"Invented question number {i}?" for i in range(2000)]
    test = assign_test(questions, 0.2)
    assert 0.17 < sum(test) / len(test) < 0.23
    back = dict(zip(reversed(questions), assign_test(list(reversed(questions)), 0.2)))
    assert back == dict(zip(questions, test))
    assert split_position("What's your ship?") == split_position("  whats your SHIP") != split_position("Your ship?")
    for pair in (["a?", "b?"], ["x", "y"]):
        assert sorted(assign_test(pair, 0.2)) == [False, True]
        assert sorted(assign_test(pair, 0.99)) == [False, True]


@pytest.mark.parametrize("content,where", [
    ('{"instruction": "ok"}\n{"instruction": "ok",\n', ":2: invalid JSON"),
    ('["not", "an object"]\n', ":1: expected a JSON object"),
    ('{"prompt": "wrong key"}\n', ":1: field 'instruction': missing"),
    ('{"instruction": "ok"}\n\n{"question": "  "}\n', ":3: field 'question': expected a non-empty string"),
    ("\n\n", ": no instructions in the file"),
])
def test_bad_instructions_name_file_line_and_field(tmp_path, content, where):
    path = tmp_path / "instr.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RoleBenchDataError) as err:
        read_instructions(path)
    assert str(err.value).startswith(f"{path}{where}")


def test_instructions_accept_both_keys_and_drop_repeats():
    found, repeats = read_instructions(FIX / "instructions.jsonl")
    assert repeats == 1 and len(found) == 6 and found[2] == "Write a haiku about the sea."


def test_filter_lists_load_and_bad_files_are_named(tmp_path):
    lists = load_filters(lang="zh")
    assert lists.answer_problem("作为一个AI，我不能喝茶。") == "breaks_character"  # the package's detector
    assert lists.answer_problem("人工智能是未来，老夫也略知一二。") is None  # talk about AI is in character
    assert load_filters().answer_problem("Artificial intelligence? Bah, I trust my nose.") is None
    assert lists.answer_problem("I'm sorry, but I can't share that.") == "refusal"
    assert lists.answer_problem("Salt in the wound, sugar in the tea!") is None
    assert lists.matched("In the script, who held the compass?", ["question_mentions_source"]) is not None
    own = tmp_path / "filters.yaml"
    own.write_text("breaks_character: [tea]\n", encoding="utf-8")
    assert load_filters(own).answer_problem("More TEA, Pip.") == "breaks_character"
    for content, where in (("refusal: [3]\n", "field 'refusal'"), ("refusals: [no]\n", "field 'refusals': unknown")):
        own.write_text(content, encoding="utf-8")
        with pytest.raises(GenerateError, match=f"{own}: {where}"):
            load_filters(own)
    with pytest.raises(GenerateError, match="filters file not found"):
        load_filters(tmp_path / "absent.yaml")


# --------------------------------------------------------------------------- profile paths


def _profile_with(tmp_path: Path, **fields) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    path = folder / "brine.yaml"
    path.write_text(yaml.safe_dump({"name": ROLE, "language": "en", "description": "A captain."} | fields),
                    encoding="utf-8")
    return path


def test_profile_files_outside_the_profile_folder_are_refused(tmp_path):
    secret = tmp_path.resolve() / "secret.txt"
    secret.write_text("PIP: the key is under the mat\nBRINE: hush\n", encoding="utf-8")
    inside = _profile_with(tmp_path).parent.resolve()
    (inside / "link.txt").symlink_to(secret)
    (inside / "link.jsonl").symlink_to(secret)
    for field, rel in (("script", "../secret.txt"), ("script", str(secret)), ("script", "link.txt"),
                       ("script", "../../../../../../../../" + str(secret)), ("dialogues", "link.jsonl")):
        path = _profile_with(tmp_path, **{field: rel})
        with pytest.raises(ProfileError) as err:
            load_profile(path)
        assert str(err.value).startswith(f"{path}: field '{field}': {rel!r} resolves to {secret}, outside the "
                                         f"profile's folder {inside}")
        assert "--allow-outside-paths" in str(err.value)
    allowed = load_profile(_profile_with(tmp_path, script="../secret.txt"), allow_outside_paths=True)
    assert allowed.script.startswith("PIP: the key") and allowed.files == {"script": secret}


def test_profile_files_inside_the_folder_are_read_links_included(tmp_path):
    inside = _profile_with(tmp_path).parent.resolve()
    (inside / "scripts").mkdir()
    (inside / "scripts" / "brine.txt").write_bytes((FIX / "brine_script.txt").read_bytes())
    (inside / "alias.txt").symlink_to(inside / "scripts" / "brine.txt")
    dialogues = inside / "dialogues.jsonl"
    dialogues.write_text('{"user": "Storms?", "assistant": "The sea clearing its throat."}\n\n'
                         '{"user": "Tea?", "assistant": "Always.\u2028Two sugars."}\n', encoding="utf-8")
    for script in ("scripts/brine.txt", "alias.txt", "./scripts/../scripts/brine.txt"):
        p = load_profile(_profile_with(tmp_path, script=script, dialogues="dialogues.jsonl", aliases=["BRINE"]))
        assert p.dialogues == (DialoguePair("Storms?", "The sea clearing its throat."),
                               DialoguePair("Tea?", "Always.\u2028Two sugars."))
        assert p.files == {"script": inside / "scripts" / "brine.txt", "dialogues": dialogues}
        assert len(all_dialogues(p)) == 6  # two from the file, four from the script
    dialogues.write_text('{"user": "Storms?", "assistant": "ok"}\n{"user": "Tea?", "assistant": ""}\n',
                         encoding="utf-8")
    with pytest.raises(ProfileError, match=f"^{dialogues}:2: field 'assistant': expected a non-empty string"):
        load_profile(_profile_with(tmp_path, dialogues="dialogues.jsonl"))


# --------------------------------------------------------------------------- accounting


def test_a_tally_that_does_not_add_up_is_a_bug_not_a_report():
    tally = Tally(("empty",))
    tally.receive(2)
    tally.keep()
    with pytest.raises(RuntimeError, match="references: 2 received but 1 kept or dropped"):
        tally.check("references")
    with pytest.raises(ValueError, match="unknown drop reason 'typo'"):
        tally.drop("typo")


@pytest.mark.parametrize("texts,refs,baseline,identical,dropped", [
    (["A", "B", "A", "", "C"], ["A", "B"], "C", False, {"duplicate": 1, "empty": 1}),
    (["A", "A", "A"], ["A"], None, True, {"identical_samples": 2}),  # the baseline is a copy, not a sample
    (["As an AI, no.", "As an AI, no."], [], None, True, {"breaks_character": 2}),
    (["I cannot help with that.", "B"], [], None, False, {"refusal": 1, "no_reference": 1}),
    (["A", "B", "I cannot help with that."], ["A", "B"], None, False, {"refusal": 1}),
])
def test_screen_samples_gives_every_answer_one_reason(texts, refs, baseline, identical, dropped):
    lists = Filters({"breaks_character": ("as an ai",), "refusal": ("i cannot",)})
    ref_tally, base_tally = Tally(REFERENCE_REASONS), Tally(BASELINE_REASONS)
    ref_tally.receive(len(texts) - 1)
    base_tally.receive(1)
    got = screen_samples([{"text": f" {t} "} for t in texts], lists, ref_tally, base_tally)
    assert got == (refs, baseline, identical)
    assert dict(ref_tally.check("r").dropped + base_tally.check("b").dropped) == dropped


def test_an_api_refusal_field_counts_as_a_refusal():
    ref_tally, base_tally = Tally(REFERENCE_REASONS), Tally(BASELINE_REASONS)
    answers = [{"text": "Aye."}, {"text": "", "refusal": "I can't help with that."}, {"text": "Nay."}]
    assert screen_samples(answers, Filters({}), ref_tally, base_tally) == (["Aye."], "Nay.", False)
    assert ref_tally.dropped == {"refusal": 1}


def test_line_separators_inside_a_triplet_stay_in_it():
    found, bad = parse_triplets("Question: Tea?\u2028Or rum?\nConfidence: 8\nAnswer: Tea.\u2029Always.\u0085Aye.")
    assert bad == 0
    assert [(t.question, t.answer) for t in found] == [("Tea?\u2028Or rum?", "Tea.\u2029Always.\u0085Aye.")]


def test_a_split_left_without_rows_is_written_with_a_warning(tmp_path, caplog):
    from rolebench_eval.generate.folder import write_role

    row = {"role": load_profile(BRINE).name, "question": "Hello?", "generated": ["Ahoy."]}
    with caplog.at_level("WARNING"):
        written = write_role(tmp_path, load_profile(BRINE), "rolegpt", "general", {"train": [row], "test": []}, {})
    assert written == {"general/train.jsonl": 1, "general/test.jsonl": 0}
    assert [r.getMessage().split(" has no rows")[0] for r in caplog.records] == [str(tmp_path / "general/test.jsonl")]
