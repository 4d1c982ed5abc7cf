"""The board pipeline: its spec (one line per mistake), its plan, and whole boards run, killed, rerun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolebench_eval.board import Step, is_done, plan
from rolebench_eval.errors import InputError
from rolebench_eval.outputs.board_spec import read_spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "board_replay.yaml"
COUNTS = re.compile(r"(\d+) step\(s\) run, (\d+) already done, (\d+) failed, (\d+) not run")


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line, field, problem", [
    ("models:\n  - {name: a, model: dummy}\n  - name: b\n    model: hf\n    paramters: 7B\ntasks: [rolebench_specific_zh]\n",
     3, "models[1]", "unknown field paramters"),
    ("models:\n  - {name: a, model: dummy}\ntasks: [rolebench_specific_zh]\nshards: two\n", 4, "shards", "expected"),
    ("models:\n  - {name: a, model: dummy}\ntasks:\n  - rolebench_specific_zh\n  - rolebench_specifc_en\n",
     5, "tasks[1]", "unknown task 'rolebench_specifc_en'"),
    ("models:\n  - name: a\n    model: rolegpt\n    adapter: runs/a\ntasks: [rolebench_specific_zh]\n",
     4, "models[0].adapter", "not 'rolegpt'"),
    ("models:\n  - {name: a b, model: dummy}\n  - {name: a/b, model: dummy}\ntasks: [rolebench_specific_zh]\n",
     3, "models[1].name", "share the folder 'a_b'"),
    ("models: []\ntasks: [rolebench_specific_zh]\n", 1, "models", "length >= 1"),
    ("models:\n  - {name: a, model: dummy}\ntasks: [rolebench_specific_zh]\nshards: {rolebench_general_zh: 2}\n",
     4, "shards", "not one of the board's tasks"),
    ("models:\n  - {name: a, model: dummy}\ntasks: [rolebench_specific_zh]\nconversations: {scenarios: s.jsonl}\n",
     4, "conversations", "no model of the board is a chat endpoint"),
    ("models:\n  - {name: a, model: dummy}\n  - {name: b, model: local-chat-completions}\ntasks: [rolebench_specific_zh]\n"
     "conversations: {scenarios: s.jsonl, models: [a]}\n", 5, "conversations.models[0]", "'dummy' model; conversations"),
    ("models:\n  - {name: b, model: local-chat-completions}\ntasks: [rolebench_specific_zh]\n"
     "conversations: {scenarios: s.jsonl, models: [c]}\n", 4, "conversations.models[0]", "not one of the board's"),
])
def test_a_bad_spec_is_one_line_naming_file_line_and_field(tmp_path, text, line, field, problem):
    path = _spec(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_spec(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)
    assert problem in err.value.problem and "\n" not in str(err.value)


def test_model_args_and_adapters_become_lm_eval_flags(tmp_path):
    (tmp_path / "adapters" / "a").mkdir(parents=True)
    spec = read_spec(_spec(tmp_path, "models:\n"
                                      "  - {name: A, model: hf, model_args: {pretrained: m, dtype: bfloat16}, adapter: adapters/a}\n"
                                      "  - {name: B, model: vllm, model_args: pretrained=m, adapter: org/lora}\n"
                                      "  - {name: C D, model: dummy}\n"
                                      "tasks: [rolebench_specific_zh]\nout: built\n"))
    assert [m.lm_eval_model_args() for m in spec.models] == [
        f"pretrained=m,dtype=bfloat16,peft={tmp_path / 'adapters' / 'a'}", "pretrained=m,lora_local_path=org/lora",
        "model=C_D"]
    assert spec.out == str(tmp_path / "built")


def test_the_example_plans_runs_merges_and_one_leaderboard(monkeypatch):
    spec = read_spec(EXAMPLE)
    steps = plan(spec)
    kinds = [s.argv[0] for s in steps]
    assert (kinds.count("run"), kinds.count("merge"), kinds.count("leaderboard"), len(steps)) == (8, 4, 1, 13)
    merge = next(s for s in steps if s.name == "dummy.rolebench_specific_zh.merge")
    parts = [s for s in steps if s.name in merge.needs]
    assert [p.argv[p.argv.index("--shard") + 1] for p in parts] == ["0/2", "1/2"]
    assert list(merge.argv[1:3]) == [p.out for p in parts]
    board = steps[-1]
    assert set(board.needs) == {s.name for s in steps if s.argv[0] == "merge"}
    assert f"{Path(spec.out) / 'runs' / 'RoleGPT_replay' / 'rolebench_general_zh'}=RoleGPT (replay)" in board.argv
    assert steps.index(merge) > max(steps.index(p) for p in parts)


def test_a_step_is_done_when_its_folder_and_a_record_of_the_same_command_exist(tmp_path):
    step = Step("s", "s", ("run", "--tasks", "x", str(tmp_path / ".staging" / "s")), str(tmp_path / "o"))
    assert not is_done(tmp_path, step)
    (tmp_path / "o").mkdir()
    assert not is_done(tmp_path, step)  # renamed into place, record not yet written: redone
    (tmp_path / ".steps").mkdir()
    (tmp_path / ".steps" / "s.json").write_text('{"argv": ["run", "--tasks", "y"]}')
    assert not is_done(tmp_path, step)  # another command (the spec changed)
    (tmp_path / ".steps" / "s.json").write_text(f'{{"argv": {list(step.argv)!r}}}'.replace("'", '"'))
    assert is_done(tmp_path, step)


def _board(spec: Path, out: Path, data_dir: Path, *flags: str, env: dict | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "ROLEBENCH_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "rolebench_eval.cli", "board", str(spec), "--out", str(out),
                             *flags], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def _finish(proc: subprocess.Popen) -> tuple[int, tuple[int, ...], str]:
    stdout, stderr = proc.communicate()
    found = COUNTS.search(stdout)
    assert found, stdout + stderr
    return proc.returncode, tuple(map(int, found.groups())), stderr


@pytest.mark.slow
def test_the_example_board_builds_a_leaderboard_and_a_rerun_does_no_work(tmp_path, fixture_data_dir):
    out = tmp_path / "board"
    code, counts, stderr = _finish(_board(EXAMPLE, out, fixture_data_dir, "--jobs", "2"))
    assert (code, counts) == (0, (13, 0, 0, 0)), stderr
    page = (out / "leaderboard" / "index.html").read_text(encoding="utf-8")
    assert "RoleGPT (replay)" in page and "dummy" in page
    assert '<a class="model" href="https://arxiv.org/abs/2310.00746" rel="noopener noreferrer">RoleGPT (replay)</a>' \
           '<span class="about" title="base model: gpt-4; date: ' in page  # the spec's display data, handed over
    assert not [p for p in (out / ".staging").iterdir() if p.is_dir()]  # no step's output left half-built (a
    # writer's lock file may stay: fileio.folder_lock never unlinks one another writer may be waiting on)
    code, counts, _ = _finish(_board(EXAMPLE, out, fixture_data_dir))
    assert (code, counts) == (0, (0, 13, 0, 0))


@pytest.mark.slow
def test_a_board_killed_midway_reruns_only_what_was_not_finished(tmp_path, fixture_data_dir):
    out = tmp_path / "board"
    proc = _board(EXAMPLE, out, fixture_data_dir, start_new_session=True)
    records = out / ".steps"
    while proc.poll() is None and len(list(records.glob("*.json")) if records.is_dir() else []) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the board finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the board and its worker, mid-step
    proc.communicate()
    before = {p.name: p.stat().st_mtime_ns for p in records.glob("*.json")}
    code, (ran, skipped, failed, blocked), stderr = _finish(_board(EXAMPLE, out, fixture_data_dir))
    assert (code, ran, skipped, failed, blocked) == (0, 13 - len(before), len(before), 0, 0), stderr
    assert {p.name: p.stat().st_mtime_ns for p in records.glob("*.json") if p.name in before} == before
    assert (out / "leaderboard" / "index.html").is_file()


@pytest.mark.slow
def test_a_failed_step_is_reported_with_its_log_and_the_others_go_on(tmp_path, fixture_data_dir):
    spec = _spec(tmp_path, "models:\n  - {name: broken, model: no_such_model}\n  - {name: dummy, model: dummy}\n"
                           "tasks: [rolebench_specific_zh]\n")
    out = tmp_path / "board"
    code, counts, stderr = _finish(_board(spec, out, fixture_data_dir, "--jobs", "2"))
    assert (code, counts) == (4, (1, 0, 1, 1))  # dummy ran; broken failed; the leaderboard needs both
    log = out / "logs" / "broken.rolebench_specific_zh.log"
    assert f"failed: broken.rolebench_specific_zh: see {log}" in stderr
    assert "no_such_model" in log.read_text(encoding="utf-8")
    assert (out / "runs" / "dummy" / "rolebench_specific_zh").is_dir()
    assert not (out / "leaderboard").exists()


RAY_CLUSTER = """set -e
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0
ray start --head --node-ip-address=127.0.0.1 --port=6379 --num-cpus=2 --num-gpus=0 --include-dashboard=false \\
    --disable-usage-stats > "$1/ray-start.log" 2>&1
trap 'ray stop --force > /dev/null 2>&1' EXIT
RAY_ADDRESS=127.0.0.1:6379 "$2" -m rolebench_eval.cli board "$3" --backend ray --out "$1/ray"
"""


def _tiny_adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter on the tiny model whose weights are not zero (so it changes the answers)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    import torch

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


@pytest.mark.slow
def test_the_ray_backend_gives_the_local_board(tmp_path, fixture_data_dir, tiny_llama):
    """The replay, the tiny model and the tiny model with an adapter, on a Ray cluster of its own (in a network
    namespace with loopback only: no traffic leaves the test) and on the local pool: the same board."""
    pytest.importorskip("ray")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs a network namespace of its own (unshare -n) for the test's Ray cluster")
    adapter = _tiny_adapter(tiny_llama, tmp_path / "adapter")
    hf = f"model: hf, model_args: {{pretrained: {tiny_llama}}}, run_args: [--gen_kwargs, max_gen_toks=8]"
    spec = _spec(tmp_path, "models:\n  - {name: replay, model: rolegpt, resources: {cpus: 1}}\n"
                           f"  - {{name: tiny, {hf}}}\n  - {{name: tiny-lora, {hf}, adapter: {adapter}}}\n"
                           "tasks: [rolebench_specific_zh]\nshards: 2\n")
    script = tmp_path / "cluster.sh"
    script.write_text(RAY_CLUSTER, encoding="utf-8")
    env = {**os.environ, "ROLEBENCH_DATA_DIR": str(fixture_data_dir),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ray = subprocess.run(["unshare", "-n", "bash", str(script), str(tmp_path), sys.executable, str(spec)],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert ray.returncode == 0, ray.stdout + ray.stderr
    assert COUNTS.search(ray.stdout).groups() == ("10", "0", "0", "0")  # 3 models x (2 shards + merge) + board
    code, counts, stderr = _finish(_board(spec, tmp_path / "local", fixture_data_dir, "--jobs", "2"))
    assert (code, counts) == (0, (10, 0, 0, 0)), stderr
    for table in ("leaderboard.csv", "breakdowns.csv"):
        assert ((tmp_path / "ray" / "leaderboard" / table).read_text(encoding="utf-8")
                == (tmp_path / "local" / "leaderboard" / table).read_text(encoding="utf-8"))
    board = (tmp_path / "local" / "leaderboard" / "leaderboard.csv").read_text(encoding="utf-8")
    assert all(name in board for name in ("replay", "tiny", "tiny-lora"))
    answers = {}
    for model in ("replay", "tiny", "tiny-lora"):
        [ray_samples] = (tmp_path / "ray" / "runs" / model).rglob("samples_*.jsonl")
        [local_samples] = (tmp_path / "local" / "runs" / model).rglob("samples_*.jsonl")
        assert ray_samples.read_text(encoding="utf-8") == local_samples.read_text(encoding="utf-8")
        answers[model] = [json.loads(line)["resps"] for line in local_samples.read_text(encoding="utf-8").splitlines()]
    assert answers["tiny"] != answers["tiny-lora"]  # the adapter was loaded


def test_conversations_become_one_converse_per_chat_endpoint_model(tmp_path):
    spec = read_spec(_spec(tmp_path, "models:\n"
                                      "  - {name: Served A, model: local-chat-completions,"
                                      " model_args: 'model=char-a,base_url=http://127.0.0.1:8000/v1/chat/completions'}\n"
                                      "  - {name: B, model: openai-chat-completions, model_args: {model: gpt-4o}}\n"
                                      "  - {name: C, model: dummy}\n"
                                      "tasks: [rolebench_specific_zh]\nout: built\n"
                                      "judges: [{judge: conversation, model: j}]\n"
                                      "conversations: {scenarios: scen/s.jsonl, args: [--turns, '2']}\n"))
    steps = {s.name: s for s in plan(spec)}
    scen = str(tmp_path / "scen" / "s.jsonl")
    assert steps["converse.Served_A"].argv == (
        "converse", scen, "--model", "char-a", "--base-url", "http://127.0.0.1:8000/v1", "--turns", "2",
        "--no-progress", "--out", str(tmp_path / "built" / ".staging" / "converse.Served_A"))
    assert steps["converse.B"].argv[:4] == ("converse", scen, "--model", "gpt-4o")  # OpenAI's endpoint: no URL
    assert "--base-url" not in steps["converse.B"].argv and "converse.C" not in steps
    assert steps["converse.Served_A"].out == str(tmp_path / "built" / "conversations" / "Served_A")
    # a judge step is given the conversations too (the conversation judge reads only them), after they are written
    judge = steps["judge.0"]
    conversations = (steps["converse.Served_A"].out, steps["converse.B"].out)
    assert judge.argv[:4] == ("judge", str(tmp_path / "built" / "runs" / "Served_A" / "rolebench_specific_zh"),
                              str(tmp_path / "built" / "runs" / "B" / "rolebench_specific_zh"),
                              str(tmp_path / "built" / "runs" / "C" / "rolebench_specific_zh"))
    assert judge.argv[4:8] == (*conversations, "--judge", "conversation")
    assert {"converse.Served_A", "converse.B"} <= set(judge.needs)


@pytest.mark.slow
def test_a_board_puts_its_served_model_through_the_scenarios(llm_server, tmp_path, fixture_data_dir):
    from rolebench_eval.fileio import sha256_file
    from rolebench_eval.outputs.scenario import Scenario, Source, UserTurn, write_scenarios

    talk = ["Lovely weather for sailing, isn't it?", "What do you eat at sea?"]
    srv = llm_server({"default_reply": "Arr.", "rules": [{"id": "t2", "match": [talk[1]], "reply": "Salt pork."},
                                                         {"id": "t1", "match": [talk[0]], "reply": "A fair wind."}]})
    verdict = {c: {"score": n, "reason": "scripted"} for c, n in
               zip(("in_character", "consistency", "knowledge", "engagement"), (9, 8, 6, 7))}
    judge = llm_server({"default_reply": json.dumps(verdict)})
    split = fixture_data_dir / "rolebench-eng/instruction-generalization/role_specific/test.jsonl"
    write_scenarios(tmp_path / "scenarios.jsonl", [Scenario(
        id="Marlow Finch/small-talk/0", character="Marlow Finch", kind="small-talk", lang="en",
        source=Source(split="specific_en", sha256=sha256_file(split), data="local"), goal="chat",
        persona="a traveller.", description="a retired sea captain", turns=[UserTurn(text=t) for t in talk])])
    spec = _spec(tmp_path, "models:\n"
                           "  - name: Captain\n    model: local-chat-completions\n    apply_chat_template: true\n"
                           f"    model_args: 'model=captain,base_url={srv.url}/chat/completions,num_concurrent=1'\n"
                           "tasks: [rolebench_specific_zh]\n"
                           f"conversations: {{scenarios: scenarios.jsonl, args: [--cache, '{tmp_path / 'c.sqlite'}']}}\n"
                           f"judges:\n  - {{judge: conversation, model: j, base_url: '{judge.url}',"
                           f" args: [--cache, '{tmp_path / 'j.sqlite'}']}}\n")
    out = tmp_path / "board"
    code, counts, stderr = _finish(_board(spec, out, fixture_data_dir, env={"OPENAI_API_KEY": "sk-board"}))
    assert (code, counts) == (0, (4, 0, 0, 0)), stderr  # run, converse, judge, leaderboard
    (conversation,) = [json.loads(line) for line in
                       (out / "conversations" / "Captain" / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(t["user"], t["reply"]) for t in conversation["turns"]] == [(talk[0], "A fair wind."), (talk[1], "Salt pork.")]
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text(encoding="utf-8"))
    (row,) = [r for r in board["rows"] if r["name"] == "Captain"]  # the runs and the conversations: one row
    assert row["cells"]["live_replay_en_break"]["value"] == 0.0 and "zh_spe" in row["cells"]
    assert [p["turn"] for p in board["drift_curves"]["Captain"]["rolebench_live_replay_en"]["break"]] == [1, 2]
    assert row["cells"]["judge:rubric_mean:rolebench_live_replay_en:conversation"]["value"] == 7.5  # (9+8+6+7)/4
    sent = srv.count() + judge.count()
    code, counts, _ = _finish(_board(spec, out, fixture_data_dir, env={"OPENAI_API_KEY": "sk-board"}))
    assert (code, counts) == (0, (0, 4, 0, 0)) and srv.count() + judge.count() == sent  # a rerun asks nothing
