"""Resuming a run at any instant: which checkpoint, what is in the way, and what changed.

A run folder holds ``rolebench_run.json`` (written when training starts: the settings and the
base model), the trainer's ``checkpoint-N/`` folders and, at the end, ``adapter/``. A kill can
leave a checkpoint half-written (the trainer writes ``trainer_state.json`` last, but not
atomically) or an ``adapter.partial/``; both are recognised here, reported, and removed before
training continues. ``--resume`` on a folder with nothing to resume starts the run, so one
command is safe to repeat on every (pre-emptible) start.

Everything here reads files only (no torch), so a folder that cannot be resumed is refused in
a fraction of a second, with what to do.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.errors import InputError
from rolebench_eval.outputs.adapter import RUN_FILE, RunRecord, read_run_record

from .args import RecipeError

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
# Settings whose change makes a checkpoint's tensors (or their meaning) not fit the new run.
SHAPE_KEYS = ("base_model", "lora_r", "lora_target_modules", "lora_target_parameters", "lora_modules_to_save",
              "use_dora", "lora_task_type", "load_in_4bit", "load_in_8bit", "prompt_format")
# Settings that differ between two starts of the same run without meaning anything.
VOLATILE_KEYS = ("output_dir", "logging_dir", "run_name", "resume", "resume_from_checkpoint", "disable_tqdm",
                 "hub_token", "report_to", "data_dir")
# Test-only: "POINT:STEP" makes the process SIGKILL itself at a named point (see kill_point).
KILL_ENV = "ROLEBENCH_FINETUNE_KILL_AT"
KILL_POINTS = ("step", "checkpoint-save", "adapter-save")


@dataclass
class Plan:
    """What to do with a run folder: start, continue from ``checkpoint``, or nothing (finished)."""

    checkpoint: Path | None = None
    finished: bool = False
    remove: list[Path] = field(default_factory=list)  # incomplete leftovers, removed by rank 0
    notes: list[str] = field(default_factory=list)


def checkpoint_step(path: Path) -> int | None:
    """N of a ``checkpoint-N`` folder name, else None."""
    prefix, _, number = path.name.partition("-")
    return int(number) if prefix == "checkpoint" and number.isdigit() else None


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (None: complete).

    ``trainer_state.json`` is written last by the trainer; the weights, optimizer, scheduler and
    RNG state must be there too (a kill during the rotation of old checkpoints deletes them in
    any order). A DeepSpeed checkpoint keeps its optimizer in ``global_stepN/``.
    """
    step = checkpoint_step(path)
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json (the process stopped while saving it)"
    except (OSError, ValueError) as err:
        return f"unreadable trainer_state.json ({err.__class__.__name__}: the process stopped while writing it)"
    if not isinstance(state, dict) or state.get("global_step") != step:
        return f"trainer_state.json is at step {state.get('global_step') if isinstance(state, dict) else '?'}"
    needed = ["adapter_model.safetensors"]
    if not (path / f"global_step{step}").is_dir():
        needed += ["optimizer.pt", "scheduler.pt"]
    missing = [name for name in needed if not (path / name).is_file()]
    if not any(path.glob("rng_state*.pth")) and not (path / f"global_step{step}").is_dir():
        missing.append("rng_state.pth")
    return f"missing {', '.join(missing)}" if missing else None


def scan(output_dir: Path) -> tuple[list[Path], dict[Path, str]]:
    """Complete checkpoints in step order, and the incomplete ones with their problem."""
    complete, broken = [], {}
    if not output_dir.is_dir():
        return [], {}
    for path in sorted((p for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None),
                       key=checkpoint_step):
        problem = checkpoint_problem(path)
        if problem:
            broken[path] = problem
        else:
            complete.append(path)
    return complete, broken


def plan_run(output_dir: Path, resume: bool, settings: dict, max_steps: int | None,
             resume_from: str | None = None) -> Plan:
    """Decide how to start in ``output_dir``; refuse folders that hold another or an unknown run."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RecipeError(output_dir, None, "output_dir", "is a file, not a run folder; choose another output_dir")
    complete, broken = scan(output_dir)
    recorded = read_run_file(output_dir)
    adapter = output_dir / ADAPTER_DIR
    started = recorded is not None or complete or broken or adapter.exists()
    if not resume and resume_from is None:
        if started:
            raise RecipeError(output_dir, None, "output_dir", f"already holds {describe(output_dir, complete, broken)}; "
                              "pass --resume to continue it, or choose a new output_dir")
        return Plan()
    if not started:
        return Plan(notes=[f"--resume: nothing to resume in {output_dir}; starting the run"])
    if recorded is None:
        raise RecipeError(output_dir, None, "output_dir", f"holds {describe(output_dir, complete, broken)} but no "
                          f"{RUN_FILE}, so its settings are unknown (a run of another tool or of an older version); "
                          "continue it with the tool that started it, or choose a new output_dir")
    check_same_run(output_dir, recorded.settings, settings)
    plan = Plan(remove=list(broken) + [p for p in [output_dir / f"{ADAPTER_DIR}.partial"] if p.exists()])
    plan.notes += [f"{path.name} is incomplete ({problem}); removed, it will be written again"
                   for path, problem in broken.items()]
    if resume_from is not None:
        plan.checkpoint = explicit_checkpoint(Path(resume_from), broken)
    elif complete:
        plan.checkpoint = complete[-1]
    if finished(adapter, max_steps):
        plan.finished, plan.remove = True, []
        plan.notes = [f"{output_dir} is finished ({ADAPTER_DIR}/ at step {max_steps}); nothing to do"]
    elif plan.checkpoint is None:
        plan.notes.append(f"no complete checkpoint in {output_dir}; starting again from step 0")
    else:
        plan.notes.append(f"resuming from {plan.checkpoint.name}")
    return plan


def explicit_checkpoint(path: Path, broken: dict[Path, str]) -> Path:
    """A ``resume_from_checkpoint`` folder, checked like the others."""
    problem = broken.get(path) or (None if path.is_dir() else "not a folder") or checkpoint_problem(path)
    if problem:
        raise RecipeError(path, None, "resume_from_checkpoint", f"cannot resume from it: {problem}; pass --resume "
                          "to take the latest complete checkpoint")
    return path


def reached_the_end(checkpoint: Path, max_steps: int | None) -> bool:
    """The checkpoint is the run's last step (``max_steps``, else the step count it recorded).

    transformers resumes such a checkpoint into one extra step when ``max_steps`` is not a
    multiple of the steps per epoch (it skips the epoch's done batches and trains the next one
    before it checks the limit), so the caller loads it instead of training from it.
    """
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    limit = max_steps if max_steps is not None and max_steps > 0 else state.get("max_steps")
    return limit is not None and state["global_step"] >= limit


def finished(adapter: Path, max_steps: int | None) -> bool:
    """The adapter is complete (moved into place with its provenance) and at ``max_steps``."""
    from rolebench_eval.provenance import read_provenance

    try:
        record = read_provenance(adapter)
    except InputError:
        return False
    return max_steps is not None and max_steps > 0 and record is not None and record.result.global_step == max_steps


def describe(output_dir: Path, complete: list[Path], broken: dict) -> str:
    """What a run folder holds, in words."""
    if (output_dir / ADAPTER_DIR).exists():
        return f"a finished run ({ADAPTER_DIR}/)"
    if complete:
        return f"an unfinished run (latest complete checkpoint: {complete[-1].name})"
    return "an unfinished run (no complete checkpoint yet" + (f", {len(broken)} incomplete)" if broken else ")")


def check_same_run(output_dir: Path, recorded: dict, current: dict) -> None:
    """Refuse a resume whose settings change tensor shapes; log the other differences."""
    diffs = differences(recorded, current)
    shape = [d for d in diffs if d[0] in SHAPE_KEYS]
    lines = [f"{key}: {old!r} -> {new!r}" for key, old, new in diffs]
    if shape:
        raise RecipeError(output_dir / RUN_FILE, None, None, "--resume with settings that change the adapter's "
                          f"shape or prompts: {'; '.join(lines)}; resume with the recorded values or choose a new "
                          "output_dir")
    if diffs:
        log.warning("resuming %s with changed settings (the checkpoint's optimizer and scheduler state are kept): %s",
                    output_dir, "; ".join(lines))


def differences(recorded: dict, current: dict) -> list[tuple[str, object, object]]:
    """(key, recorded value, current value) for every setting that differs."""
    keys = sorted((set(recorded) | set(current)) - set(VOLATILE_KEYS))
    return [(k, recorded.get(k), current.get(k)) for k in keys if recorded.get(k) != current.get(k)]


def read_run_file(output_dir: Path) -> RunRecord | None:
    path = output_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        return read_run_record(path)
    except InputError as err:
        raise RecipeError(path, err.line, err.field, f"unreadable ({err.problem}); delete it only if you know the "
                          "run's settings, or choose a new output_dir") from None


def prepare(output_dir: Path, plan: Plan, record: RunRecord) -> None:
    """Rank 0: remove the incomplete leftovers and write the run file of a new run."""
    for path in plan.remove:
        shutil.rmtree(path, ignore_errors=True)
    if read_run_file(output_dir) is None:
        from rolebench_eval.outputs import codec

        output_dir.mkdir(parents=True, exist_ok=True)
        codec.write(output_dir / RUN_FILE, record, sort_keys=True)


def kill_point(point: str, step: int) -> None:
    """Test-only: SIGKILL this process at ``point`` of ``step`` when ``$ROLEBENCH_FINETUNE_KILL_AT`` says so.

    Lets the tests stop a run deterministically in the middle of a step, of a checkpoint save or
    of the final adapter save, where no timing could aim.
    """
    if os.environ.get(KILL_ENV) == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
