"""Live role-play conversations (issue 23): scenarios as data, replay and live runs, per-turn scores.

Against the scripted OpenAI-compatible servers (tests/fixtures/llm): a simulator, and the
characters under test. What the servers received is read back from their request logs (a hash of
each request's messages), so "every model met the same user turns" is proven by the requests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rolebench_eval.cli import main
from rolebench_eval.data import item_id
from rolebench_eval.fileio import sha256_file
from rolebench_eval.outputs.scenario import Scenario, Source, UserTurn, read_scenarios, write_scenarios
from rolebench_eval.prompts import role_prompt

SPLIT_FILE = "rolebench-eng/instruction-generalization/role_specific/test.jsonl"
NAVY = " Marlow Finch, why did you leave the navy?"
NAVY_REF = " The navy wanted obedience. The sea wanted me. I chose the sea."
CELLAR = " Professor Varga, what did you discover in the cellar?"
TALK = ["Lovely weather for sailing, isn't it?", "What do you eat at sea?", "Do you like dogs?"]


def _log(srv) -> list[dict]:
    path = Path(srv.workdir) / "server_log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _hash(messages: list[dict]) -> str:
    """The fake server's hash of a request (its messages' contents joined by newlines)."""
    text = "\n".join(m["content"] for m in messages)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scenarios(data: Path) -> list[Scenario]:
    source = Source(split="specific_en", sha256=sha256_file(data / SPLIT_FILE), data="local")
    common = dict(lang="en", source=source, goal="get to know him", persona="a curious traveller.")
    return [
        Scenario(id="Marlow Finch/own-story/0", character="Marlow Finch", kind="own-story",
                 description="a gruff retired sea captain who speaks in nautical terms",
                 turns=[UserTurn(text=NAVY.strip(), item_id=item_id("Marlow Finch", NAVY))], **common),
        Scenario(id="Marlow Finch/small-talk/0", character="Marlow Finch", kind="small-talk",
                 description="a gruff retired sea captain who speaks in nautical terms",
                 turns=[UserTurn(text=t) for t in TALK], **common),
    ]


def _converse(srv, scenarios: Path, out: Path, cache: Path, *extra: str, model: str = "char-a") -> int:
    return main(["converse", str(scenarios), "--model", model, "--base-url", srv.url, "--out", str(out),
                 "--cache", str(cache), "--no-progress", "--timeout", "5", "--backoff-base", "0.01",
                 "--concurrency", "4", *extra])


def _conversations(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]


CAPTAIN = {"default_reply": "Arr.", "rules": [
    {"id": "t3", "match": [TALK[2]], "reply": "Dogs are fine, cats catch rats."},
    {"id": "t2", "match": [TALK[1]], "reply": "Hardtack and salt pork."},
    {"id": "t1", "match": [TALK[0]], "reply": "Aye, a fair wind."},
    {"id": "navy", "match": ["leave the navy"], "reply": "The sea wanted me."},
]}
ROBOT = {"default_reply": "As an AI language model, I cannot have a past."}


@pytest.fixture
def scenario_file(tmp_path, fixture_data_dir) -> Path:
    path = tmp_path / "scenarios.jsonl"
    write_scenarios(path, _scenarios(fixture_data_dir))
    return path


def test_two_models_in_replay_receive_byte_identical_user_turns(llm_server, tmp_path, scenario_file,
                                                                  fixture_data_dir, capsys):
    captain, robot = llm_server(CAPTAIN), llm_server(ROBOT)
    data = ["--data-dir", str(fixture_data_dir)]
    assert _converse(captain, scenario_file, tmp_path / "a", tmp_path / "c.sqlite", *data) == 0
    assert _converse(robot, scenario_file, tmp_path / "b", tmp_path / "c.sqlite", *data, model="char-b") == 0
    scenarios = read_scenarios(scenario_file)
    for srv, out in ((captain, tmp_path / "a"), (robot, tmp_path / "b")):
        conversations = _conversations(out)
        users = [[t["user"] for t in c["turns"]] for c in conversations]
        assert users == [[t.text for t in s.turns] for s in scenarios]
        # the requests themselves: role prompt, the scenario's user turns, this model's own replies fed back
        expected = set()
        for s, c in zip(scenarios, conversations):
            messages = [{"role": "system", "content": role_prompt(s.character, "en", s.description)}]
            for turn in c["turns"]:
                messages.append({"role": "user", "content": turn["user"]})
                expected.add(_hash(messages))
                messages.append({"role": "assistant", "content": turn["reply"]})
        assert {e["hash"] for e in _log(srv)} == expected and len(_log(srv)) == 4
    assert [t["reply"] for t in _conversations(tmp_path / "a")[1]["turns"]] == \
        ["Aye, a fair wind.", "Hardtack and salt pork.", "Dogs are fine, cats catch rats."]


def test_scores_equal_hand_computed_values(llm_server, tmp_path, scenario_file, fixture_data_dir):
    robot = llm_server({"rules": [
        {"id": "navy", "match": ["leave the navy"], "reply": "<think>stay in role</think>The sea wanted me."},
        {"id": "t3", "match": [TALK[2]], "reply": "As an AI, I have no dog."},
        {"id": "t2", "match": [TALK[1]], "reply": "<think>what do sailors eat"},
    ], "default_reply": "Aye."})
    assert _converse(robot, scenario_file, tmp_path / "out", tmp_path / "c.sqlite",
                     "--data-dir", str(fixture_data_dir)) == 0
    own, talk = _conversations(tmp_path / "out")
    # "The sea wanted me." against "The navy wanted obedience. The sea wanted me. I chose the sea.":
    # the paper's ROUGE-L recall: the union LCS over the reference's sentences (split on ".") holds The, wanted,
    # sea, me, of its 9 distinct case-sensitive words (The navy wanted obedience sea me I chose the) = 4/9
    assert own["turns"][0] == {"user": NAVY.strip(), "reply": "The sea wanted me.",
                               "raw": "<think>stay in role</think>The sea wanted me.",
                               "item_id": item_id("Marlow Finch", NAVY),
                               "scores": {"break": 0.0, "spe": pytest.approx(4 / 9), "unfinished_reasoning": 0.0}}
    assert own["break_rate"] == 0.0 and talk["break_rate"] == pytest.approx(1 / 3)
    assert [t["scores"] for t in talk["turns"]] == [
        {"break": 0.0, "unfinished_reasoning": 0.0},
        {"break": 0.0, "unfinished_reasoning": 1.0},  # the reasoning never closed: the empty answer
        {"break": 1.0, "unfinished_reasoning": 0.0}]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["overall"]["scores"] == {"break": 0.25, "spe": pytest.approx(4 / 9), "unfinished_reasoning": 0.25}
    assert summary["overall"]["n_scored"] == {"break": 4, "spe": 1, "unfinished_reasoning": 4}
    assert [c["scores"]["break"] for c in summary["by_turn"]] == [0.0, 0.0, 1.0]  # the drift curve
    assert [c["n_turns"] for c in summary["by_turn"]] == [2, 1, 1]
    assert summary["by_kind"]["small-talk"]["scores"]["break"] == pytest.approx(1 / 3)
    assert summary["scenarios"]["sha256"] == sha256_file(scenario_file) and summary["mode"] == "replay"



def test_a_run_is_also_written_in_lm_eval_layout_under_its_own_task(llm_server, tmp_path, scenario_file,
                                                                      fixture_data_dir):
    from rolebench_eval.outputs import find_runs

    robot = llm_server({"rules": [
        {"id": "navy", "match": ["leave the navy"], "reply": "<think>stay in role</think>The sea wanted me."},
        {"id": "t3", "match": [TALK[2]], "reply": "As an AI, I have no dog."},
    ], "default_reply": "Aye."})
    out = tmp_path / "out"
    assert _converse(robot, scenario_file, out, tmp_path / "c.sqlite", "--data-dir", str(fixture_data_dir)) == 0
    (run,), errors = find_runs([out])
    assert not errors and run.name == "char-a" and set(run.samples) == {"rolebench_live_replay_en"}
    assert run.samples["rolebench_live_replay_en"].name == f"samples_rolebench_live_replay_en_{run.date}.jsonl"
    lines = [json.loads(x) for x in run.samples["rolebench_live_replay_en"].read_text(encoding="utf-8").splitlines()]
    own, talk = _conversations(out)
    assert [x["doc"]["scenario_id"] for x in lines] == [own["scenario_id"], talk["scenario_id"]]
    assert lines[1]["doc"]["user_turns"] == TALK and lines[1]["doc"]["role"] == "Marlow Finch"
    assert lines[1]["doc"]["scenario_kind"] == "small-talk"
    assert lines[0]["resps"] == [["<think>stay in role</think>The sea wanted me."]]
    assert lines[0]["filtered_resps"] == ["The sea wanted me."]
    assert lines[1]["filtered_resps"] == ["Aye.", "Aye.", "As an AI, I have no dog."]
    # one sample = one conversation: its break rate, its mean SPE where it has one, each turn's scores
    assert (lines[0]["break"], lines[0]["spe"], lines[0]["break_d1"]) == (0.0, pytest.approx(4 / 9), 0.0)
    assert lines[1]["break"] == pytest.approx(1 / 3) and "spe" not in lines[1]
    assert [lines[1][f"break_d{t}"] for t in (1, 2, 3)] == [0.0, 0.0, 1.0]
    results = run.results["results"]["rolebench_live_replay_en"]
    assert results["break,none"] == pytest.approx((0 + 1 / 3) / 2)  # the mean over conversations
    assert results["spe,none"] == pytest.approx(4 / 9) and results["break_d3,none"] == 1.0
    meta = run.task_metadata("rolebench_live_replay_en")
    assert meta["data"]["sha256"] == sha256_file(scenario_file) and meta["version"] == 1.0
    assert run.results["n-samples"]["rolebench_live_replay_en"] == {"original": 2, "effective": 2}
    # a rerun replaces the earlier run's lm-eval files rather than adding a second run
    assert _converse(robot, scenario_file, out, tmp_path / "c.sqlite", "--data-dir", str(fixture_data_dir)) == 0
    assert len(list(out.glob("results_*.json"))) == 1 and len(list(out.glob("samples_*.jsonl"))) == 1


def test_a_stopped_run_resumes_without_resending_answered_turns(llm_server, tmp_path, scenario_file,
                                                                fixture_data_dir):
    captain = llm_server(CAPTAIN)
    args = (captain, scenario_file, tmp_path / "out", tmp_path / "c.sqlite", "--data-dir", str(fixture_data_dir))
    assert _converse(*args, "--max-requests", "3") == 3  # budget: two first turns and one second turn
    first = _conversations(tmp_path / "out")
    assert [len(c["turns"]) for c in first] == [1, 2] and not first[1]["complete"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["complete"] is False
    assert _converse(*args) == 0
    log = _log(captain)
    assert len(log) == 4 and len({e["hash"] for e in log}) == 4  # each request sent once, over both runs
    assert [len(c["turns"]) for c in _conversations(tmp_path / "out")] == [1, 3]


SIMULATOR = {"rules": [
    {"id": "u3", "match": ["You are a curious traveller.", "Hardtack"], "reply": "And the storm?"},
    {"id": "u2", "match": ["You are a curious traveller.", "fair wind"], "reply": "What do you eat at sea?"},
], "default_reply": "Tell me more."}


def test_a_live_run_frozen_and_replayed_gives_the_same_conversation(llm_server, tmp_path, scenario_file,
                                                                    fixture_data_dir, capsys):
    sim, captain = llm_server(SIMULATOR), llm_server(CAPTAIN)
    data = ["--data-dir", str(fixture_data_dir)]
    live = tmp_path / "live"
    assert _converse(captain, scenario_file, live, tmp_path / "c.sqlite", *data, "--mode", "live", "--turns", "3",
                     "--simulator-model", "sim", "--simulator-base-url", sim.url) == 0
    talk = _conversations(live)[1]
    assert [t["user"] for t in talk["turns"]] == [TALK[0], "What do you eat at sea?", "And the storm?"]
    assert len(_log(sim)) == 4  # turns 2 and 3 of both conversations
    frozen = tmp_path / "frozen.jsonl"
    assert main(["scenarios", "freeze", str(live), "--scenarios", str(scenario_file), "--out", str(frozen)]) == 0
    assert main(["scenarios", "check", str(frozen)]) == 0
    sent = len(_log(captain))
    for cache in ("c.sqlite", "fresh.sqlite"):  # from the cache (nothing sent), and asked again
        out = tmp_path / f"replay-{cache}"
        assert _converse(captain, frozen, out, tmp_path / cache, *data) == 0
        strip = [[{k: t[k] for k in ("user", "reply", "scores")} for t in c["turns"]] for c in _conversations(out)]
        assert strip == [[{k: t[k] for k in ("user", "reply", "scores")} for t in c["turns"]]
                         for c in _conversations(live)]
        if cache == "c.sqlite":
            assert len(_log(captain)) == sent
    assert len(_log(sim)) == 4  # replay never asks the simulator
    assert main(["scenarios", "freeze", str(tmp_path / "replay-c.sqlite"), "--scenarios", str(frozen),
                 "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "field 'mode': is 'replay'" in capsys.readouterr().err


def test_dry_run_prices_the_first_turn_and_sends_nothing(llm_server, tmp_path, scenario_file, capsys):
    captain = llm_server(CAPTAIN)
    assert _converse(captain, scenario_file, tmp_path / "out", tmp_path / "c.sqlite", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "2 conversations, up to 4 requests" in out and "requests to send: 2 " in out
    assert _log(captain) == [] and not (tmp_path / "out").exists()
    assert _converse(captain, scenario_file, tmp_path / "out", tmp_path / "c.sqlite", "--mode", "live") == 2
    assert "--simulator-model" in capsys.readouterr().err


def _own_story_reply() -> str:
    return json.dumps({"goal": "learn why he left the navy", "persona": "a young sailor."})


def test_scenarios_write_asks_the_simulator_once_and_files_are_checked(llm_server, tmp_path, fixture_data_dir,
                                                                       capsys):
    sim = llm_server({"rules": [
        {"id": "own", "match": ["The questions themselves are given"], "reply": _own_story_reply()},
        {"id": "talk", "match": ["small talk"], "reply": "```json\n" + json.dumps(
            {"goal": "chat", "persona": "a baker.", "turns": ["Nice day?", "Bread?", "Cake?", "Pie?"]}) + "\n```"},
        {"id": "press", "match": ["drop the role"], "reply": "I refuse to write that."},
    ]})
    out = tmp_path / "s.jsonl"
    cmd = ["scenarios", "write", "--data-dir", str(fixture_data_dir), "--kinds",
           "own-story,small-talk,identity-pressure", "--turns", "3", "--out", str(out), "--model", "sim",
           "--base-url", sim.url, "--cache", str(tmp_path / "c.sqlite"), "--no-progress", "--timeout", "5"]
    assert main(cmd) == 0
    assert "dropped: not JSON 2" in capsys.readouterr().out
    scenarios = read_scenarios(out)
    assert [s.id for s in scenarios] == ["Marlow Finch/own-story/0", "Marlow Finch/small-talk/0",
                                         "Ilse Varga/own-story/0", "Ilse Varga/small-talk/0"]
    # own-story asks the role's own usable items (the placeholder-reference one is left out)
    assert [(t.text, t.item_id) for t in scenarios[0].turns] == [(NAVY.strip(), item_id("Marlow Finch", NAVY))]
    assert [t.text for t in scenarios[1].turns] == ["Nice day?", "Bread?", "Cake?"]
    assert scenarios[0].source.sha256 == sha256_file(fixture_data_dir / SPLIT_FILE)
    assert scenarios[1].written_by["model"] == "sim" and len(_log(sim)) == 6
    before = out.read_bytes()
    assert main(cmd) == 0 and out.read_bytes() == before and len(_log(sim)) == 6  # all from the cache

    lines = before.decode().splitlines()
    lines[1] = lines[1].replace("Bread?", "Butter?")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["scenarios", "check", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}:2: field 'hash': is " in err and "edited by hand" in err
    assert main(["scenarios", "seal", str(out)]) == 0 and main(["scenarios", "check", str(out)]) == 0
    assert read_scenarios(out)[1].turns[1].text == "Butter?"


def test_scenarios_from_another_version_of_the_data_are_refused(llm_server, tmp_path, scenario_file,
                                                                 fixture_data_dir, capsys):
    changed = tmp_path / "data"
    import shutil

    shutil.copytree(fixture_data_dir, changed)
    with open(changed / SPLIT_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps({"role": "Ilse Varga", "question": "More?", "generated": ["Yes."]}) + "\n")
    captain = llm_server(CAPTAIN)
    assert _converse(captain, scenario_file, tmp_path / "out", tmp_path / "c.sqlite", "--data-dir", str(changed)) == 2
    assert "field 'source.sha256': the scenarios were written from another version" in capsys.readouterr().err
    assert _log(captain) == []  # refused before anything was sent
    assert main(["scenarios", "check", str(scenario_file), "--data-dir", str(changed)]) == 2
    assert "another version" in capsys.readouterr().err
    assert main(["scenarios", "check", str(scenario_file), "--data-dir", str(fixture_data_dir)]) == 0
    assert "turns_with_item: 1" in capsys.readouterr().out

    scenarios = _scenarios(fixture_data_dir)
    scenarios[0].turns[0].item_id = "0123456789abcdef"
    write_scenarios(tmp_path / "bad.jsonl", scenarios)
    assert main(["scenarios", "check", str(tmp_path / "bad.jsonl"), "--data-dir", str(fixture_data_dir)]) == 2
    assert "field 'turns[0].item_id': scenario 'Marlow Finch/own-story/0': '0123456789abcdef' is no item" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_replay_against_transformers_serve_gives_the_same_conversations_twice(transformers_server, tmp_path,
                                                                              scenario_file, fixture_data_dir):
    """A server nobody here wrote: multi-turn requests with the model's own replies are accepted, and greedy
    decoding gives the same conversations from two empty caches (the second run asks everything again)."""
    srv, runs = transformers_server, []
    for n in range(2):
        out = tmp_path / f"run{n}"
        assert main(["converse", str(scenario_file), "--model", srv.model, "--base-url", srv.url, "--out", str(out),
                     "--cache", str(tmp_path / f"c{n}.sqlite"), "--no-progress", "--max-new-tokens", "6",
                     "--concurrency", "2", "--data-dir", str(fixture_data_dir)]) == 0
        runs.append(_conversations(out))
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert summary["requests"] == {"model_sent": 4, "model_cached": 0} and summary["complete"]
    assert runs[0] == runs[1]
    assert [len(c["turns"]) for c in runs[0]] == [1, 3] and all(t["reply"] for c in runs[0] for t in c["turns"])


@pytest.mark.slow
def test_a_killed_run_resumes_without_resending_answered_turns(llm_server, tmp_path, scenario_file,
                                                               fixture_data_dir):
    """SIGKILL midway (one request in flight at a time): the rerun sends only what was not answered; at most the
    one request in flight at the kill goes out twice."""
    import os
    import signal
    import subprocess
    import sys
    import time

    captain = llm_server(CAPTAIN, latency=0.4)
    cmd = [sys.executable, "-m", "rolebench_eval.cli", "converse", str(scenario_file), "--model", "char-a",
           "--base-url", captain.url, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite"),
           "--no-progress", "--concurrency", "1", "--data-dir", str(fixture_data_dir)]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(_log(captain)) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "summary.json").exists()
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    hashes = [e["hash"] for e in _log(captain) if e["outcome"] == "ok"]
    assert len(set(hashes)) == 4 and len(hashes) <= 5
    assert [[t["reply"] for t in c["turns"]] for c in _conversations(tmp_path / "out")] == \
        [["The sea wanted me."], ["Aye, a fair wind.", "Hardtack and salt pork.", "Dogs are fine, cats catch rats."]]


def test_characters_come_from_a_folder_written_by_generate_too(tmp_path):
    from rolebench_eval.conversations.characters import default_split, load_characters

    (tmp_path / "role_specific").mkdir()
    (tmp_path / "rolebench_custom.json").write_text(json.dumps({"format_version": 2, "lang": "zh", "roles": {}}))
    rows = [{"role": "石兰", "question": "你为什么离开家乡？", "generated": ["为了寻找真相。"]},
            {"role": "石兰", "question": "你怕什么？", "generated": ["(No response provided)"]}]
    (tmp_path / "role_specific" / "test.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert default_split(tmp_path) == "custom_specific"
    found = load_characters("custom_specific", tmp_path, None)
    [character] = found.characters.values()
    assert (character.name, character.lang, character.description) == ("石兰", "zh", "")
    assert [i.question for i in character.items] == ["你为什么离开家乡？"]  # the placeholder-only item is left out
    assert found.sha256 == sha256_file(tmp_path / "role_specific" / "test.jsonl")
    with pytest.raises(ValueError, match="'Nobody' is not a role of split custom_specific"):
        load_characters("custom_specific", tmp_path, ["Nobody"])


def test_batch_jobs_answer_each_turn_as_live_requests_would(llm_server, tmp_path, scenario_file, fixture_data_dir,
                                                            capsys):
    captain = llm_server(CAPTAIN)
    data = ("--data-dir", str(fixture_data_dir))
    assert _converse(captain, scenario_file, tmp_path / "batch", tmp_path / "b.sqlite", *data, "--batch",
                     "--batch-poll-interval", "0.02") == 0
    assert captain.count("ok") == 0 and captain.count("batch") == 4  # one job per turn: 2, 1, 1 lines
    assert sum(1 for r in captain.requests() if r.get("api") == "POST /batches") == 3
    assert _converse(captain, scenario_file, tmp_path / "sync", tmp_path / "s.sqlite", *data) == 0
    assert _conversations(tmp_path / "batch") == _conversations(tmp_path / "sync")
    assert _converse(captain, scenario_file, tmp_path / "x", tmp_path / "s.sqlite", "--batch-export", "f.jsonl") == 2
    assert "use --batch (one Batch job per turn)" in capsys.readouterr().err


def test_scenarios_through_a_batch_file_export_then_import(llm_server, tmp_path, fixture_data_dir, capsys):
    sim = llm_server({"rules": [{"id": "own", "match": ["The questions themselves are given"],
                                 "reply": _own_story_reply()}]})
    out, cache = tmp_path / "s.jsonl", tmp_path / "c.sqlite"
    cmd = ["scenarios", "write", "--data-dir", str(fixture_data_dir), "--kinds", "own-story", "--out", str(out),
           "--model", "sim", "--base-url", sim.url, "--cache", str(cache), "--no-progress"]
    assert main([*cmd, "--batch-export", str(tmp_path / "in.jsonl")]) == 0 and not out.exists()
    lines = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and sim.requests() == []  # Marlow Finch and Ilse Varga, nothing sent
    answers = [{"custom_id": line["custom_id"], "response": {"status_code": 200, "body": {
        "choices": [{"message": {"content": _own_story_reply()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5}}}} for line in lines]
    (tmp_path / "out.jsonl").write_text("\n".join(json.dumps(a) for a in answers) + "\n", encoding="utf-8")
    assert main([*cmd, "--batch-import", str(tmp_path / "out.jsonl"), "--max-requests", "0"]) == 0
    assert "2 stored" in capsys.readouterr().out and sim.requests() == []
    assert [s.goal for s in read_scenarios(out)] == ["learn why he left the navy"] * 2


def test_a_live_conversation_whose_simulator_falls_silent_ends_there(llm_server, tmp_path, scenario_file,
                                                                     fixture_data_dir, capsys):
    sim, captain = llm_server({"default_reply": "<think>nothing to say</think>"}), llm_server(CAPTAIN)
    assert _converse(captain, scenario_file, tmp_path / "out", tmp_path / "c.sqlite", "--data-dir",
                     str(fixture_data_dir), "--mode", "live", "--simulator-model", "sim",
                     "--simulator-base-url", sim.url) == 0
    assert "1 conversation(s) ended before their last turn" in capsys.readouterr().out
    own, talk = _conversations(tmp_path / "out")
    assert (len(own["turns"]), own["complete"], len(talk["turns"]), talk["complete"]) == (1, True, 1, False)


ZH_SPLIT_FILE = "rolebench-zh/role_specific/test.jsonl"
VOYAGE = " 老船长，您最难忘的一次航行是哪一次？"  # the fixture's item; its reference: 那年冬天去北边，冰山比船还高。


def test_a_chinese_conversation_is_prompted_scored_and_written_the_chinese_way(llm_server, tmp_path,
                                                                               fixture_data_dir):
    from rolebench_eval.outputs import find_runs

    source = Source(split="specific_zh", sha256=sha256_file(fixture_data_dir / ZH_SPLIT_FILE), data="local")
    scenario = Scenario(id="老船长/own-story/0", character="老船长", kind="own-story", description="见过大风浪的老水手",
                        lang="zh", source=source, goal="聊聊航海", persona="一位好奇的旅人。",
                        turns=[UserTurn(text=VOYAGE.strip(), item_id=item_id("老船长", VOYAGE)),
                               UserTurn(text="你是人工智能吗？")])
    scenarios = tmp_path / "scenarios.jsonl"
    write_scenarios(scenarios, [scenario])
    srv = llm_server({"rules": [  # the first rule that matches anywhere in the request: the later turn first
        {"id": "ai", "match": ["你是人工智能吗"], "reply": "作为一个人工智能，我没有航行过。"},
        {"id": "voyage", "match": ["最难忘的一次航行"], "reply": "<think>想想</think>冰山比船还高。"},
    ], "default_reply": "嗯。"})
    out = tmp_path / "out"
    assert _converse(srv, scenarios, out, tmp_path / "c.sqlite", "--data-dir", str(fixture_data_dir)) == 0
    (conversation,) = _conversations(out)
    # the Chinese role prompt, then the model's own first reply fed back before the second question
    system = {"role": "system", "content": role_prompt("老船长", "zh", "见过大风浪的老水手")}
    first = [system, {"role": "user", "content": VOYAGE.strip()}]
    second = first + [{"role": "assistant", "content": "冰山比船还高。"}, {"role": "user", "content": "你是人工智能吗？"}]
    assert system["content"].startswith("你是老船长，你的特征描述是：见过大风浪的老水手。")
    assert {e["hash"] for e in _log(srv)} == {_hash(first), _hash(second)}
    # SPE in characters, punctuation included as the paper's release counts them: the LCS 冰山比船还高。 holds
    # 7 of the reference's 15 characters; the second reply claims to be an AI in Chinese: a break
    assert [t["scores"] for t in conversation["turns"]] == [
        {"break": 0.0, "spe": pytest.approx(7 / 15), "unfinished_reasoning": 0.0},
        {"break": 1.0, "unfinished_reasoning": 0.0}]
    (run,), errors = find_runs([out])
    assert not errors and set(run.samples) == {"rolebench_live_replay_zh"}
    results = run.results["results"]["rolebench_live_replay_zh"]
    assert results["spe,none"] == pytest.approx(7 / 15) and results["break,none"] == pytest.approx(1 / 2)
    assert (results["break_d1,none"], results["break_d2,none"]) == (0.0, 1.0)
