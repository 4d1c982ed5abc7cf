"""RoCIT: role-conditioned instruction tuning with LoRA on RoleBench, ready for lm-eval's ``peft=``.

Train (one process, or any ``accelerate launch`` setup: multi-GPU, multi-node, DeepSpeed, FSDP)::

    rolebench-eval finetune --config finetune/recipes/rolellama_7b_lora.yaml --output_dir runs/rolellama
    accelerate launch --num_processes 8 -m rolebench_eval.finetune \\
        --config finetune/recipes/rolellama_7b_lora.yaml --output_dir runs/rolellama --resume

``--resume`` continues from the latest complete checkpoint (a new run when there is none), so the
same command is safe to repeat after any kill. Evaluate the adapter with the prompts it was
trained on (add ``--apply_chat_template`` when the recipe trained with a chat template)::

    rolebench-eval run --model hf --model_args pretrained=huggyllama/llama-7b,peft=runs/rolellama/adapter \\
        --tasks rolebench_specific_en,rolebench_general_en

Every TRL ``SFTConfig`` and ``ModelConfig`` flag works under its TRL name; samples arrive tokenized
(prompts rendered as the tasks render them, loss on the answer only), so SFTConfig's dataset-text
options have nothing to act on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from .args import RecipeError, RoleBenchArguments
from .data import Mix, build_mix
from .resume import ADAPTER_DIR, Plan, kill_point, plan_run, prepare, reached_the_end

from rolebench_eval.fileio import ensure_writable, folder_lock
from rolebench_eval.provenance import base_model_record, package_versions
from rolebench_eval.outputs import codec
from rolebench_eval.outputs.adapter import FORMAT_VERSION, PROVENANCE_FILE, Provenance, RunRecord

log = logging.getLogger(__name__)


def main(script_args: RoleBenchArguments, training_args, model_args) -> Path:
    """Train (or finish) a LoRA adapter and return its folder (``<output_dir>/adapter``)."""
    output_dir = Path(training_args.output_dir)
    check_base_model(model_args.model_name_or_path)
    settings = run_settings(script_args, training_args, model_args)
    replan = functools.partial(plan_run, output_dir, script_args.resume, settings, training_args.max_steps,
                               training_args.resume_from_checkpoint)
    if (plan := replan()).finished:  # only read: no lock, so a finished run on a read-only disk says so
        _noted(plan)
        return output_dir / ADAPTER_DIR
    ensure_writable(output_dir, "the training run folder")  # before any model is loaded
    with run_lock(output_dir):
        return _train(_noted(replan()), output_dir, settings, script_args, training_args, model_args)


def run_lock(output_dir: Path):
    """One run per folder: rank 0 holds the folder's lock while it trains; a second run there is refused."""
    if not is_main_process():
        return contextlib.nullcontext()
    return folder_lock(output_dir, "the training run folder", busy="wait for it to finish (then --resume "
                       "continues it), or choose another output_dir")


def _noted(plan: Plan) -> Plan:
    if is_main_process():
        for note in plan.notes:
            log.info("%s", note)
    return plan


def _train(plan: Plan, output_dir: Path, settings: dict, script_args, training_args, model_args) -> Path:
    """Train as ``plan`` says (planned again under the folder's lock: another run may have started there)."""
    if plan.finished:
        return output_dir / ADAPTER_DIR
    mix = build_mix(script_args, training_args.seed)
    if is_main_process():
        log.info("training mix: %s", json.dumps({k: v for k, v in mix.summary.items() if k != "sources"}))
    trainer, renderer, stats = build_trainer(script_args, training_args, model_args, mix)
    if trainer.is_world_process_zero():
        prepare(output_dir, plan, RunRecord(format_version=FORMAT_VERSION, created=_now(), settings=settings))
    trainer.accelerator.wait_for_everyone()
    if plan.checkpoint is not None and reached_the_end(plan.checkpoint, training_args.max_steps):
        load_final_checkpoint(trainer, plan.checkpoint)
    else:
        train_from(trainer, plan)
    trainer.save_state()
    record = provenance_record(settings, mix, renderer, stats, trainer)
    adapter = save_adapter(trainer, output_dir, record)
    if hasattr(trainer, "end"):  # transformers >= 5.18: closes the trackers, leaves the process group
        trainer.end()
    return adapter


def build_trainer(script_args, training_args, model_args, mix: Mix):
    """The tokenizer, the rendered samples and TRL's SFTTrainer (the base model is loaded here)."""
    import transformers
    from datasets import Dataset
    from trl import get_peft_config, get_quantization_config

    from .render import Renderer
    from .trainer import RoCITTrainer, use_loss_bar

    transformers.set_seed(training_args.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code)
    renderer = Renderer(tokenizer, script_args.prompt_format)
    train_rows, stats = renderer.encode_all(mix.train, training_args.max_length)
    eval_rows, _ = renderer.encode_all(mix.eval, training_args.max_length)
    if not train_rows:
        raise RecipeError(None, None, "max_length", f"empty training set: all {len(mix.train)} samples have prompts "
                          f"longer than max_length={training_args.max_length}")
    training_args.model_init_kwargs = {  # as TRL's own sft script builds them
        "revision": model_args.model_revision, "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation, "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {})}
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        training_args.model_init_kwargs["quantization_config"] = quantization
    trainer = RoCITTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows and training_args.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    check_world_size(trainer.args.world_size)
    use_loss_bar(trainer)
    return trainer, renderer, stats


def train_from(trainer, plan: Plan) -> None:
    """Train, from the planned checkpoint; a checkpoint that does not fit the model says so in one line."""
    try:
        trainer.train(resume_from_checkpoint=str(plan.checkpoint) if plan.checkpoint else None)
    except RuntimeError as err:
        if plan.checkpoint is None or "size mismatch" not in str(err):
            raise
        raise RecipeError(plan.checkpoint, None, None, "its tensors do not fit this model (another base model or "
                          "LoRA shape); resume with the run's own settings or choose a new output_dir") from None


def load_final_checkpoint(trainer, checkpoint: Path) -> None:
    """The run was killed after its last step: take that step's adapter and state, train nothing."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    set_peft_model_state_dict(trainer.model, load_file(checkpoint / "adapter_model.safetensors"))


def is_main_process() -> bool:
    """Before the trainer exists, the launcher's rank is all we have."""
    return int(os.environ.get("RANK", "0")) == 0


def launched_world_size() -> int:
    """How many processes the launcher (accelerate launch, torchrun) started."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_world_size(trainer_world_size: int) -> None:
    """Several launched processes that did not join one process group would train separate copies."""
    if trainer_world_size != launched_world_size():
        raise RuntimeError(f"{launched_world_size()} processes were launched but the trainer sees a world of "
                           f"{trainer_world_size}; they would each train and write their own adapter")


def looks_like_local_path(name: str) -> bool:
    """A model reference meant as a folder (absolute, ./, ../, ~, a/b/c or existing) rather than a Hub id."""
    return (name.startswith(("/", "./", "../", "~")) or os.path.isabs(name) or name.count("/") > 1
            or Path(name).exists())


def check_base_model(name: str) -> None:
    """A local base model must be a folder with config.json; offline, a Hub id must be cached."""
    if looks_like_local_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise RecipeError(None, None, "model_name_or_path", f"base model folder not found: {name}")
        if not (path / "config.json").is_file():
            raise RecipeError(None, None, "model_name_or_path", f"base model folder {name} has no config.json")
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise RecipeError(None, None, "model_name_or_path", f"base model {name!r} is not a local folder and "
                              "HF_HUB_OFFLINE is set but it is not in the Hugging Face cache")


def run_settings(script_args, training_args, model_args) -> dict:
    """Every setting of the run, JSON-ready: the run file and the adapter's provenance record it."""
    values = {**training_args.to_dict(), **dataclasses.asdict(model_args), **dataclasses.asdict(script_args)}
    values["base_model"] = msgspec.to_builtins(base_model_record(model_args.model_name_or_path))
    values.pop("model_init_kwargs", None)  # derived from the ModelConfig keys above
    return json.loads(json.dumps(values, default=str))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (Python 3.10)


def provenance_record(settings: dict, mix: Mix, renderer, stats: dict, trainer) -> Provenance:
    """Everything needed to know what the adapter is and how evaluation must prompt it."""
    from rolebench_eval.prompts import PLAIN_TEMPLATE, PROMPT_VERSION
    from rolebench_eval.provenance import chat_template_sha256

    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return msgspec.convert({
        "format_version": FORMAT_VERSION,
        "created": _now(),
        "base_model": settings["base_model"],
        "data": mix.summary | stats,
        "prompt": {
            "format": renderer.format,
            "prompt_version": PROMPT_VERSION,
            "chat_template_sha256": chat_template_sha256(renderer.tokenizer) if renderer.format == "chat" else None,
            "role_prompt_placement": renderer.placement,
            "plain_template": PLAIN_TEMPLATE if renderer.format == "plain" else None,
            "evaluate_with_apply_chat_template": renderer.format == "chat",
        },
        "hyperparameters": {k: v for k, v in settings.items() if k not in ("output_dir", "resume", "base_model")},
        "result": {
            "global_step": trainer.state.global_step,
            "world_size": trainer.args.world_size,
            "first_train_loss": losses[0] if losses else None,
            "last_train_loss": losses[-1] if losses else None,
            "last_eval_loss": evals[-1] if evals else None,
        },
        "packages": package_versions(),
    }, Provenance)


def save_adapter(trainer, output_dir: Path, record: Provenance) -> Path:
    """Save the adapter and its provenance to ``adapter.partial``, then move it into place (rank 0)."""
    final, partial = output_dir / ADAPTER_DIR, output_dir / f"{ADAPTER_DIR}.partial"
    if trainer.is_world_process_zero() and partial.exists():
        shutil.rmtree(partial)
    trainer.save_model(str(partial))  # every rank calls it (DeepSpeed/FSDP gather); only rank 0 writes
    if trainer.is_world_process_zero():
        kill_point("adapter-save", trainer.state.global_step)
        codec.write(partial / PROVENANCE_FILE, record, sort_keys=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    trainer.accelerator.wait_for_everyone()
    return final
