"""TRL's SFTTrainer with small additions: a progress bar that shows the loss, a stop on divergence, and the
test-only kill points.

Imported only when training starts (it imports torch, transformers and trl).
"""

from __future__ import annotations

import math

from transformers import ProgressCallback, TrainerCallback
from trl import SFTTrainer

from rolebench_eval.errors import NothingUsable

from .resume import kill_point


class RoCITTrainer(SFTTrainer):
    """SFTTrainer; ``save_model`` inside a checkpoint save is a kill point (``checkpoint-save:N``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(KillPoints())
        self.add_callback(StopOnDivergence())

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        super().save_model(output_dir, _internal_call=_internal_call)
        if _internal_call and self.is_world_process_zero():
            # the adapter of checkpoint-N is written; its optimizer, RNG and trainer state are not yet
            kill_point("checkpoint-save", self.state.global_step)


class KillPoints(TrainerCallback):
    """``step:N``: after the backward pass of step N, before its optimizer step (mid-step)."""

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            kill_point("step", state.global_step + 1)


class Diverged(NothingUsable):
    """Training produced a non-finite loss, gradient norm or weight: stopped, no adapter written (exit 5)."""


class StopOnDivergence(TrainerCallback):
    """Stop at the first step whose trainable weights, loss or gradient norm are not finite.

    Raising inside the loop ends ``train()`` before the adapter is saved, so a diverged run
    never leaves an adapter of NaNs; checkpoints written before the step are kept.
    """

    def on_step_end(self, args, state, control, model=None, **kwargs):
        import torch

        if model is None:
            return
        for name, param in model.named_parameters():
            if param.requires_grad and not bool(torch.isfinite(param).all()):
                raise Diverged(f"training diverged at step {state.global_step}: trainable weight {name} is not "
                               f"finite (learning rate {args.learning_rate}); no adapter written")

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise Diverged(f"training diverged at step {state.global_step}: {key} is {value} "
                               f"(learning rate {args.learning_rate}); no adapter written")


class LossBar(ProgressCallback):
    """transformers' progress bar (step, rate, ETA) with the latest loss in it, instead of a printed dict per log.

    Every logged value still goes to ``trainer_state.json`` and to the trackers of ``report_to``.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training",
                                     dynamic_ncols=True)
        self.current_step, self.shown = state.global_step, {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and self.training_bar is not None and logs):
            return
        self.shown |= {k: f"{logs[k]:.4g}" for k in ("loss", "eval_loss") if isinstance(logs.get(k), float)}
        self.training_bar.set_postfix(self.shown, refresh=False)


def use_loss_bar(trainer) -> None:
    """Swap the trainer's progress bar for :class:`LossBar` (unless tqdm is disabled)."""
    if not trainer.args.disable_tqdm:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossBar())
