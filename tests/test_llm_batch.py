"""Batch transport (``rolebench_eval/llm/batch.py``) against the scripted server's Files and Batches endpoints.

The server (tests/fixtures/llm/fake_openai_server.py + fake_batch_api.py) logs each synchronous
chat request (outcome ``ok``), each line a batch ran (``batch``) and each Files/Batches call (``api``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from rolebench_eval.llm.batch import BatchSettings, run_batch_jobs
from rolebench_eval.llm.batchfile import export_requests, import_outputs
from rolebench_eval.llm.budget import Budget, Caps, Prices, estimate
from rolebench_eval.llm.cache import ResponseCache, request_keys
from rolebench_eval.llm.client import run_batch
from rolebench_eval.outputs.batch import jobs_path, read_jobs

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
_spec = importlib.util.spec_from_file_location("server_fixture", FIXTURES / "server_fixture.py")
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)
llm_server, client_config, chat = _fixture.llm_server, _fixture.client_config, _fixture.chat
FAST = BatchSettings(poll_interval=0.01)
RULES = {"rules": [{"id": f"r{n}", "match": [f"item {n}"], "reply": f"verdict {n}"} for n in range(6)]}


def _requests(n: int = 6) -> list:
    return [chat(f"item {i}") for i in range(n)]


def _api(srv, call: str) -> int:
    return sum(1 for r in srv.requests() if r.get("api") == call)


def test_batch_answers_everything_without_chat_requests_and_a_rerun_sends_nothing(llm_server, tmp_path):
    srv = llm_server(RULES)
    config, path = client_config(srv), tmp_path / "cache.sqlite"
    with ResponseCache(path) as cache:
        result = run_batch_jobs(_requests(), config, cache, settings=FAST, progress=False)
    assert [r["text"] for r in result.responses] == [f"verdict {n}" for n in range(6)]
    assert (result.stopped, result.n_sent, result.exit_code) == (None, 6, 0)
    assert srv.count("ok") == 0 and srv.count("batch") == 6
    assert _api(srv, "POST /batches") == 1 and _api(srv, "POST /files") == 1
    before = len(srv.requests())
    with ResponseCache(path) as cache:
        again = run_batch_jobs(_requests(), config, cache, settings=FAST, progress=False)
        sync = run_batch(_requests(), config, cache, progress=False)  # the same keys: found without --batch
    assert len(srv.requests()) == before
    assert (again.n_cached, again.n_sent, sync.n_cached, sync.n_sent) == (6, 0, 6, 0)
    assert [r["text"] for r in sync.responses] == [f"verdict {n}" for n in range(6)]
    assert all(job.collected and job.status == "completed" for job in read_jobs(jobs_path(path)).jobs)


def test_batch_lines_carry_the_synchronous_decoding(llm_server, tmp_path):
    srv = llm_server(RULES)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        run_batch_jobs(_requests(1), client_config(srv, max_tokens=77, temperature=0.5), cache, settings=FAST,
                       progress=False)
    params = next(r["params"] for r in srv.requests() if r.get("outcome") == "batch")
    assert params == {"temperature": 0.5, "max_tokens": 77, "seed": 0}


def test_requests_are_split_at_the_per_file_limits(llm_server, tmp_path):
    srv = llm_server(RULES)
    settings = BatchSettings(poll_interval=0.01, max_requests=4)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        result = run_batch_jobs(_requests(), client_config(srv), cache, settings=settings, progress=False)
    assert _api(srv, "POST /batches") == 2 and result.stopped is None
    srv2 = llm_server(RULES)
    one_line = 330  # every request line of _requests is 300-330 bytes: two fit in 700, three do not
    settings = BatchSettings(poll_interval=0.01, max_bytes=2 * one_line + 40)
    with ResponseCache(tmp_path / "d.sqlite") as cache:
        run_batch_jobs(_requests(), client_config(srv2), cache, settings=settings, progress=False)
    assert _api(srv2, "POST /batches") == 3


def test_error_file_lines_are_resubmitted_then_left(llm_server, tmp_path):
    script = RULES | {"batch": {"error_lines": [{"match": ["item 2"], "times": 1, "status": 500}]}}
    srv = llm_server(script)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        result = run_batch_jobs(_requests(), client_config(srv), cache, settings=FAST, progress=False)
    assert result.stopped is None and result.responses[2]["text"] == "verdict 2"
    assert _api(srv, "POST /batches") == 2 and result.n_retries == 1  # the error line, in a second job
    srv = llm_server(RULES | {"batch": {"error_lines": [{"match": ["item 2"], "times": 9, "status": 500}]}})
    with ResponseCache(tmp_path / "d.sqlite") as cache:
        result = run_batch_jobs(_requests(), client_config(srv), cache, progress=False,
                                settings=BatchSettings(poll_interval=0.01, max_resubmits=1))
    assert _api(srv, "POST /batches") == 2 and result.responses[2] is None
    assert result.n_failed == 1 and result.exit_code == 4 and "500: scripted 500" in result.errors[result.keys[2]]
    assert result.stopped == "batch: 1 request(s) left unanswered" and "without --batch" in result.hint()


@pytest.mark.parametrize("outcome", ["expired", "cancelled", "failed"])
def test_an_ended_job_keeps_what_completed_and_a_rerun_submits_the_rest(llm_server, tmp_path, outcome):
    srv = llm_server(RULES | {"batch": {"outcomes": [outcome], "partial": 2,
                                        "lifecycle": ["validating", "in_progress"]}})
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        result = run_batch_jobs(_requests(), client_config(srv), cache, settings=FAST, progress=False)
    kept = 0 if outcome == "failed" else 2
    assert sum(r is not None for r in result.responses) == kept
    assert result.stopped == f"batch: {6 - kept} request(s) left unanswered" and result.exit_code == 4
    assert read_jobs(jobs_path(path)).jobs[0].status == outcome
    with ResponseCache(path) as cache:
        again = run_batch_jobs(_requests(), client_config(srv), cache, settings=FAST, progress=False)
    assert again.stopped is None and again.n_sent == 6 - kept and again.n_cached == kept
    assert srv.count("batch") == 6


def test_a_run_stopped_while_polling_resumes_the_same_job(llm_server, tmp_path, monkeypatch):
    srv = llm_server(RULES | {"batch": {"lifecycle": ["validating"] + ["in_progress"] * 3}})
    path = tmp_path / "c.sqlite"

    def interrupted(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("rolebench_eval.llm.batch.time.sleep", interrupted)
    with ResponseCache(path) as cache, pytest.raises(KeyboardInterrupt):
        run_batch_jobs(_requests(), client_config(srv), cache, settings=FAST, progress=False)
    jobs = read_jobs(jobs_path(path)).jobs
    assert [(j.id, j.status, j.collected, len(j.keys)) for j in jobs] == [("batch_1", "in_progress", False, 6)]
    monkeypatch.undo()
    with ResponseCache(path) as cache:
        result = run_batch_jobs(_requests(), client_config(srv), cache, settings=FAST, progress=False)
    assert result.stopped is None and _api(srv, "POST /batches") == 1
    assert [j.id for j in read_jobs(jobs_path(path)).jobs] == ["batch_1"]


def test_budget_counts_at_the_batch_price(llm_server, tmp_path):
    srv = llm_server(RULES)
    config, settings = client_config(srv, max_tokens=100), FAST
    prices = settings.prices(Prices(2.0, 8.0))
    assert (prices.input_per_million, prices.output_per_million) == (1.0, 4.0)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        full = estimate(_requests(), config, cache, Prices(2.0, 8.0)).max_cost
        half = estimate(_requests(), config, cache, prices).max_cost
        assert half == pytest.approx(full / 2)
        cap = half / 6 * 4 + 1e-9  # room for four requests at the batch price, two at the full one
        result = run_batch_jobs(_requests(), config, cache, Budget(Caps(max_cost=cap), prices), settings=settings,
                                progress=False)
    assert result.stop_kind == "budget" and result.exit_code == 3
    assert sum(r is not None for r in result.responses) == 4 and srv.count("batch") == 4


def test_export_then_vllm_run_batch_output_imports_into_the_cache(llm_server, tmp_path):
    srv = llm_server(RULES)
    config, path = client_config(srv), tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        assert export_requests(tmp_path / "in.jsonl", _requests(3), config, cache) == 3
    lines = [json.loads(x) for x in (tmp_path / "in.jsonl").read_text().splitlines()]
    keys = request_keys(_requests(3), config)
    assert [x["custom_id"] for x in lines] == keys
    assert lines[0]["url"] == "/v1/chat/completions" and lines[0]["method"] == "POST"
    assert lines[0]["body"]["messages"] == chat("item 0") and lines[0]["body"]["max_tokens"] == 512
    # vllm run-batch's output lines (vllm/entrypoints/openai/protocol.py: BatchRequestOutput)
    out = [{"id": f"vllm-{n}", "custom_id": x["custom_id"], "error": None,
            "response": {"status_code": 200, "request_id": f"vllm-batch-{n}",
                         "body": {"id": "c", "object": "chat.completion", "created": 1, "model": "judge-m",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": f"local {n}"}}],
                                  "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}}}
           for n, x in enumerate(lines[:2])]
    out.append({"id": "vllm-x", "custom_id": "not-ours", "error": None, "response": out[0]["response"]})
    out.append({"id": "vllm-2", "custom_id": keys[2], "response": None,
                "error": {"code": "400", "message": "bad"}})
    (tmp_path / "out.jsonl").write_text("".join(json.dumps(x) + "\n" for x in out))
    with ResponseCache(path) as cache:
        counts = import_outputs(tmp_path / "out.jsonl", _requests(3), config, cache)
        assert counts == {"stored": 2, "already_cached": 0, "failed": 1, "foreign": 1}
        result = run_batch(_requests(2), config, cache, progress=False)
    assert [r["text"] for r in result.responses] == ["local 0", "local 1"] and result.n_sent == 0
    assert srv.requests() == []


def test_nothing_listening_stops_at_the_first_call(tmp_path):
    import socket

    from rolebench_eval.llm.client import ClientConfig, EndpointError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = ClientConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2.0)
    with ResponseCache(tmp_path / "c.sqlite") as cache, pytest.raises(EndpointError, match="nothing answers"):
        run_batch_jobs(_requests(2), config, cache, settings=FAST, progress=False)
    assert read_jobs(jobs_path(tmp_path / "c.sqlite")).jobs == []


def test_the_bar_shows_job_states_and_counts(llm_server, tmp_path, capsys):
    srv = llm_server(RULES)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        run_batch_jobs(_requests(), client_config(srv), cache, progress=True, desc="judge rank",
                       settings=BatchSettings(poll_interval=0.01, max_requests=4))
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("judge rank: 100%") and "6/6" in last and "completed 2; failed 0" in last


def test_a_bad_record_or_output_file_is_one_error_naming_file_line_and_field(tmp_path):
    from rolebench_eval.errors import InputError
    from rolebench_eval.outputs.batch import BatchJob, BatchJobs, read_output_lines, write_jobs

    path = tmp_path / "c.sqlite.batches.json"
    write_jobs(path, BatchJobs(jobs=[BatchJob(id="batch_9", endpoint="http://h:80/v1", model="m", keys=["k"])]))
    assert read_jobs(path).jobs[0].id == "batch_9"
    path.write_text('{"format_version": 1, "jobs": [{"id": 3}]}')
    with pytest.raises(InputError) as err:
        read_jobs(path)
    assert (err.value.path, err.value.field) == (str(path), "jobs[0].id") and "expected str" in err.value.problem
    path.write_text('{"format_version": 2, "jobs": []}')
    with pytest.raises(InputError, match="newer rolebench-eval"):
        read_jobs(path)
    out = tmp_path / "out.jsonl"
    out.write_text('{"custom_id": "a", "response": null}\n{"response": {"status_code": 200}}\n')
    with pytest.raises(InputError) as err:
        list(read_output_lines(out))
    assert (err.value.line, err.value.field, err.value.problem) == (2, "custom_id", "missing")
