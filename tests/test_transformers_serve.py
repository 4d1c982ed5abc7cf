"""Against a server nobody here wrote: ``transformers serve`` (the ``transformers[serving]`` extra).

The tiny Llama runs on CPU behind transformers' own OpenAI-compatible server; lm-eval's
``local-chat-completions`` model asks it for the RoleBench task, with a small token limit,
and then the same server judges those answers: a random tiny model never produces a
verdict, so the judge run must exit 5 with nothing scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.fileio import read_jsonl

BIN = Path(sys.executable).parent


def _env(fixture_data_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return env | {"ROLEBENCH_DATA_DIR": str(fixture_data_dir)}


@pytest.fixture(scope="module")
def lm_eval_run(transformers_server, fixture_data_dir, tmp_path_factory):
    """``rolebench-eval run --model local-chat-completions`` against the server: (output folder, process)."""
    srv, out = transformers_server, tmp_path_factory.mktemp("lm-eval-out")
    done = subprocess.run(
        [str(BIN / "rolebench-eval"), "run", "--model", "local-chat-completions",
         "--model_args", f"model={srv.model},base_url={srv.url}/chat/completions", "--apply_chat_template",
         "--tasks", "rolebench_specific_zh", "--limit", "2", "--gen_kwargs", "max_gen_toks=8",
         "--output_path", str(out), "--log_samples"], capture_output=True, text=True, env=_env(fixture_data_dir))
    return out, done


@pytest.mark.slow
def test_lm_eval_run_against_transformers_serve(transformers_server, lm_eval_run):
    srv, (out, done) = transformers_server, lm_eval_run
    assert done.returncode == 0, done.stderr[-3000:]
    [samples] = list(out.glob("*/samples_rolebench_specific_zh_*.jsonl"))
    rows = [row for _, row in read_jsonl(samples, "samples file")]
    assert [row["doc_id"] for row in rows] == [0, 1]
    for row in rows:
        messages = json.loads(row["arguments"]["gen_args_0"]["arg_0"][0])
        assert messages[0]["role"] == "system" and messages[1]["content"] == row["doc"]["question"].strip()
        # the same request sent directly: greedy decoding gives the same 8 tokens the run logged
        direct = srv.chat({"messages": messages, "max_tokens": 8, "temperature": 0})
        answer = direct["choices"][0]["message"]["content"]
        assert direct["usage"]["completion_tokens"] == 8 and direct["choices"][0]["finish_reason"] == "length"
        assert row["resps"] == [[answer]] and row["filtered_resps"] == [answer]
    assert srv.log().count('"POST /v1/chat/completions HTTP/1.1" 200') >= 4  # 2 from lm-eval, 2 direct


@pytest.mark.slow
def test_a_judge_run_on_it_with_no_verdict_exits_5(transformers_server, lm_eval_run, fixture_data_dir, tmp_path):
    srv, (out, done) = transformers_server, lm_eval_run
    assert done.returncode == 0, done.stderr[-3000:]
    judged = subprocess.run(
        [str(BIN / "rolebench-eval"), "judge", str(out), "--judge", "rank", "--base-url", srv.url,
         "--model", srv.model, "--max-new-tokens", "8", "--out", str(tmp_path / "judgments"),
         "--cache", str(tmp_path / "cache.sqlite"), "--no-progress"],
        capture_output=True, text=True, env=_env(fixture_data_dir))
    assert judged.returncode == 5, judged.stderr[-3000:]
    assert "rolebench-eval judge: error: no verdict parsed: all 2 judged items are parse failures" in judged.stderr
    [summary_path] = list((tmp_path / "judgments").glob("*/rolebench_specific_zh/rank/summary.json"))
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert (summary["n_judged"], summary["n_parsed"], summary["win_rate"]) == (2, 0, None)
    assert summary["decoding"]["max_tokens"] == 8  # what was sent, as the server took it
