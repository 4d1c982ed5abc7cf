"""``rolebench-eval generate`` as a user runs it: a subprocess against the scripted local server.

A run killed with SIGKILL resumes from the cache and ends with exactly the files of an
uninterrupted run; bad input exits 2 naming file and field; a budget cap exits 3; a run
that keeps nothing exits 5 and writes nothing. The server below answers every sample of an
instruction alike, as ``transformers serve`` does when it ignores ``temperature``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "generate"
KEY = "sk-test-DISTINCTIVE-generate-cli-4d1e"
N_REQUESTS = 36
ROLE = "Captain Ottoline Brine"
# One answer per instruction, so which sample a reply goes to does not matter across a kill.
SCRIPT = {"default_reply": "UNSCRIPTED", "rules": [
    {"id": f"i{n}", "match": [text], "reply": f"Aye. Answer {n}, salt in the wound!"}
    for n, text in enumerate(json.loads(line).get("instruction") or json.loads(line)["question"]
                             for line in (FIX / "instructions.jsonl").read_text(encoding="utf-8").splitlines()
                             if line.strip())]}


def _cmd(srv, root: Path, *extra: str, action: str = "rolegpt") -> list[str]:
    inputs = ["--instructions", str(FIX / "instructions.jsonl")] if action == "rolegpt" else []
    return [sys.executable, "-m", "rolebench_eval.cli", "generate", action, "--profile",
            str(FIX / "brine.yaml"), *inputs, "--out", str(root / "out"), "--model", "gen-m", "--base-url", srv.url,
            "--cache", str(root / "cache.sqlite"), "--timeout", "2", "--backoff-base", "0.01", "--no-progress", *extra]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"} | {"OPENAI_API_KEY": KEY}


def _run(srv, root: Path, *extra: str, action: str = "rolegpt") -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(srv, root, *extra, action=action), env=_env(), capture_output=True, text=True)


def _record(root: Path, method: str = "rolegpt") -> dict:
    meta = json.loads((root / "out" / "rolebench_custom.json").read_text(encoding="utf-8"))
    return meta["roles"][ROLE][method]


def _files(root: Path) -> dict[str, str]:
    out = root / "out"
    return {str(p.relative_to(out)): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.jsonl"))}


@pytest.mark.slow
def test_sigkill_midway_resumes_to_the_same_files(llm_server, tmp_path):
    srv = llm_server(SCRIPT, expected_key=KEY)
    reference = _run(srv, tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    record = _record(tmp_path / "reference")
    assert record["written"] == {"general/train.jsonl": 5, "general/test.jsonl": 1,
                                 "general/rolegpt_baseline.jsonl": 0}
    assert record["tallies"]["references"]["dropped"]["identical_samples"] == 24
    table = reference.stdout.splitlines()
    assert table[0] == f"generate rolegpt: {ROLE} -> {tmp_path / 'reference' / 'out'}"
    assert table[3].split() == ["references", "30", "6", "identical_samples", "24"]
    assert table[4].split() == ["baseline", "answers", "6", "0", "identical_samples", "6"]
    assert reference.stderr.count("the endpoint seems to ignore temperature") == 1
    slow = llm_server(SCRIPT, latency=0.05, expected_key=KEY)
    root = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(slow, root, "--concurrency", "1"), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while slow.count("ok") < 10:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (root / "out").exists()
    done = _run(slow, root)
    assert done.returncode == 0, done.stderr
    report = _record(root)
    # the server logs a request before it answers: the 10th answer may have been in flight at the kill
    assert report["requests_cached"] >= 9 and report["requests_cached"] + report["requests_sent"] == N_REQUESTS
    assert slow.count("ok") <= N_REQUESTS + 1  # at most the one request in flight at the kill is repeated
    assert _files(root) == _files(tmp_path / "reference")
    again = _run(slow, root)
    assert again.returncode == 0 and _record(root)["requests_sent"] == 0
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []


@pytest.mark.slow
def test_budget_cap_exits_3_and_dry_run_sends_nothing(llm_server, tmp_path):
    srv = llm_server(SCRIPT, expected_key=KEY)
    dry = _run(srv, tmp_path, "--dry-run")
    assert dry.returncode == 0 and "requests to send: 36 (another 0 already cached, free)" in dry.stdout
    assert srv.requests() == []
    capped = _run(srv, tmp_path, "--max-requests", "7", "--concurrency", "1")
    assert capped.returncode == 3 and "max_requests=7 reached" in capped.stderr
    written = _record(tmp_path)["written"]  # the one complete instruction
    assert written["general/train.jsonl"] + written["general/test.jsonl"] == 1
    assert _run(srv, tmp_path).returncode == 0 and srv.count("ok") == N_REQUESTS


def test_bad_input_exits_2_naming_file_and_field(llm_server, tmp_path):
    srv = llm_server(SCRIPT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\nlanguage: fr\ndescription: y\n", encoding="utf-8")
    cmd = _cmd(srv, tmp_path)
    cmd[cmd.index("--profile") + 1] = str(bad)
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert run.returncode == 2 and f"{bad}: field 'language': expected one of en, zh" in run.stderr
    instr = tmp_path / "instr.jsonl"
    instr.write_text('{"instruction": "fine"}\n{"text": "no key"}\n', encoding="utf-8")
    cmd = _cmd(srv, tmp_path)
    cmd[cmd.index("--instructions") + 1] = str(instr)
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert run.returncode == 2 and f"{instr}:2: field 'instruction': missing" in run.stderr
    run = _run(srv, tmp_path, "--samples", "1")
    assert run.returncode == 2 and "--samples: must be at least 2" in run.stderr
    run = _run(srv, tmp_path, "--test-fraction", "1.5", action="context-instruct")
    assert run.returncode == 2 and "--test-fraction" in run.stderr
    assert srv.requests() == []


@pytest.mark.slow
def test_nothing_usable_exits_5_with_one_line_and_writes_nothing(llm_server, tmp_path):
    srv = llm_server({"default_reply": "As an AI language model, I cannot be a captain.", "rules": []})
    run = _run(srv, tmp_path)
    assert run.returncode == 5 and not (tmp_path / "out").exists()
    assert run.stderr.splitlines()[-1] == (
        f"rolebench-eval generate: error: {ROLE}: received 36 answers to 6 instructions and kept none (references: "
        "breaks_character 30; baseline answers: breaks_character 6); nothing written, "
        f"{tmp_path / 'out'} is unchanged")
    run = _run(srv, tmp_path, action="context-instruct")
    assert run.returncode == 5 and "received 3 replies with 0 triplets and kept none" in run.stderr
    assert not (tmp_path / "out").exists()


def test_profile_files_outside_its_folder_need_the_flag(llm_server, tmp_path):
    srv = llm_server(SCRIPT)
    profile = tmp_path / "brine.yaml"
    profile.write_text((FIX / "brine.yaml").read_text(encoding="utf-8").replace(
        "script: brine_script.txt", f"script: {FIX / 'brine_script.txt'}"), encoding="utf-8")
    cmd = _cmd(srv, tmp_path, "--dry-run", action="context-instruct")
    cmd[cmd.index("--profile") + 1] = str(profile)
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert run.returncode == 2 and f"{profile}: field 'script': " in run.stderr
    assert "outside the profile's folder" in run.stderr and "PIP:" not in run.stderr + run.stdout
    run = subprocess.run(cmd + ["--allow-outside-paths"], env=_env(), capture_output=True, text=True)
    assert run.returncode == 0 and "requests to send: 3" in run.stdout and srv.requests() == []


def test_help_lists_both_actions():
    run = subprocess.run([sys.executable, "-m", "rolebench_eval.cli", "generate", "--help"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "rolegpt" in run.stdout and "context-instruct" in run.stdout
