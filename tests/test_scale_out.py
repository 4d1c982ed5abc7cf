"""Scale-out: ``accelerate launch --num_processes 2 -m lm_eval`` scores every item as one process does.

CPU only, as the fine-tuning tests run accelerate: ``--multi_gpu`` with ``ACCELERATE_USE_CPU``
starts two CPU processes (gloo). lm-eval's HF model shards the documents across processes
only when it counts more than one GPU, so the test reports two devices to it
(tests/fixtures/fake_gpus) and checks that each process really got half the work. Greedy
decoding of the tiny model with batch size 1 is deterministic, so the per-item scores must
be equal, not just close.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.tasks import TASKS_DIR

BIN = Path(sys.executable).parent
FAKE_GPUS = Path(__file__).resolve().parent / "fixtures" / "fake_gpus"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lm_eval_args(model: Path, data_dir: Path, out: Path) -> list[str]:
    return ["--model", "hf", "--model_args", f"pretrained={model}", "--tasks", "rolebench_zh",
            "--include_path", TASKS_DIR, "--metadata", json.dumps({"data_dir": str(data_dir)}),
            "--apply_chat_template", "--batch_size", "1", "--gen_kwargs", "max_gen_toks=12",
            "--output_path", str(out), "--log_samples"]


def _per_item(out: Path) -> dict[tuple[str, int], dict]:
    from rolebench_eval.outputs import find_runs, latest_samples, read_records

    runs, errors = find_runs([out])
    assert not errors and len(runs) == 1
    return {(task, r.doc_id): {"response": r.response, **r.metrics}
            for _, task, path in latest_samples(runs) for r in read_records(path)}


@pytest.mark.slow
def test_two_processes_give_the_same_per_item_scores_as_one(tiny_llama, fixture_data_dir, tmp_path):
    env = os.environ | ONE_THREAD | {"ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "",
                                     "PYTHONPATH": str(FAKE_GPUS), "ROLEBENCH_FAKE_DEVICE_COUNT": "2",
                                     "LMEVAL_LOG_LEVEL": "DEBUG"}
    single = subprocess.run([str(BIN / "lm_eval"), *_lm_eval_args(tiny_llama, fixture_data_dir, tmp_path / "one"),
                             "--device", "cpu"], capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr[-3000:]
    launch = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
              "-m", "lm_eval"]
    double = subprocess.run(launch + _lm_eval_args(tiny_llama, fixture_data_dir, tmp_path / "two"),
                            capture_output=True, text=True, env=env)
    assert double.returncode == 0, double.stderr[-3000:]
    shards = sorted(line.rsplit(":", 1)[1].strip() for line in double.stderr.splitlines()
                    if "Task: rolebench_general_zh; number of requests on this rank" in line)
    assert shards == ["1", "1"], double.stderr[-3000:]  # each process had its own half of the 2 documents
    one, two = _per_item(tmp_path / "one"), _per_item(tmp_path / "two")
    assert len(one) == 4 and one == two
