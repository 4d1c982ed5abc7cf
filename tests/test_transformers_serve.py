"""Against a server nobody here wrote: ``transformers serve`` (the ``transformers[serving]`` extra).

The tiny Llama runs on CPU behind transformers' own OpenAI-compatible server; lm-eval's
``local-chat-completions`` model asks it for the RoleBench task, with a small token limit.
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


@pytest.mark.slow
def test_lm_eval_run_against_transformers_serve(transformers_server, fixture_data_dir, tmp_path):
    srv = transformers_server
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"ROLEBENCH_DATA_DIR": str(fixture_data_dir)}
    out = subprocess.run(
        [str(BIN / "rolebench-eval"), "run", "--model", "local-chat-completions",
         "--model_args", f"model={srv.model},base_url={srv.url}/chat/completions", "--apply_chat_template",
         "--tasks", "rolebench_specific_zh", "--limit", "2", "--gen_kwargs", "max_gen_toks=8",
         "--output_path", str(tmp_path), "--log_samples"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    [samples] = list(tmp_path.glob("*/samples_rolebench_specific_zh_*.jsonl"))
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
