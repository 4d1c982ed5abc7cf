"""``rolebench-eval judge`` as a user runs it: a subprocess against a local scripted server.

Proves that a run killed with SIGKILL (or stopped by Ctrl-C or a budget cap) resumes
and ends with exactly the result of an uninterrupted run, that a rerun sends nothing,
and that the API key is in no file written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "judges"
OUT = FIX / "lmeval_out"
KEY = "sk-test-DISTINCTIVE-cli-77aa31"
N_REQUESTS = 18  # 7 English items + 2 Chinese items, two presentation orders each
TASKS = ("rolebench_specific_en", "rolebench_general_zh")


def _script() -> dict:
    return json.loads((FIX / "pairwise_script.json").read_text(encoding="utf-8"))


def _cmd(srv, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rolebench_eval.cli", "judge", str(OUT), "--judge", "pairwise",
            "--model", "judge-m", "--base-url", srv.url, "--out", str(root / "out"),
            "--cache", str(root / "cache" / "judge.sqlite"), "--timeout", "0.5", "--backoff-base", "0.01",
            "--no-progress", *extra]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "ROLEBENCH_JUDGE_MODEL")}
    return env | {"OPENAI_API_KEY": KEY}


def _judge(srv, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(srv, root, *extra), env=_env(), capture_output=True, text=True)


def _results(root: Path) -> dict:
    """Summaries without their creation time, annotations without timestamps, by task."""
    found = {}
    for task in TASKS:
        folder = root / "out" / "fake__cand-7b" / task / "pairwise"
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        summary.pop("created_at")
        rows = [json.loads(line) for line in (folder / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
        for row in rows:
            row.pop("timestamp")
        found[task] = (summary, rows)
    return found


def _assert_key_absent(*roots: Path) -> None:
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    assert files
    leaks = [p for p in files if KEY.encode() in p.read_bytes()]
    assert leaks == []


def _stop_after(proc: subprocess.Popen, srv, n_ok: int, sig: int) -> None:
    while srv.count("ok") < n_ok:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fake_server):
    """An uninterrupted run (shared by the tests of this module): its root folder."""
    root = tmp_path_factory.mktemp("reference")
    with fake_server(_script(), root / "server", expected_key=KEY) as srv:
        done = _judge(srv, root)
        assert done.returncode == 0, done.stderr
        assert srv.count("ok") == N_REQUESTS
        (root / "server_url").write_text(srv.url, encoding="utf-8")  # the endpoint its cache rows are keyed by
    return root


@pytest.mark.slow
def test_sigkill_midway_resumes_to_the_same_result(llm_server, tmp_path, reference):
    srv = llm_server(_script(), latency=0.05, expected_key=KEY)
    root = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(srv, root, "--concurrency", "1"), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _stop_after(proc, srv, 7, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not any((root / "out").iterdir())  # checked writable up front; killed before any output was written
    sent_before = srv.count("ok")
    assert 7 <= sent_before < N_REQUESTS

    resumed = _judge(srv, root)
    assert resumed.returncode == 0, resumed.stderr
    # nothing lost: all answered; nothing duplicated beyond the one request in flight at the kill
    assert N_REQUESTS <= srv.count("ok") <= N_REQUESTS + 1
    assert _results(root) == _results(reference)

    before = len(srv.requests())
    rerun = _judge(srv, root)
    assert rerun.returncode == 0 and len(srv.requests()) == before  # a rerun makes zero requests
    assert _results(root) == _results(reference)
    _assert_key_absent(root, reference)
    assert KEY not in resumed.stdout + resumed.stderr + rerun.stdout + rerun.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_answers_and_resumes(llm_server, tmp_path, reference):
    srv = llm_server(_script(), latency=0.05, expected_key=KEY)
    root = tmp_path / "interrupted"
    proc = subprocess.Popen(_cmd(srv, root, "--concurrency", "2"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _stop_after(proc, srv, 5, signal.SIGINT)
    assert proc.returncode == 130 and "the same command sends only the requests not answered yet" in proc.stderr.read()
    resumed = _judge(srv, root)
    assert resumed.returncode == 0, resumed.stderr
    assert N_REQUESTS <= srv.count("ok") <= N_REQUESTS + 2
    assert _results(root) == _results(reference)


@pytest.mark.slow
def test_budget_cap_stops_keeps_work_and_finishes_later(llm_server, tmp_path, reference):
    srv = llm_server(_script(), expected_key=KEY)
    root = tmp_path / "capped"
    capped = _judge(srv, root, "--max-requests", "5")
    assert capped.returncode == 3 and "max_requests=5" in capped.stderr
    assert srv.count("ok") == 5  # exactly the cap, with 429/500/... retries not billed
    partial = {task: s for task, (s, _) in _results(root).items()}
    assert sum(s["n_judged"] + s["n_pending"] for s in partial.values()) == 9
    assert not all(s["complete"] for s in partial.values())
    assert all(s["stopped"].startswith("budget") for s in partial.values())

    finished = _judge(srv, root)
    assert finished.returncode == 0, finished.stderr
    assert srv.count("ok") == N_REQUESTS  # the 5 done were not asked again
    assert _results(root) == _results(reference)
    en = _results(root)["rolebench_specific_en"][0]
    assert en["win_rate"] == pytest.approx(4 / 6) and en["complete"] is True


def test_dry_run_sends_nothing(llm_server, tmp_path, reference):
    srv = llm_server(_script(), expected_key=KEY)
    fresh = _judge(srv, tmp_path / "fresh", "--dry-run", "--price-input", "2.5", "--price-output", "10")
    assert fresh.returncode == 0, fresh.stderr
    assert "requests to send: 18 (another 0 already cached" in fresh.stdout
    assert "cost: at most $" in fresh.stdout and "7 items to judge, 1 without a baseline" in fresh.stdout
    same_endpoint = SimpleNamespace(url=(reference / "server_url").read_text(encoding="utf-8"))
    cached = _judge(same_endpoint, reference, "--dry-run")  # a dry run never connects
    assert "requests to send: 0 (another 18 already cached" in cached.stdout
    # another endpoint (a server restarted elsewhere, maybe with another checkpoint) has nothing cached
    elsewhere = _judge(srv, reference, "--dry-run")
    assert "requests to send: 18 (another 0 already cached" in elsewhere.stdout
    assert srv.requests() == [] and not (tmp_path / "fresh" / "out").exists()


def test_bad_inputs_exit_2_with_a_clear_message(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key=KEY)
    cmd = _cmd(srv, tmp_path)
    cmd.insert(cmd.index(str(OUT)) + 1, str(tmp_path / "nope"))
    missing = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert missing.returncode == 2 and f"{tmp_path / 'nope'}: no such file or folder" in missing.stderr
    cmd = [c for c in _cmd(srv, tmp_path) if c not in ("--model", "judge-m")]
    no_model = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert no_model.returncode == 2 and "no judge model" in no_model.stderr
    no_prices = _judge(srv, tmp_path, "--max-cost", "1")
    assert no_prices.returncode == 2 and "needs prices" in no_prices.stderr
    assert srv.requests() == []


@pytest.mark.slow
def test_no_verdict_parsed_exits_5_after_writing_the_files(llm_server, tmp_path):
    """A judge that never answers in the format (too small a model, an endpoint that ignores it)."""
    srv = llm_server({"default_reply": "Both answers are lovely, truly."}, expected_key=KEY)
    cmd = [c if c != "pairwise" else "rank" for c in _cmd(srv, tmp_path)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert done.returncode == 5, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("rolebench-eval judge: error:")]
    assert len(error) == 1 and "no verdict parsed: all 9 judged items are parse failures" in error[0]
    assert "no [...] found" in error[0] and "too small" in error[0] and "judge_texts" in error[0]
    for task, n_failed in (("rolebench_specific_en", 7), ("rolebench_general_zh", 2)):
        folder = tmp_path / "out" / "fake__cand-7b" / task / "rank"
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert (summary["n_parsed"], summary["n_parse_failures"], summary["win_rate"]) == (0, n_failed, None)
    first = tmp_path / "out" / "fake__cand-7b" / "rolebench_general_zh" / "rank" / "annotations.jsonl"
    assert str(first) in error[0]  # where the first failure is (tasks in name order)
    assert srv.count("ok") == 9


def _cli(capsys, *args: str) -> tuple[int, str]:
    from rolebench_eval.cli import main

    try:
        code = main(["judge", str(OUT), "--model", "judge-m", "--no-progress", *args])
    except SystemExit as exit_:  # argparse's own exit
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flag, value, expected", [
    ("--limit", "-1", "expected a whole number >= 1"), ("--limit", "0", "expected a whole number >= 1"),
    ("--limit", "1.5", "expected a whole number >= 1"), ("--max-systems", "1", "expected a whole number >= 2"),
    ("--max-systems", "nan", "expected a whole number >= 2"),
])
def test_the_judges_own_numeric_flags_are_one_line_exit_2(capsys, tmp_path, flag, value, expected):
    code, err = _cli(capsys, "--judge", "rank", "--out", str(tmp_path / "out"), "--dry-run", flag, value)
    assert (code, err) == (2, f"rolebench-eval judge: error: argument {flag}: {expected}, got {value!r}\n")


def test_a_hostile_template_stops_a_dry_run_naming_its_file_and_runs_nothing(capsys, tmp_path, monkeypatch):
    """A judge folder is shared data: its template renders in jinja2's sandbox, even under --dry-run."""
    import shutil

    from rolebench_eval.judges.config import load_judge

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    folder = tmp_path / "shared_judge"
    shutil.copytree(load_judge("pairwise").folder, folder)
    marker = tmp_path / "PWNED"
    (folder / "user_en.jinja").write_text(
        "{{ cycler.__init__.__globals__.os.system('touch %s') }} {{ answer_a }}" % marker, encoding="utf-8")
    code, err = _cli(capsys, "--judge", str(folder), "--out", str(tmp_path / "out"), "--dry-run",
                     "--cache", str(tmp_path / "cache.sqlite"), "--base-url", "http://127.0.0.1:9/v1")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"rolebench-eval judge: error: {folder / 'user_en.jinja'}: the template reaches for "
                          "Python internals")
    assert not marker.exists() and not (tmp_path / "out").exists()
