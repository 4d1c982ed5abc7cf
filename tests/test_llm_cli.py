"""The LLM client as a user meets it through ``rolebench-eval judge``: exit codes, messages, logs, the bar.

A subprocess judges the small lm-eval fixture (tests/fixtures/judges/lmeval_out, 18 pairwise
requests) against the scripted local server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import pytest

FIX = Path(__file__).parent / "fixtures" / "judges"
KEY = "sk-test-CLI-LLM-5e6f7a8b9c"
N_REQUESTS = 18


def _script(**extra) -> dict:
    script = json.loads((FIX / "pairwise_script.json").read_text(encoding="utf-8"))
    for rule in script["rules"]:
        rule.pop("faults", None)
    return script | extra


def _judge(srv, root: Path, *extra: str, progress: bool = False, inputs: Path = FIX / "lmeval_out"):
    cmd = [sys.executable, "-m", "rolebench_eval.cli", "judge", str(inputs), "--judge", "pairwise",
           "--model", "judge-m", "--base-url", srv.url, "--out", str(root / "out"),
           "--cache", str(root / "cache" / "judge.sqlite"), "--backoff-base", "0.01", *extra]
    if not progress:
        cmd.append("--no-progress")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "ROLEBENCH_JUDGE_MODEL")}
    return subprocess.run(cmd, env=env | {"OPENAI_API_KEY": KEY}, capture_output=True, text=True)


def test_a_wrong_key_exits_2_with_one_line_naming_the_endpoint(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key="sk-the-key-the-server-wants")
    done = _judge(srv, tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rolebench-eval judge: error: {srv.url}: 401: invalid api key Bearer ***")
    assert "check $OPENAI_API_KEY" in last and "Traceback" not in done.stderr
    assert KEY not in done.stderr + done.stdout and len(srv.requests()) == 1


@pytest.mark.slow
def test_a_newer_openai_model_needs_no_extra_flag(llm_server, tmp_path):
    srv = llm_server(_script(reject={"max_tokens": "unsupported_parameter", "temperature": "unsupported_value"}),
                     expected_key=KEY)
    done = _judge(srv, tmp_path)
    assert done.returncode == 0, done.stderr
    assert srv.count("ok") == N_REQUESTS and srv.count("400") == 2
    assert len(re.findall(r"refused '(max_tokens|temperature)'", done.stderr)) == 2
    assert "HTTP Request" not in done.stderr  # no per-request log lines by default
    verbose = _judge(srv, tmp_path / "verbose", "--verbose")
    assert verbose.returncode == 0 and verbose.stderr.count("HTTP Request: POST") == N_REQUESTS + 2


@pytest.mark.slow
def test_the_bar_counts_and_log_lines_never_run_into_it(llm_server, tmp_path):
    script = _script()
    script["rules"][0]["faults"] = ["500"]
    srv = llm_server(script, expected_key=KEY, latency=0.02)
    done = _judge(srv, tmp_path, "--concurrency", "1", progress=True)
    assert done.returncode == 0, done.stderr
    segments = re.split(r"[\r\n]", done.stderr)
    warnings = [s for s in segments if "retrying in" in s]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING rolebench_eval.llm.client: retrying in")
    bars = [s for s in segments if s.startswith("judge pairwise:")]
    assert bars and "sent=18" in bars[-1] and "failed=0" in bars[-1] and "retries=1" in bars[-1]
    assert "cached=0" in bars[-1] and f"{N_REQUESTS}/{N_REQUESTS}" in bars[-1]


@pytest.mark.slow
def test_the_key_is_in_no_file_written_even_when_the_server_echoes_it(llm_server, tmp_path):
    script = _script()
    for rule in script["rules"]:
        rule["echo_key"] = True
        for field in ("reply", "reply_else"):
            if field in rule:
                rule[field] = f"{rule[field]} Your key {KEY} works."
    srv = llm_server(script, expected_key=KEY)
    done = _judge(srv, tmp_path)
    assert done.returncode == 0, done.stderr
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # the SQLite file and its WAL
    assert len(files) >= 5 and [p for p in files if KEY.encode() in p.read_bytes()] == []
    annotations = (tmp_path / "out" / "fake__cand-7b" / "rolebench_specific_en" / "pairwise" / "annotations.jsonl")
    assert "Your key *** works. (you sent Bearer ***)" in annotations.read_text(encoding="utf-8")
    assert KEY not in done.stdout + done.stderr


@pytest.mark.slow
def test_max_tokens_is_refused_naming_the_per_request_cap_and_the_budget(llm_server, tmp_path):
    """lm-eval/OpenAI users mean a per-request cap by --max-tokens; it was the run's budget: refuse it."""
    srv = llm_server(_script(), expected_key=KEY)
    for flag in (["--max-tokens", "512"], ["--max-tokens=512"]):
        done = _judge(srv, tmp_path, *flag)
        assert done.returncode == 2 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rolebench-eval judge: error: --max-tokens")
        assert "--max-new-tokens N for the completion-token cap per request" in lines[0]
        assert "--max-total-tokens N for the token budget of the whole run" in lines[0]
    assert srv.requests() == []
    # the budget under its own name: 18 requests of ~100 prompt + 512 completion tokens do not fit in 2000
    capped = _judge(srv, tmp_path, "--max-total-tokens", "2000", "--concurrency", "1")
    assert capped.returncode == 3 and "max_total_tokens=2000 would be exceeded" in capped.stderr
    assert 0 < srv.count("ok") < N_REQUESTS


def test_text_utf8_cannot_encode_is_judged_stored_and_read_back(llm_server, tmp_path):
    """A lone surrogate (valid JSON) in a candidate's answer and in a verdict: no crash, kept as it was."""
    import shutil

    inputs = tmp_path / "in"
    shutil.copytree(FIX / "lmeval_out", inputs)
    samples = next(inputs.rglob("samples_rolebench_specific_en_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    rows[0]["filtered_resps"] = ["CAND Arr \ud800 by the barnacles"]
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    script = _script()
    qid3 = next(rule for rule in script["rules"] if rule["id"] == "qid-3")
    qid3["reply"] = "Equally good \udfff. [[C]]"
    srv = llm_server(script, expected_key=KEY)
    for _ in range(2):  # the rerun reads every answer back from the cache
        done = _judge(srv, tmp_path, inputs=inputs)
        assert done.returncode == 0, done.stderr
        assert srv.count("ok") == N_REQUESTS
    annotations = (tmp_path / "out" / "fake__cand-7b" / "rolebench_specific_en" / "pairwise" / "annotations.jsonl")
    by_id = {row["doc_id"]: row for row in map(json.loads, annotations.read_text(encoding="utf-8").splitlines())}
    assert by_id[0]["candidate"] == "CAND Arr \ud800 by the barnacles" and by_id[0]["status"] == "judged"
    assert by_id[2]["judge_texts"] == ["Equally good \udfff. [[C]]"] * 2 and by_id[2]["score"] == 0.5


@pytest.mark.parametrize("flag, value, expected", [
    ("--max-requests", "-1", "expected a whole number >= 0, got '-1'"),
    ("--max-cost", "nan", "expected a finite number >= 0, got 'nan'"),
    ("--timeout", "0", "expected a finite number > 0, got '0'"),
])
def test_a_bad_number_is_one_line_naming_the_flag(llm_server, tmp_path, flag, value, expected):
    srv = llm_server(_script(), expected_key=KEY)
    done = _judge(srv, tmp_path, flag, value)
    assert done.returncode == 2 and done.stdout == "" and srv.requests() == []
    assert done.stderr.strip().splitlines() == [f"rolebench-eval judge: error: argument {flag}: {expected}"]


def test_an_endpoint_where_nothing_listens_stops_at_the_first_try(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    done = _judge(SimpleNamespace(url=url), tmp_path)
    assert done.returncode == 2 and "retrying" not in done.stderr and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rolebench-eval judge: error: {url}: nothing answers there (ConnectError: ")
    assert last.endswith("check --base-url and that the server is running")
    assert not list((tmp_path / "out").rglob("summary.json"))  # no empty summary left behind


def test_credentials_in_the_base_url_are_one_line(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key=KEY)
    done = _judge(SimpleNamespace(url=srv.url.replace("http://", "http://robin:hunter2@")), tmp_path)
    assert done.returncode == 2 and srv.requests() == [] and "hunter2" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "rolebench-eval judge: error: field '--base-url': holds credentials (user:password@): remove them and put "
        "the key in the environment variable $OPENAI_API_KEY")
