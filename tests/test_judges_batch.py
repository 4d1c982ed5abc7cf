"""``rolebench-eval judge --batch`` as a user runs it: a subprocess against the scripted Files and Batches server.

Proves that a batch run judges every item with no chat-completion request and writes exactly what a
synchronous run writes, that a rerun sends nothing, that a run killed while polling resumes the same
job ids, and that ``--dry-run`` prices batch requests at the discount.
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
FIX = HERE / "fixtures" / "judges"
OUT = FIX / "lmeval_out"
N_REQUESTS = 18  # 7 English items + 2 Chinese items, two presentation orders each (as in test_judges_cli)
TASKS = ("rolebench_specific_en", "rolebench_general_zh")


def _script(**batch) -> dict:
    return json.loads((FIX / "pairwise_script.json").read_text(encoding="utf-8")) | {"batch": batch}


def _cmd(srv, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rolebench_eval.cli", "judge", str(OUT), "--judge", "pairwise",
            "--model", "judge-m", "--base-url", srv.url, "--out", str(root / "out"),
            "--cache", str(root / "cache.sqlite"), "--no-progress", "--batch-poll-interval", "0.02", *extra]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "ROLEBENCH_JUDGE_MODEL",
                                                             "OPENAI_API_KEY")}


def _judge(srv, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(srv, root, *extra), env=_env(), capture_output=True, text=True)


def _results(root: Path) -> dict:
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


def _api(srv, call: str) -> int:
    return sum(1 for r in srv.requests() if r.get("api") == call)


@pytest.mark.slow
def test_batch_judges_everything_with_no_chat_request_as_a_synchronous_run_would(llm_server, tmp_path):
    srv = llm_server(_script())
    done = _judge(srv, tmp_path / "batch", "--batch")
    assert done.returncode == 0, done.stderr
    assert srv.count("ok") == 0 and srv.count("batch") == N_REQUESTS and _api(srv, "POST /batches") == 1
    before = len(srv.requests())
    again = _judge(srv, tmp_path / "batch", "--batch")
    assert again.returncode == 0, again.stderr
    assert len(srv.requests()) == before  # a rerun sends nothing, looks at nothing
    sync = _judge(srv, tmp_path / "sync")
    assert sync.returncode == 0 and srv.count("ok") == N_REQUESTS
    assert _results(tmp_path / "batch") == _results(tmp_path / "sync")
    resync = _judge(srv, tmp_path / "batch")  # the batch answers, found without --batch
    assert resync.returncode == 0 and srv.count("ok") == N_REQUESTS


@pytest.mark.slow
def test_a_run_killed_while_polling_resumes_the_same_job_ids(llm_server, tmp_path):
    srv = llm_server(_script(lifecycle=["validating"] + ["in_progress"] * 60))
    record = tmp_path / "cache.sqlite.batches.json"
    proc = subprocess.Popen(_cmd(srv, tmp_path, "--batch"), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    while _api(srv, "GET /batches/<id>") < 3:  # polling
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    first = json.loads(record.read_text(encoding="utf-8"))["jobs"]
    assert [(j["id"], j["collected"], len(j["keys"])) for j in first] == [("batch_1", False, N_REQUESTS)]
    done = _judge(srv, tmp_path, "--batch")
    assert done.returncode == 0, done.stderr
    assert _api(srv, "POST /batches") == 1 and _api(srv, "POST /files") == 1
    assert srv.count("ok") == 0 and srv.count("batch") == N_REQUESTS
    jobs = json.loads(record.read_text(encoding="utf-8"))["jobs"]
    assert [(j["id"], j["collected"], j["status"]) for j in jobs] == [("batch_1", True, "completed")]


def test_dry_run_prices_batch_requests_at_the_discount(llm_server, tmp_path):
    srv = llm_server(_script())
    prices = ("--price-input", "2.5", "--price-output", "10", "--dry-run")
    costs = {}
    for name, extra in (("sync", ()), ("batch", ("--batch",)), ("third", ("--batch", "--batch-discount", "0.3"))):
        done = _judge(srv, tmp_path, *prices, *extra)
        assert done.returncode == 0, done.stderr
        costs[name] = float(done.stdout.split("cost: at most $")[1].split()[0])
    assert costs["batch"] == pytest.approx(costs["sync"] / 2, abs=1e-4)
    assert costs["third"] == pytest.approx(costs["sync"] * 0.3, abs=1e-4)
    assert srv.requests() == []


@pytest.mark.slow
def test_export_and_import_through_a_batch_file(llm_server, tmp_path):
    srv = llm_server(_script())
    exported = _judge(srv, tmp_path, "--batch-export", str(tmp_path / "in.jsonl"))
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {N_REQUESTS} requests" in exported.stdout and not (tmp_path / "out").exists()
    lines = [json.loads(x) for x in (tmp_path / "in.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == N_REQUESTS and {x["url"] for x in lines} == {"/v1/chat/completions"}
    # what vllm run-batch would write: one output line per input line, the answer under response.body
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "judge-m",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "[[A]]"}}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    rows = [{"id": f"vllm-{n}", "custom_id": x["custom_id"], "error": None,
             "response": {"status_code": 200, "request_id": f"vllm-batch-{n}", "body": answer}}
            for n, x in enumerate(lines)]
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = _judge(srv, tmp_path, "--batch-import", str(tmp_path / "answers.jsonl"), "--max-requests", "0")
    assert done.returncode == 0, done.stderr
    assert f"{N_REQUESTS} stored, 0 already_cached, 0 failed, 0 foreign" in done.stdout
    assert srv.requests() == []
    summary = json.loads((tmp_path / "out" / "fake__cand-7b" / TASKS[0] / "pairwise" / "summary.json").read_text())
    assert summary["n_pending"] == 0 and summary["n_judged"] == 7
