"""RoCIT end to end on tiny Llamas: LoRA-only updates, lm-eval with peft=, each switch, learning, 2 processes.

Killing and resuming runs: tests/test_finetune_resume.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rolebench_eval.finetune import check_adapter_provenance, train
from rolebench_eval.provenance import PROVENANCE_FILE

from rolebench_eval import evaluate
from rolebench_eval.prompts import PROMPT_VERSION

TINY = Path(__file__).resolve().parent.parent / "finetune" / "recipes" / "tiny_cpu.yaml"
FIXTURE_SPLITS = ["general_en", "specific_en", "general_zh", "specific_zh"]


# One thread per process: on a shared 2-core machine, OpenMP threads that spin-wait for descheduled
# siblings made these tests 3x slower (measured); results do not depend on it.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _losses(run_dir: Path) -> dict[int, float]:
    history = json.loads((run_dir / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    steps = [h["step"] for h in history if "loss" in h]
    assert len(steps) == len(set(steps)), "a step was logged twice"
    return {h["step"]: h["loss"] for h in history if "loss" in h}


def _fixture_run_args(model, data_dir, out, **kw):
    return {"model_name_or_path": str(model), "output_dir": str(out), "data_dir": str(data_dir),
            "splits": FIXTURE_SPLITS, "references_per_item": 3, **kw}


@pytest.mark.slow
def test_only_lora_weights_train_and_the_adapter_runs_in_lm_eval(tiny_llama, fixture_data_dir, tmp_path):
    import torch
    from peft import PeftModel
    from rolebench_eval.finetune.data import Sample
    from rolebench_eval.finetune.render import Renderer
    from rolebench_eval.provenance import chat_template_sha256
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_sha = _sha(tiny_llama / "model.safetensors")
    base = AutoModelForCausalLM.from_pretrained(tiny_llama).state_dict()
    adapter = train(TINY, **_fixture_run_args(tiny_llama, fixture_data_dir, tmp_path / "run", eval_holdout=1,
                                              eval_strategy="steps", eval_steps=4, max_steps=4, save_steps=2,
                                              per_device_train_batch_size=2))
    assert adapter == tmp_path / "run" / "adapter"
    weights, early = load_file(adapter / "adapter_model.safetensors"), load_file(
        tmp_path / "run" / "checkpoint-2" / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert all(weights[k].abs().sum() > 0 for k in weights if "lora_B" in k)  # peft starts B at exactly 0
    assert all(not torch.equal(weights[k], early[k]) for k in weights)  # still moving between steps 2 and 4
    assert _sha(tiny_llama / "model.safetensors") == base_sha
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), adapter)
    for name, value in merged.named_parameters():
        if "lora_" not in name:
            assert torch.equal(value, base[name.replace("base_model.model.", "").replace(".base_layer", "")]), name
            assert not value.requires_grad

    record = json.loads((adapter / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert record["prompt"] == {
        "format": "chat", "prompt_version": PROMPT_VERSION, "plain_template": None,
        "chat_template_sha256": chat_template_sha256(AutoTokenizer.from_pretrained(tiny_llama)),
        "role_prompt_placement": "system", "evaluate_with_apply_chat_template": True}
    assert record["base_model"]["config_sha256"] == _sha(tiny_llama / "config.json")
    sources = {s["name"]: s for s in record["data"]["sources"]}
    assert sources["specific_zh"]["sha256"] == _sha(fixture_data_dir / "rolebench-zh/role_specific/train.jsonl")
    assert (record["data"]["train_samples"], record["data"]["eval_samples"]) in ((6, 1), (4, 3))
    assert record["hyperparameters"]["lora_r"] == 8 and record["result"]["global_step"] == 4
    assert record["result"]["last_eval_loss"] > 0  # the held-out item was evaluated (eval_steps 4)
    assert record["packages"]["peft"] and record["packages"]["trl"]
    assert check_adapter_provenance(adapter, str(tiny_llama), PROMPT_VERSION, apply_chat_template=True) == []

    out = evaluate(model="hf", model_args=f"pretrained={tiny_llama},peft={adapter}", tasks=["rolebench_specific_zh"],
                   data_dir=fixture_data_dir, device="cpu", limit=2, apply_chat_template=True,
                   gen_kwargs="max_gen_toks=8", log_samples=True)
    assert 0.0 <= out["results"]["rolebench_specific_zh"]["spe,none"] <= 1.0
    assert f"peft={adapter}" in out["config"]["model_args"]
    renderer = Renderer(AutoTokenizer.from_pretrained(tiny_llama), "chat")
    for logged in out["samples"]["rolebench_specific_zh"]:  # what lm-eval actually fed the adapted model
        doc = logged["doc"]
        sample = Sample(doc["role"], doc["lang"], doc["kind"], doc["question"], "", None, "test", 0)
        assert logged["arguments"][0][0] == renderer.prompt(sample)


@pytest.mark.slow
def test_packed_training_puts_the_samples_in_one_row(tiny_llama, fixture_data_dir, tmp_path):
    run = tmp_path / "run"
    adapter = train(TINY, **_fixture_run_args(tiny_llama, fixture_data_dir, run, max_steps=2, packing=True,
                                              max_length=2048, per_device_train_batch_size=1))
    first = json.loads((run / "trainer_state.json").read_text(encoding="utf-8"))["log_history"][0]
    assert first["step"] == 1 and first["epoch"] == 1.0  # one packed row of batch 1 holds the whole train set
    record = json.loads((adapter / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert record["hyperparameters"]["packing"] is True and record["result"]["global_step"] == 2


SWITCHES = [
    ({"context_instruct": False}, lambda r: r["data"]["train_specific"] == 0 and r["data"]["train_general"] > 0),
    ({"exclude_held_out_roles": True}, lambda r: r["data"]["policy"]["exclude_held_out_roles"] is True),
    ({"prompt_format": "plain"}, lambda r: r["prompt"]["format"] == "plain"
     and r["prompt"]["evaluate_with_apply_chat_template"] is False),
    ({"general_to_specific_ratio": 1.0}, lambda r: r["data"]["train_general"] == r["data"]["train_specific"]),
    ({"references_per_item": 1, "lora_target_modules": ["all-linear"]},
     lambda r: r["data"]["train_samples"] == 5 and r["hyperparameters"]["lora_target_modules"] == "all-linear"),
]


@pytest.mark.slow
@pytest.mark.parametrize("switch, holds", SWITCHES, ids=[",".join(s) for s, _ in SWITCHES])
def test_the_tiny_recipe_trains_through_each_switch(tiny_llama, fixture_data_dir, tmp_path, switch, holds):
    kwargs = _fixture_run_args(tiny_llama, fixture_data_dir, tmp_path / "run", max_steps=2,
                               per_device_train_batch_size=2)
    adapter = train(TINY, **kwargs | switch)
    record = json.loads((adapter / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert record["result"]["global_step"] == 2 and holds(record), record["data"]


def test_packed_rows_do_not_attend_across_samples(tiny_llama):
    """Padding-free packing (TRL's BFD collator) on CPU/sdpa: each sample's loss is what it is alone."""
    import torch
    from rolebench_eval.finetune.data import Sample
    from rolebench_eval.finetune.render import Renderer
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    renderer = Renderer(tok, "chat")
    a = renderer.encode(Sample("Marlow Finch", "en", "general", "Name three colours.", "Grey and gold.", None, "s", 0), 512)
    b = renderer.encode(Sample("老船长", "zh", "specific", "您怕风暴吗？", "怕？老夫见过的风暴。", None, "s", 1), 512)

    def token_losses(batch):  # SFTTrainer.compute_loss calls the model with use_cache=False, as here
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[0, :-1]
        labels = batch["labels"][0, 1:]
        return torch.nn.functional.cross_entropy(logits, labels.clamp(min=0), reduction="none")[labels != -100]

    padded = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    row = {"input_ids": a["input_ids"] + b["input_ids"], "labels": a["labels"] + b["labels"],
           "seq_lengths": [len(a["input_ids"]), len(b["input_ids"])]}
    alone = torch.cat([token_losses(padded([a])), token_losses(padded([b]))])
    assert torch.allclose(token_losses(packed([row])), alone, atol=1e-5)
    assert not torch.allclose(token_losses(padded([row])), alone, atol=1e-3)  # plain concatenation would leak


def _sharpened_base(tiny_llama: Path, path: Path) -> Path:
    """The tiny Llama with its final RMSNorm weight x8.

    Its 0.02-init tied embeddings cap every logit near +-1.3 whatever LoRA learns, so its loss
    cannot fall far below ln(vocab) even at 100% greedy accuracy; a larger output norm lifts that
    cap (the same random network otherwise) and makes the loss curve meaningful.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(path)
    return path


def _slice_of_real_train_data(real_data_dir: Path, root: Path, n: int = 8) -> list[dict]:
    """The n shortest of the first 200 real specific_zh train items, as both train.jsonl and test.jsonl."""
    lines = (real_data_dir / "rolebench-zh/role_specific/train.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    rows = sorted((json.loads(line) for line in lines), key=lambda r: len(r["question"]) + len(r["generated"][0]))[:n]
    folder = root / "rolebench-zh/role_specific"
    folder.mkdir(parents=True)
    for name in ("train.jsonl", "test.jsonl"):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def _spe(base: Path, adapter: Path, data_dir: Path) -> float:
    out = evaluate(model="hf", model_args=f"pretrained={base},peft={adapter}", tasks=["rolebench_specific_zh"],
                   data_dir=data_dir, device="cpu", apply_chat_template=True, batch_size=8,
                   gen_kwargs="max_gen_toks=96")
    return out["results"]["rolebench_specific_zh"]["spe,none"]


@pytest.mark.slow
def test_pipeline_memorises_a_slice_of_the_real_chinese_data(tiny_llama, real_data_dir, tmp_path):
    """Memorisation check of the whole pipeline (not a claim about generalisation)."""
    from peft import PeftConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    data_dir = tmp_path / "slice"
    _slice_of_real_train_data(real_data_dir, data_dir)
    base = _sharpened_base(tiny_llama, tmp_path / "base")
    adapter = train(TINY, model_name_or_path=str(base), output_dir=str(tmp_path / "run"), data_dir=str(data_dir),
                    splits=["specific_zh"], max_items_per_split=None, lora_r=64, lora_alpha=128,
                    learning_rate=3e-3, max_steps=80, per_device_train_batch_size=4, save_steps=1000,
                    logging_steps=10)
    untrained = tmp_path / "untrained"
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), PeftConfig.from_pretrained(adapter)).save_pretrained(untrained)
    losses = _losses(tmp_path / "run")
    before, after = _spe(base, untrained, data_dir), _spe(base, adapter, data_dir)
    print(f"\nmemorisation: loss step 1 {losses[1]:.3f} -> step 80 {losses[80]:.3f}; "
          f"ROUGE-L recall (spe) untrained {before:.4f} -> trained {after:.4f}")
    assert losses[80] < 0.5 * losses[1]
    assert after > before + 0.2


def _cli(model, data_dir, out, *extra):
    return [sys.executable, "-m", "rolebench_eval.finetune", "--config", str(TINY), "--model_name_or_path", str(model),
            "--output_dir", str(out), "--data_dir", str(data_dir), "--splits", *FIXTURE_SPLITS,
            "--references_per_item", "3", "--per_device_train_batch_size", "2", "--logging_steps", "1", *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_accelerate_run_writes_one_adapter(tiny_llama, fixture_data_dir, tmp_path):
    run = tmp_path / "run"
    accelerate = Path(sys.executable).parent / "accelerate"
    launch = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m"]
    cmd = launch + _cli(tiny_llama, fixture_data_dir, run, "--max_steps", "3", "--eval_holdout", "1",
                        "--eval_strategy", "steps")[2:]
    env = os.environ | ONE_THREAD | {"ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.endswith("adapter")]
    assert printed == [str(run / "adapter")]  # by rank 0 only
    assert sorted(run.rglob(PROVENANCE_FILE)) == [run / "adapter" / PROVENANCE_FILE]
    assert sorted(p.name for p in run.iterdir() if "adapter" in p.name) == ["adapter"]
    record = json.loads((run / "adapter" / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert (record["result"]["world_size"], record["result"]["global_step"]) == (2, 3)
