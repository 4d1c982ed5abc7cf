"""The whole loop on an invented character: generate -> LoRA fine-tune (tiny model) -> evaluate.

RoleGPT and Context-Instruct data come from the scripted server on 127.0.0.1; the tiny
random Llama of tests/conftest.py is fine-tuned for two steps on the generated train files
(``rolebench_eval.finetune.train`` with ``extra_data``) and evaluated with its adapter on the
generated test files through the custom-role tasks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolebench_eval import evaluate
from rolebench_eval.generate.context_instruct import generate_context_instruct
from rolebench_eval.data import read_items
from rolebench_eval.generate.common import GenerateOptions
from rolebench_eval.generate.rolegpt import generate_rolegpt
from rolebench_eval.metrics import rouge_l
from rolebench_eval.fileio import sha256_file
from rolebench_eval.source import load_split

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "generate"
KEY = "sk-test-DISTINCTIVE-generate-e2e-0b7f"


def _generate(srv, root: Path) -> Path:
    opts = GenerateOptions(model="gen-m", out=root / "data", base_url=srv.url, cache=root / "cache.sqlite",
                           concurrency=1, timeout=2, backoff_base=0.01, progress=False)
    results = [generate_rolegpt(FIX / "brine.yaml", FIX / "instructions.jsonl", opts),
               generate_context_instruct(FIX / "brine.yaml", opts, segment_size=60)]
    for result in results:
        assert result.batch.stopped is None
        for tally in result.report["tallies"].values():  # every answer kept or dropped for a reason
            assert tally["kept"] + sum(tally["dropped"].values()) == tally["received"] > 0
    return root / "data"


@pytest.mark.slow
def test_generate_finetune_evaluate(llm_server, tmp_path, tiny_llama, monkeypatch):
    from rolebench_eval.finetune import train

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rules = []
    for name in ("rolegpt", "context_instruct"):
        rules += json.loads((FIX / f"{name}_script.json").read_text(encoding="utf-8"))["rules"]
    data = _generate(llm_server({"rules": rules}), tmp_path)
    counts = {str(p.relative_to(data)): len(read_items(p)) for p in sorted(data.rglob("*.jsonl"))}
    assert counts == {"general/rolegpt_baseline.jsonl": 4, "general/test.jsonl": 1, "general/train.jsonl": 4,
                      "role_specific/test.jsonl": 2, "role_specific/train.jsonl": 5}

    desc = str(data / "profiles" / "desc.json")
    extra = [{"path": str(data / "general" / "train.jsonl"), "lang": "en", "kind": "general", "descriptions": desc},
             {"path": str(data / "role_specific" / "train.jsonl"), "lang": "en", "kind": "specific",
              "descriptions": desc}]
    adapter = train(Path(__file__).parent.parent / "finetune" / "recipes" / "tiny_cpu.yaml", splits=[],
                    extra_data=extra, model_name_or_path=str(tiny_llama), output_dir=str(tmp_path / "run"),
                    max_steps=2, eval_holdout=0, references_per_item=5)
    record = json.loads((adapter / "rolebench_provenance.json").read_text(encoding="utf-8"))
    assert [s["sha256"] for s in record["data"]["sources"]] == [sha256_file(Path(e["path"])) for e in extra]
    assert record["data"]["train_general"] == 16 and record["data"]["train_specific"] == 5
    assert record["result"]["global_step"] == 2 and (adapter / "adapter_model.safetensors").is_file()

    tasks = ["rolebench_custom_general", "rolebench_custom_specific"]
    results = evaluate(model="hf", model_args=f"pretrained={tiny_llama},peft={adapter}", tasks=tasks,
                       data_dir=data, device="cpu", gen_kwargs="max_gen_toks=8", apply_chat_template=True,
                       log_samples=True)
    general, specific = (results["results"][t] for t in tasks)
    assert general["sample_len"] == 1 and specific["sample_len"] == 2
    for res, metric in ((general, "cus"), (specific, "spe")):
        assert 0.0 <= res[f"{metric},none"] <= 1.0 and "rougeL_f,none" in res and "resp_tokens,none" in res
    doc = results["samples"]["rolebench_custom_specific"][0]["doc"]
    assert doc["lang"] == "en" and doc["system_prompt"].startswith("You are Captain Ottoline Brine, your description")
    assert results["configs"]["rolebench_custom_specific"]["metadata"]["data"]["file"] == "role_specific/test.jsonl"

    replay = evaluate(model="rolegpt", tasks=["rolebench_custom_general"], data_dir=data)
    split = load_split("custom_general", data)
    want = [rouge_l(split.baseline[(i.role, i.question)], list(i.references), "en") for i in split.items]
    assert replay["results"]["rolebench_custom_general"]["cus,none"] == pytest.approx(sum(want) / len(want))
