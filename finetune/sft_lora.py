"""RoCIT: role-conditioned instruction tuning with LoRA on RoleBench, ready for lm-eval's ``peft=``.

Train (one process, or any ``accelerate launch`` setup: multi-GPU, multi-node, DeepSpeed, FSDP)::

    rolebench-eval finetune --config finetune/recipes/rolellama_7b_lora.yaml --output_dir runs/rolellama
    accelerate launch --num_processes 8 -m rolebench_eval.finetune \\
        --config finetune/recipes/rolellama_7b_lora.yaml --output_dir runs/rolellama
    rolebench-eval finetune --config finetune/recipes/rolellama_7b_lora.yaml --output_dir runs/rolellama --resume

Evaluate the adapter (``runs/rolellama/adapter``) with the same prompts it was trained on::

    rolebench-eval run --model hf --model_args pretrained=huggyllama/llama-7b,peft=runs/rolellama/adapter \\
        --tasks rolebench_specific_en,rolebench_general_en

(add ``--apply_chat_template`` when the recipe trained with ``prompt_format: chat``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import types
import typing
from datetime import datetime, timezone
from pathlib import Path

import yaml
from .config import (
    ARG_CLASSES,
    ModelArguments,
    RecipeError,
    ScriptArguments,
    TrainArguments,
    check_base_model,
    coerce_values,
    fields_by_name,
)
from rolebench_eval.fileio import write_json_atomic
from .data import Mix, build_mix
from rolebench_eval.provenance import (
    FORMAT_VERSION,
    PROVENANCE_FILE,
    base_model_record,
    package_versions,
)

log = logging.getLogger(__name__)
ADAPTER_DIR = "adapter"


def main(script_args: ScriptArguments, model_args: ModelArguments, training_args: TrainArguments) -> Path:
    """Train a LoRA adapter and return its folder (``<output_dir>/adapter``)."""
    checkpoint = resume_checkpoint(training_args)  # cheap checks first: nothing heavy is imported yet
    check_base_model(model_args.model_name_or_path)
    mix = build_mix(script_args, training_args.seed)
    if int(os.environ.get("RANK", "0")) == 0:  # before the trainer exists, the launcher's rank is all we have
        log.info("training mix: %s", json.dumps({k: v for k, v in mix.summary.items() if k != "sources"}))

    import transformers
    from datasets import Dataset
    from .render import Renderer
    from trl import SFTTrainer

    transformers.set_seed(training_args.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    renderer = Renderer(tokenizer, script_args.prompt_format)
    train_rows, stats = renderer.encode_all(mix.train, training_args.max_length)
    eval_rows, _ = renderer.encode_all(mix.eval, training_args.max_length)
    if not train_rows:
        raise RecipeError(f"empty training set: all {len(mix.train)} samples have prompts longer than "
                          f"max_length={training_args.max_length}")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_args.model_name_or_path, dtype=model_args.dtype, attn_implementation=model_args.attn_implementation)
    trainer = SFTTrainer(
        model=model,
        args=sft_config(training_args, has_eval=bool(eval_rows)),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=lora_config(model_args),
    )
    check_world_size(trainer.args.world_size)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.save_state()
    record = provenance_record(script_args, model_args, training_args, mix, renderer, stats, trainer)
    return save_adapter(trainer, Path(training_args.output_dir), record)


def sft_config(args: TrainArguments, has_eval: bool):
    """TRL's ``SFTConfig`` from our training arguments (same field names)."""
    from trl import SFTConfig

    fields = {k: v for k, v in dataclasses.asdict(args).items() if k not in ("resume", "eval_steps")}
    return SFTConfig(
        **fields,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(args.eval_steps or args.logging_steps) if has_eval else None,
        save_strategy="steps",
        logging_first_step=True,
        use_cpu=launched_world_size() > 1 and not _accelerator_available(),  # DDP over gloo on CPU-only hosts
    )


def launched_world_size() -> int:
    """How many processes the launcher (accelerate launch, torchrun) started."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _accelerator_available() -> bool:
    import torch

    return torch.accelerator.is_available()


def check_world_size(trainer_world_size: int) -> None:
    """Several launched processes that did not join one process group would train separate copies."""
    if trainer_world_size != launched_world_size():
        raise RuntimeError(f"{launched_world_size()} processes were launched but the trainer sees a world of "
                           f"{trainer_world_size}; they would each train and write their own adapter")


def lora_config(args: ModelArguments):
    """peft ``LoraConfig`` for a causal LM; ``["all-linear"]`` becomes peft's "all-linear"."""
    from peft import LoraConfig

    targets = args.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders whose trainer_state.json (written last) is readable and at step N."""
    found = []
    for path in output_dir.glob("checkpoint-*"):
        try:
            step = int(path.name.split("-", 1)[1])
            state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        if state.get("global_step") == step:
            found.append((step, path))
    return [path for _, path in sorted(found)]


def resume_checkpoint(args: TrainArguments) -> Path | None:
    """The checkpoint to resume from; refuses to mix a new run into an old run's folder."""
    out = Path(args.output_dir)
    started = out.is_dir() and (any(out.glob("checkpoint-*")) or (out / ADAPTER_DIR).exists())
    if args.resume:
        complete = complete_checkpoints(out) if out.is_dir() else []
        if not complete:
            raise RecipeError(f"--resume: no complete checkpoint in {out}")
        return complete[-1]
    if started:
        raise RecipeError(f"{out} already holds a run (checkpoints or an adapter); pass --resume to continue it "
                          "or choose a new output_dir")
    return None


def provenance_record(script_args, model_args, training_args, mix: Mix, renderer, stats: dict, trainer) -> dict:
    """Everything needed to know what the adapter is and how evaluation must prompt it."""
    from rolebench_eval.provenance import chat_template_sha256

    from rolebench_eval.prompts import PLAIN_TEMPLATE, PROMPT_VERSION

    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (Python 3.10)
        "base_model": base_model_record(model_args.model_name_or_path),
        "data": mix.summary | stats,
        "prompt": {
            "format": renderer.format,
            "prompt_version": PROMPT_VERSION,
            "chat_template_sha256": chat_template_sha256(renderer.tokenizer) if renderer.format == "chat" else None,
            "role_prompt_placement": renderer.placement,
            "plain_template": PLAIN_TEMPLATE if renderer.format == "plain" else None,
            "evaluate_with_apply_chat_template": renderer.format == "chat",
        },
        "hyperparameters": dataclasses.asdict(model_args) | {
            k: v for k, v in dataclasses.asdict(training_args).items() if k not in ("output_dir", "resume")},
        "result": {
            "global_step": trainer.state.global_step,
            "world_size": trainer.args.world_size,
            "first_train_loss": losses[0] if losses else None,
            "last_train_loss": losses[-1] if losses else None,
            "last_eval_loss": evals[-1] if evals else None,
        },
        "packages": package_versions(),
    }


def save_adapter(trainer, output_dir: Path, record: dict) -> Path:
    """Save the adapter and its provenance to ``adapter.partial``, then move it into place (rank 0)."""
    final, partial = output_dir / ADAPTER_DIR, output_dir / f"{ADAPTER_DIR}.partial"
    if trainer.is_world_process_zero() and partial.exists():
        shutil.rmtree(partial)
    trainer.save_model(str(partial))  # every rank calls it (DeepSpeed/FSDP gather); only rank 0 writes
    if trainer.is_world_process_zero():
        write_json_atomic(partial / PROVENANCE_FILE, record, sort_keys=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    trainer.accelerator.wait_for_everyone()
    return final


# --------------------------------------------------------------------------- command line


def make_parser(subparsers=None) -> argparse.ArgumentParser:
    """``rolebench-eval finetune``: ``--config recipe.yaml`` plus ``--<key> <value>`` for any recipe key."""
    kwargs = {"description": __doc__, "formatter_class": argparse.RawDescriptionHelpFormatter}
    if subparsers is None:
        parser = argparse.ArgumentParser(prog="rolebench-eval finetune", **kwargs)
    else:
        parser = subparsers.add_parser("finetune", help="RoCIT: LoRA fine-tuning on RoleBench", **kwargs)
    parser.add_argument("--config", help="recipe YAML (finetune/recipes/*.yaml); other flags override its keys")
    for cls in ARG_CLASSES:
        group = parser.add_argument_group(cls.__name__, cls.__doc__)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            extra = {"nargs": "+"} if typing.get_origin(_strip_none(hints[f.name])) is list else {}
            if hints[f.name] is bool:
                extra = {"nargs": "?", "const": "true"}
            group.add_argument(f"--{f.name}", default=argparse.SUPPRESS, metavar=f.name.upper(),
                               help=f"{f.metadata.get('help', '')} (default: {default})", **extra)
    return parser


def _strip_none(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1 else hint


def overrides_from(namespace: argparse.Namespace) -> dict:
    """Recipe overrides from parsed flags: strings stay strings, other values are read as YAML."""
    known = fields_by_name()
    out = {}
    for key, raw in vars(namespace).items():
        if key not in known:
            continue
        hint = _strip_none(known[key][2])
        if hint is str:
            out[key] = raw
        elif typing.get_origin(hint) is list:
            out[key] = raw if typing.get_args(hint)[0] is str else [yaml.safe_load(r) for r in raw]
        else:
            out[key] = yaml.safe_load(raw)
    return coerce_values(out)
