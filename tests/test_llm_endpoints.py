"""The client against endpoints that misbehave the way real ones do (issue 10), on local HTTP servers.

Newer OpenAI models refusing ``max_tokens`` and ``temperature``, a 401 that echoes the key,
a refusal, a 400 about one item and a 400 about every item, a 200 whose body trickles in,
transport junk, a one-at-a-time server, two processes sharing one cache, a damaged cache
file. The server (tests/fixtures/llm/fake_openai_server.py) logs every request it receives,
so the tests count what was really sent and read what it carried.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rolebench_eval.llm.cache import CacheError, ResponseCache, new_owner, request_keys
from rolebench_eval.llm.client import ClientConfig, EndpointError, run_batch
from rolebench_eval.llm.config import LLMConfigError, add_llm_arguments, overrides_from_args
from rolebench_eval.llm.limiter import Limiter

KEY = "sk-test-ENDPOINTS-9c2e41d07abba"
_spec = importlib.util.spec_from_file_location("server_fixture", Path(__file__).parent / "fixtures/llm/server_fixture.py")
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


_config, _msgs = _fixture.client_config, _fixture.chat


def _ask(srv, tmp_path, texts, **kw):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        return run_batch([_msgs(t) for t in texts], _config(srv, **kw), cache, progress=False)


# --------------------------------------------------------------------------- endpoint compatibility


def test_newer_openai_models_get_max_completion_tokens_and_no_temperature(llm_server, tmp_path, caplog):
    srv = llm_server({"default_reply": "fine", "reject": {"max_tokens": "unsupported_parameter",
                                                          "temperature": "unsupported_value"}}, expected_key=KEY)
    texts = [f"item {i}" for i in range(8)]
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"):
        result = _ask(srv, tmp_path, texts, concurrency=1)
    assert result.stopped is None and [r["text"] for r in result.responses] == ["fine"] * 8
    sent = {"max_completion_tokens": 512, "seed": 0}
    assert result.decoding == sent and all(r["decoding"] == sent for r in result.responses)
    assert len(result.adaptations) == 2
    log = srv.requests()
    assert [e["outcome"] for e in log] == ["400", "400"] + ["ok"] * 8  # adapted once for the whole run
    assert all(e["params"] == sent for e in log if e["outcome"] == "ok")
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and "'max_tokens'" in refusals[0] and "'temperature'" in refusals[1]
    # the cache key is the settings asked for, not the adapted ones: a fresh run finds every answer cached
    again = _ask(srv, tmp_path, texts, concurrency=1)
    assert again.n_sent == 0 and again.n_cached == 8 and len(srv.requests()) == len(log)


def test_adapting_is_thread_safe_and_logged_once(llm_server, tmp_path, caplog):
    srv = llm_server({"default_reply": "fine", "reject": {"max_tokens": "unsupported_parameter"}}, latency=0.05)
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"):
        result = _ask(srv, tmp_path, [f"item {i}" for i in range(24)], concurrency=8)
    assert result.stopped is None and result.n_sent == 24
    assert srv.count("ok") == 24 and srv.count("400") <= 8  # at most the requests already in flight
    assert sum("refused" in r.getMessage() for r in caplog.records) == 1


def test_configured_token_parameter_and_extra_body_are_sent(llm_server, tmp_path):
    srv = llm_server({"default_reply": "fine"})
    result = _ask(srv, tmp_path, ["x"], max_tokens_param="max_completion_tokens", temperature=None, seed=None,
                  extra_body={"reasoning_effort": "low"})
    assert srv.requests()[0]["params"] == {"max_completion_tokens": 512, "reasoning_effort": "low"}
    assert result.responses[0]["decoding"] == {"max_completion_tokens": 512, "reasoning_effort": "low"}
    with pytest.raises(LLMConfigError, match="max_tokens_param"):
        ClientConfig(model="m", max_tokens_param="max_output_tokens")
    with pytest.raises(LLMConfigError, match="extra_body.*'temperature' has a setting of its own"):
        ClientConfig(model="m", extra_body={"temperature": 1})


def test_one_flag_set_for_every_verb():
    parser = argparse.ArgumentParser()
    add_llm_arguments(parser)
    args = parser.parse_args(["--model", "gpt-5", "--concurrency", "3", "--extra-body", '{"reasoning_effort": "low"}',
                              "--max-new-tokens", "64", "--max-tokens-param", "max_completion_tokens"])
    assert overrides_from_args(args) == {"model": "gpt-5", "concurrency": 3, "max_tokens": 64,
                                         "max_tokens_param": "max_completion_tokens",
                                         "extra_body": {"reasoning_effort": "low"}}
    config = ClientConfig.from_args(args, temperature=0.7, seed=None)
    assert (config.temperature, config.seed, config.max_tokens, config.concurrency) == (0.7, None, 64, 3)
    assert ClientConfig.from_args(parser.parse_args(["--model", "m"])).concurrency == "auto"
    for bad in (["--concurrency", "0"], ["--concurrency", "many"], ["--extra-body", "[1]"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--model", "m", *bad])
    numbers = {"--max-requests": "-1", "--max-total-tokens": "-1", "--max-cost": "-0.5", "--price-input": "inf",
               "--price-output": "-1", "--timeout": "0", "--max-retries": "-1", "--backoff-base": "nan",
               "--temperature": "-1", "--top-p": "x", "--max-new-tokens": "0", "--seed": "1.5"}
    for flag, value in numbers.items():  # every numeric flag is checked: one line naming it, exit 2
        with pytest.raises(SystemExit) as code:
            parser.parse_args(["--model", "m", flag, value])
        assert code.value.code == 2


# --------------------------------------------------------------------------- failing fast, with the right words


@pytest.mark.parametrize("concurrency", ["auto", 1])
def test_401_stops_at_the_first_request(llm_server, tmp_path, concurrency):
    srv = llm_server({"default_reply": "fine"}, expected_key="sk-the-right-key-000")
    with pytest.raises(EndpointError) as err:
        _ask(srv, tmp_path, [f"i{i}" for i in range(6)], concurrency=concurrency)
    assert [e["outcome"] for e in srv.requests()] == ["401"]
    assert str(err.value).startswith(f"{srv.url}: 401: invalid api key Bearer ***")
    assert "check $OPENAI_API_KEY" in str(err.value) and KEY not in str(err.value)


def test_404_names_the_url_to_check(llm_server, tmp_path):
    srv = llm_server({"default_reply": "fine"})
    srv.url += "/chat/completions"  # the whole endpoint pasted as the base URL
    with pytest.raises(EndpointError, match=r"/v1/chat/completions: 404: not found \(model 'judge-m'\); "
                                            r"nothing there: check --base-url"):
        _ask(srv, tmp_path, ["a", "b"])


def test_a_400_about_one_item_fails_that_item_and_the_rest_go_on(llm_server, tmp_path):
    rule = {"id": "long", "match": ["<too long>"], "reply": "x",
            "error": {"status": 400, "message": "Invalid 'messages[1].content': string too long."}}
    srv = llm_server({"default_reply": "fine", "rules": [rule]})
    texts = ["a", "<too long>", "b", "c", "d"]
    result = _ask(srv, tmp_path, texts, concurrency=1)
    assert [r and r["text"] for r in result.responses] == ["fine", None, "fine", "fine", "fine"]
    assert result.errors == {result.keys[1]: "400: Invalid 'messages[1].content': string too long."}
    assert result.stop_kind == "rejected" and result.exit_code == 4 and result.n_failed == 1
    assert "rejected 1 request(s)" in result.hint() and "higher cap" not in result.hint()
    assert srv.count("400") == 1  # a 400 is not retried


def test_the_same_400_on_the_first_requests_is_the_settings(llm_server, tmp_path):
    rule = {"id": "all", "match": [], "reply": "x",
            "error": {"status": 400, "message": "'response_format' of type 'json_schema' is not supported"}}
    srv = llm_server({"rules": [rule]})
    with pytest.raises(EndpointError, match="the first 3 requests were all rejected with 400: 'response_format'"):
        _ask(srv, tmp_path, [f"item {i}" for i in range(20)], concurrency=1)
    assert srv.count("400") == 3


def test_hints_match_the_cause(llm_server, tmp_path):
    srv = llm_server({"rules": [{"id": "t", "match": ["<t>"], "reply": "x", "faults": ["hang"] * 3}],
                      "hang_seconds": 30})
    result = _ask(srv, tmp_path, ["<t>"], timeout=1.0, max_retries=1)
    assert result.stop_kind == "timeout" and "raise --timeout" in result.hint()
    assert "lower --concurrency" in result.hint() and "higher cap" not in result.hint()


# --------------------------------------------------------------------------- deadlines and transport junk


def test_a_trickling_body_fails_within_the_timeout(llm_server, tmp_path):
    # ~250 bytes at one per 0.2 s is ~50 s; --timeout 1 must end each try, not the trickle.
    srv = llm_server({"rules": [{"id": "slow", "match": ["<slow>"], "reply": "x", "faults": ["trickle"] * 2}],
                      "trickle_seconds": 0.2})
    result = _ask(srv, tmp_path, ["<slow>"], timeout=1.0, max_retries=1)
    assert result.responses == [None] and result.stop_kind == "timeout"
    assert srv.count("trickle") == 2 and "APITimeoutError" in result.stopped


def test_transport_junk_is_retried_and_never_cached(llm_server, tmp_path):
    rule = {"id": "j", "match": ["<junk>"], "reply": "real answer", "faults": ["html", "empty_choices"]}
    srv = llm_server({"rules": [rule]})
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        failed = run_batch([_msgs("<junk>")], _config(srv, max_retries=1), cache, progress=False)
        assert failed.responses == [None] and failed.stop_kind == "malformed" and len(cache) == 0
        assert "not a chat completion" in failed.hint()
        done = run_batch([_msgs("<junk>")], _config(srv, max_retries=1), cache, progress=False)
    assert done.responses[0]["text"] == "real answer" and done.n_sent == 1


def test_a_refusal_keeps_its_text(llm_server, tmp_path):
    rule = {"id": "r", "match": ["<no>"], "reply": "unused", "refusal": "I can't help with that request."}
    srv = llm_server({"default_reply": "sure", "rules": [rule]})
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        result = run_batch([_msgs("<no>"), _msgs("yes")], _config(srv), cache, progress=False)
        stored = cache.get(result.keys[0])
    refused, answered = result.responses
    assert refused["text"] == "" and refused["refusal"] == "I can't help with that request."
    assert stored["refusal"] == "I can't help with that request."
    assert answered["text"] == "sure" and answered["refusal"] is None
    assert set(refused) >= {"text", "refusal", "finish_reason", "decoding", "created_at", "usage"}


# --------------------------------------------------------------------------- secrets


def test_the_key_is_scrubbed_everywhere(llm_server, tmp_path, caplog):
    rules = [{"id": "echo", "match": ["<echo>"], "reply": f"your key is {KEY}", "echo_key": True},
             {"id": "bad", "match": ["<bad>"], "reply": "x", "error": {"status": 400, "message": f"bad {KEY}"}}]
    srv = llm_server({"rules": rules, "default_reply": "ok"})
    with caplog.at_level(logging.INFO):
        with ResponseCache(tmp_path / "cache" / "c.sqlite") as cache:
            result = run_batch([_msgs("<echo>"), _msgs("<bad>"), _msgs("plain")],
                               ClientConfig(model="m", base_url=srv.url, concurrency=1, verbose=True), cache)
        written = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert result.responses[0]["text"] == "your key is *** (you sent Bearer ***)"  # the echoed key, scrubbed
    assert result.errors[result.keys[1]] == "400: bad ***"
    printed = "\n".join(r.getMessage() for r in caplog.records)
    assert f"HTTP Request: POST {srv.url}/chat/completions" in printed  # --verbose shows them
    assert KEY.encode() not in written and KEY not in printed and KEY not in repr(result)


@pytest.mark.parametrize("where", ["flag", "env"])
def test_credentials_in_the_base_url_are_refused_before_anything_is_sent(llm_server, tmp_path, monkeypatch, where):
    """httpx would send ``user:pass@`` as Basic auth in place of the key, and a 401 would blame the key."""
    srv = llm_server({"default_reply": "ok"})
    url = srv.url.replace("http://", "http://robin:hunter2-URL-SECRET@")
    if where == "env":
        monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(LLMConfigError) as err, ResponseCache(tmp_path / "c.sqlite") as cache:
        run_batch([_msgs("x")], ClientConfig(model="m", base_url=url if where == "flag" else None), cache,
                  progress=False)
    flag = "--base-url" if where == "flag" else "$OPENAI_BASE_URL"
    assert str(err.value) == (f"field '{flag}': holds credentials (user:password@): remove them and put the key "
                              "in the environment variable $OPENAI_API_KEY")
    assert err.value.exit_code == 2 and "hunter2" not in str(err.value) and srv.requests() == []


def test_no_per_request_log_lines_by_default(llm_server, tmp_path, caplog):
    srv = llm_server({"default_reply": "ok"})
    with caplog.at_level(logging.DEBUG):
        _ask(srv, tmp_path, [f"i{i}" for i in range(5)])
    assert not [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2",
                                                                     "openai") and r.levelno < logging.WARNING]


# --------------------------------------------------------------------------- concurrency


def _simulate(limiter: Limiter, capacity: int, n: int, service: float = 1.0) -> list[int]:
    """A server with ``capacity`` slots, ``service`` s per request, and the limiter's client, in fake time.

    Returns the limit after each answered request.
    """
    import heapq
    import threading

    stop, now, limits = threading.Event(), 0.0, []
    busy: list[float] = []  # when each server slot frees
    flight: list[tuple[float, float, int]] = []  # (done at, sent at, token)
    sent = 0
    while len(limits) < n:
        while sent < n and limiter.in_flight < limiter.limit:
            token = limiter.acquire(stop)
            start = now if len(busy) < capacity else heapq.heappop(busy)
            start = max(start, now)
            heapq.heappush(busy, start + service)
            heapq.heappush(flight, (start + service, now, token))
            sent += 1
        done, began, token = heapq.heappop(flight)
        now = done
        busy = [b for b in busy if b > now] or busy
        limiter.release(token, latency=done - began)
        limits.append(limiter.limit)
    return limits


def test_auto_keeps_one_request_in_flight_for_a_one_at_a_time_server():
    limiter = Limiter("auto", 64)
    limits = _simulate(limiter, capacity=1, n=400)
    assert max(limits) == 2 and limiter.peak == 2  # it probed two once in a while ...
    assert sum(limit == 1 for limit in limits) / len(limits) > 0.9  # ... and stayed at one


def test_auto_grows_to_what_a_wide_server_takes():
    limiter = Limiter("auto", 64)
    limits = _simulate(limiter, capacity=64, n=2000)
    assert limiter.history[:7] == [1, 2, 4, 8, 16, 32, 64] and limits[-1] == 64
    limiter = Limiter("auto", 64)
    limits = _simulate(limiter, capacity=16, n=2000)
    assert 16 <= limits[-1] <= 25 and max(limits[-500:]) <= 25  # near the capacity, not the ceiling


def test_auto_halves_on_congestion_once_per_round():
    import threading

    limiter, stop = Limiter("auto", 64), threading.Event()
    limiter.limit = 32
    tokens = [limiter.acquire(stop) for _ in range(32)]
    for token in tokens:  # the whole round times out
        limiter.release(token, congested=True)
    assert limiter.limit == 16
    fixed = Limiter(5, 64)
    fixed.release(fixed.acquire(stop), congested=True)
    assert fixed.limit == 5


def test_a_one_at_a_time_server_gets_no_abandoned_requests(llm_server, tmp_path):
    srv = llm_server({"default_reply": "ok", "capacity": 1}, latency=0.25)  # well above CPU noise under load
    result = _ask(srv, tmp_path, [f"i{i}" for i in range(16)], concurrency="auto", timeout=30)
    assert result.stopped is None and result.n_sent == 16 and result.n_retries == 0
    assert srv.count("ok") == 16 and srv.count("abandoned") == 0 and result.peak_concurrency <= 2


# --------------------------------------------------------------------------- one cache, many processes

CHILD = """
import json, sys
from rolebench_eval.llm.cache import ResponseCache
from rolebench_eval.llm.client import ClientConfig, run_batch
url, cache_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
requests = [[{"role": "user", "content": f"item {i}"}] for i in range(n)]
with ResponseCache(cache_path) as cache:
    result = run_batch(requests, ClientConfig(model="m", base_url=url, concurrency=4, timeout=30), cache,
                       progress=False)
print(json.dumps({"sent": result.n_sent, "cached": result.n_cached, "stopped": result.stopped,
                  "texts": [r and r["text"] for r in result.responses]}))
"""


@pytest.mark.slow
def test_two_processes_on_one_cache_send_each_request_once(llm_server, tmp_path):
    srv = llm_server({"default_reply": "shared"}, latency=0.05)
    cache_path, n = tmp_path / "shared.sqlite", 60
    cmd = [sys.executable, "-c", CHILD, srv.url, str(cache_path), str(n)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert srv.count("ok") == n == len(srv.requests())  # each unique request sent once, by one of them
    assert sum(o["sent"] for o in outs) == n and all(o["stopped"] is None for o in outs)
    assert all(o["texts"] == ["shared"] * n for o in outs) and all(o["sent"] + o["cached"] == n for o in outs)


def test_a_dead_owners_claim_is_stale_at_once_and_an_expired_one_too(llm_server, tmp_path):
    srv = llm_server({"default_reply": "ok"})
    config = _config(srv)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    requests = [_msgs("a"), _msgs("b"), _msgs("c")]
    keys = request_keys(requests, config)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        host = new_owner().split(":")[0]
        assert cache.claim(keys[0], f"{host}:{dead.pid}:abcd1234", ttl=3600) == "claimed"  # a killed process
        assert cache.claim(keys[1], "elsewhere:1:abcd1234", ttl=-1) == "claimed"  # expired
        assert cache.claim(keys[2], "elsewhere:1:abcd1234", ttl=1.0) == "claimed"  # live for one more second
        assert cache.claim(keys[2], new_owner(), ttl=60) == "busy"
        result = run_batch(requests, config, cache, progress=False)
    assert result.stopped is None and result.n_sent == 3 and srv.count("ok") == 3


def test_a_damaged_cache_names_its_file_and_the_way_out(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    path.write_bytes(b"this is not an SQLite database, it was overwritten by accident" * 100)
    with pytest.raises(CacheError) as err:
        ResponseCache(path)
    assert str(err.value).startswith(f"{path}: not a usable response cache (file is not a database)")
    assert "Move the file aside" in str(err.value) and "--cache" in str(err.value) and err.value.exit_code == 2


def test_claims_do_not_outlive_a_batch(llm_server, tmp_path):
    srv = llm_server({"rules": [{"id": "bad", "match": ["<bad>"], "reply": "x",
                                 "error": {"status": 400, "message": "no"}}], "default_reply": "ok"})
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        run_batch([_msgs("<bad>"), _msgs("fine")], _config(srv), cache, progress=False)
        left = cache._db.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert left == 0


# --------------------------------------------------------------------------- the endpoint is in the cache key


def test_a_server_restarted_elsewhere_under_the_same_model_name_is_asked_again(llm_server, tmp_path):
    """vLLM restarted with another checkpoint, same served name, another port: no answer of the old one."""
    texts = [f"item {i}" for i in range(4)]
    old = _ask(llm_server({"default_reply": "old checkpoint"}), tmp_path, texts, concurrency=1)
    assert [r["text"] for r in old.responses] == ["old checkpoint"] * 4
    new_srv = llm_server({"default_reply": "new checkpoint"})
    new = _ask(new_srv, tmp_path, texts, concurrency=1)
    assert (new.n_sent, new.n_cached, new_srv.count("ok")) == (4, 0, 4)
    assert [r["text"] for r in new.responses] == ["new checkpoint"] * 4
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert len(cache) == 8  # both endpoints' answers kept, each under its own keys


def test_a_cache_of_the_older_key_format_is_not_reused_and_says_so_once(tmp_path, caplog):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with ResponseCache(path) as cache:
        cache.put("format-1-key", {"model": "m"}, {"text": "old"})
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")  # what a cache written before the endpoint was keyed says
    db.commit()
    db.close()
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"), ResponseCache(path) as cache:
        assert len(cache) == 1
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"), ResponseCache(path):
        pass
    said = [r.getMessage() for r in caplog.records if "cache key format" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"{path}: its 1 answers were stored under cache key format 1")
    assert "not reused" in said[0]


def test_a_cache_of_a_newer_key_format_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "new.sqlite"
    ResponseCache(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match=r"cache key format 99 is newer than this rolebench-eval's \(2\)"):
        ResponseCache(path)


def test_nothing_listening_is_the_settings_not_a_fault_to_retry(tmp_path, caplog):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with caplog.at_level(logging.WARNING, logger="rolebench_eval"), pytest.raises(EndpointError) as err:
        _ask(SimpleNamespace(url=url), tmp_path, ["a", "b", "c"], concurrency=2, max_retries=6)
    assert str(err.value).startswith(f"{url}: nothing answers there (ConnectError: ") and err.value.exit_code == 2
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # stopped at the first try
