"""``rolebench-eval demo``: the whole pipeline offline on a CPU, ending in a leaderboard page.

1. the ``rolegpt`` replay on every RoleBench split present in the data folder;
2. a tiny random Llama (tokenizer trained on the Chinese train data) and its RoCIT LoRA
   adapter, trained on the Chinese train splits with the tiny CPU recipe;
3. both evaluated on the full Chinese test splits (``rolebench_zh``), with the chat template;
4. the leaderboard of all runs beside the paper's reported rows.

Nothing is downloaded. The tiny models are smoke-test models, not real role-players:
their rows show the pipeline at work, not what a 7B model reaches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
ZH_TRAIN = ("rolebench-zh/general/train.jsonl", "rolebench-zh/role_specific/train.jsonl")


@dataclass
class DemoSettings:
    """What the demo trains and generates (small enough for a 2-core CPU in minutes)."""

    train_steps: int = 300
    eval_holdout: int = 4
    learning_rate: float = 3e-3
    lora_r: int = 32
    max_gen_toks: int = 48
    batch_size: int = 32


def _tokenizer_corpus(data_dir: Path) -> list[str]:
    import json

    texts = []
    for rel in ZH_TRAIN:
        with (data_dir / rel).open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                texts.append(row["question"] + "\n" + "\n".join(row["generated"]))
    return texts


def _recipe_path() -> Path:
    from importlib.resources import files

    return Path(str(files("rolebench_eval.finetune") / "recipes" / "tiny_cpu.yaml"))


def train_tiny_models(data_dir: Path, out: Path, settings: DemoSettings) -> tuple[Path, Path]:
    """Build the tiny base model and train its RoCIT adapter; returns (base, adapter)."""
    from rolebench_eval.finetune import train
    from rolebench_eval.tiny import build_tiny_llama

    base = out / "models" / "tiny-llama"
    if not (base / "config.json").is_file():
        build_tiny_llama(base, _tokenizer_corpus(data_dir))
    adapter = out / "models" / "tiny-llama-rocit" / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        adapter = train(_recipe_path(), model_name_or_path=str(base), output_dir=str(adapter.parent),
                        data_dir=str(data_dir), max_steps=settings.train_steps, max_items_per_split=None,
                        eval_holdout=settings.eval_holdout,
                        learning_rate=settings.learning_rate, lora_r=settings.lora_r, lora_alpha=2 * settings.lora_r)
    return base, adapter


def run_demo(data_dir: str | Path, out: str | Path, settings: DemoSettings | None = None) -> Path:
    """Run the four steps; returns the path of the leaderboard page."""
    from rolebench_eval.leaderboard import build_leaderboard
    from rolebench_eval.reproduce import reproduce
    from rolebench_eval.tasks.runner import evaluate

    settings = settings or DemoSettings()
    data_dir, out = Path(data_dir).resolve(), Path(out).resolve()
    runs = out / "runs"
    log.info("1/4 rolegpt replay")
    reproduce(data_dir, runs)
    log.info("2/4 tiny Llama and its RoCIT adapter")
    base, adapter = train_tiny_models(data_dir, out, settings)
    for name, model_args in (("tiny-llama", f"pretrained={base}"),
                             ("tiny-llama-rocit", f"pretrained={base},peft={adapter}")):
        log.info("3/4 evaluating %s on rolebench_zh", name)
        evaluate(model="hf", model_args=model_args, tasks=["rolebench_zh"], data_dir=data_dir, device="cpu",
                 batch_size=settings.batch_size, apply_chat_template=True, output_path=runs, log_samples=True,
                 gen_kwargs=f"max_gen_toks={settings.max_gen_toks}")
    log.info("4/4 leaderboard")
    board_dir = out / "leaderboard"
    names = {str(adapter): "tiny-llama + RoCIT (demo)", str(base): "tiny-llama (demo)"}
    build_leaderboard([runs], out=board_dir, options=_options(names))
    return board_dir / "index.html"


def _options(names: dict[str, str]):
    from rolebench_eval.leaderboard.build import Options

    return Options(names=names)
