"""Resume at any instant: SIGKILL at named points (test-only hook), then --resume, equals an uninterrupted run.

The killed runs are real ``python -m rolebench_eval.finetune`` processes that SIGKILL themselves
where ``$ROLEBENCH_FINETUNE_KILL_AT`` says (in the middle of a step, after a checkpoint's weights
but before its optimizer and trainer state, after the final adapter's weights but before its
provenance and move); timing could not aim at those instants. Each is resumed with ``--resume``
and must end at exactly ``max_steps`` with the reference run's adapter and a loss per step, once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rolebench_eval.finetune.args import RecipeError
from rolebench_eval.provenance import PROVENANCE_FILE

TINY = Path(__file__).resolve().parent.parent / "finetune" / "recipes" / "tiny_cpu.yaml"
SPLITS = ["general_en", "specific_en", "general_zh", "specific_zh"]
# 6 training samples in batches of 2: 3 steps per epoch, so checkpoints 2, 4 (mid-epoch), 6 and the
# final 8 (mid-epoch) exercise transformers' skipping of an epoch's batches that were already trained.
STEPS, SAVE = 8, 2
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _flags(model: Path, data_dir: Path, out: Path) -> list[str]:
    return ["--config", str(TINY), "--model_name_or_path", str(model), "--output_dir", str(out),
            "--data_dir", str(data_dir), "--splits", *SPLITS, "--references_per_item", "3",
            "--eval_holdout", "1", "--eval_strategy", "steps", "--eval_steps", "4", "--per_device_train_batch_size", "2",
            "--max_steps", str(STEPS), "--save_steps", str(SAVE), "--logging_steps", "1"]


def _kwargs(model: Path, data_dir: Path, out: Path, **kw) -> dict:
    """The same run as :func:`_flags`, for ``train()`` in this process."""
    return {"model_name_or_path": str(model), "output_dir": str(out), "data_dir": str(data_dir), "splits": SPLITS,
            "references_per_item": 3, "eval_holdout": 1, "eval_strategy": "steps", "eval_steps": 4, "per_device_train_batch_size": 2,
            "max_steps": STEPS, "save_steps": SAVE, "logging_steps": 1, **kw}


def _run(flags: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = os.environ | ONE_THREAD | ({"ROLEBENCH_FINETUNE_KILL_AT": kill_at} if kill_at else {})
    return subprocess.run([sys.executable, "-m", "rolebench_eval.finetune", *flags], capture_output=True,
                          text=True, env=env, check=False)


def _adapter(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "adapter" / "adapter_model.safetensors")


def _losses(run: Path) -> list[tuple[int, float]]:
    history = json.loads((run / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


@pytest.fixture(scope="module")
def reference(tiny_llama, fixture_data_dir, tmp_path_factory):
    """The uninterrupted run (a process of its own, like the killed ones)."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = _run(_flags(tiny_llama, fixture_data_dir, run))
    assert done.returncode == 0, done.stderr[-3000:]
    return run


# (kill point, what the folder holds after the kill, the checkpoint --resume must report)
KILLS = [
    ("step:2", "mid-step before the first checkpoint", "starting again from step 0"),
    ("checkpoint-save:2", "during the first checkpoint save", "starting again from step 0"),
    ("step:5", "mid-step, mid-epoch, after checkpoint-4", "resuming from checkpoint-4"),
    ("checkpoint-save:6", "during a later checkpoint save", "resuming from checkpoint-4"),
    ("checkpoint-save:8", "during the final checkpoint save", "resuming from checkpoint-6"),
    ("adapter-save:8", "during the final adapter save", "resuming from checkpoint-8"),
]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at, when, expected_note", KILLS, ids=[k[0] for k in KILLS])
def test_killed_run_resumes_to_the_reference_adapter(reference, tiny_llama, fixture_data_dir, tmp_path, caplog,
                                                    kill_at, when, expected_note):
    import logging

    import torch

    from rolebench_eval.finetune import train

    run = tmp_path / "run"
    killed = _run(_flags(tiny_llama, fixture_data_dir, run), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (run / "adapter").exists(), when

    with pytest.raises(RecipeError, match="already holds an unfinished run.*pass --resume"):
        train(TINY, **_kwargs(tiny_llama, fixture_data_dir, run))  # a fresh start is refused
    with caplog.at_level(logging.INFO, logger="rolebench_eval.finetune"):
        assert train(TINY, **_kwargs(tiny_llama, fixture_data_dir, run, resume=True)) == run / "adapter"
    assert expected_note in caplog.text
    if kill_at.startswith("checkpoint-save"):
        assert f"checkpoint-{kill_at.split(':')[1]} is incomplete (no trainer_state.json" in caplog.text

    got, ref = _adapter(run), _adapter(reference)
    assert sorted(got) == sorted(ref)
    for name in ref:
        assert torch.allclose(got[name], ref[name], rtol=1e-4, atol=1e-6), name
    losses, ref_losses = _losses(run), _losses(reference)
    assert [s for s, _ in losses] == list(range(1, STEPS + 1)) == [s for s, _ in ref_losses]  # each step once
    assert [v for _, v in losses] == pytest.approx([v for _, v in ref_losses], rel=1e-4)
    record = json.loads((run / "adapter" / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert record["result"]["global_step"] == STEPS
    assert not (run / "adapter.partial").exists()


@pytest.mark.slow
def test_resume_after_the_end_changes_nothing(reference, tiny_llama, fixture_data_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    resumed = _run([*_flags(tiny_llama, fixture_data_dir, run), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "is finished (adapter/ at step 8); nothing to do" in resumed.stderr
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    longer = _run([*_flags(tiny_llama, fixture_data_dir, run), "--resume", "--max_steps", "10",
                   "--lora_r", "4", "--learning_rate", "0.01"])
    assert longer.returncode == 2
    message = longer.stderr.strip().splitlines()[-1]
    assert message.startswith("rolebench-eval finetune: error: ") and "rolebench_run.json" in message
    assert "lora_r: 8 -> 4" in message and "learning_rate: 0.001 -> 0.01" in message and "max_steps: 8 -> 10" in message


# --------------------------------------------------------------------------- the plan, on fabricated folders


def _checkpoint(run: Path, step: int, *, state: str | None = "ok", files=("adapter_model.safetensors",
                "optimizer.pt", "scheduler.pt", "rng_state.pth")) -> Path:
    path = run / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_bytes(b"x")
    if state == "ok":
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 8}))
    elif state is not None:
        (path / "trainer_state.json").write_text(state)
    return path


SETTINGS = {"lora_r": 8, "learning_rate": 1e-3, "base_model": {"name_or_path": "m"}, "output_dir": "a"}


def _started(run: Path, settings=SETTINGS) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "rolebench_run.json").write_text(json.dumps({"settings": settings}))
    return run


def test_incomplete_checkpoints_are_named_with_their_problem(tmp_path):
    from rolebench_eval.finetune.resume import scan

    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 6, state=None)  # killed before trainer_state.json
    _checkpoint(tmp_path, 8, state='{"global_st')  # killed while writing it
    _checkpoint(tmp_path, 10, files=("adapter_model.safetensors",))  # half deleted by the rotation
    _checkpoint(tmp_path, 12, state=json.dumps({"global_step": 11}))
    (tmp_path / "checkpoint-x").mkdir()
    complete, broken = scan(tmp_path)
    assert [p.name for p in complete] == ["checkpoint-2", "checkpoint-4"]
    assert {p.name: why for p, why in broken.items()} == {
        "checkpoint-6": "no trainer_state.json (the process stopped while saving it)",
        "checkpoint-8": "unreadable trainer_state.json (JSONDecodeError: the process stopped while writing it)",
        "checkpoint-10": "missing optimizer.pt, scheduler.pt, rng_state.pth",
        "checkpoint-12": "trainer_state.json is at step 11"}


def test_the_plan_for_each_kind_of_folder(tmp_path):
    from rolebench_eval.finetune.resume import plan_run

    assert plan_run(tmp_path / "new", False, SETTINGS, 8).checkpoint is None
    assert plan_run(tmp_path / "new", True, SETTINGS, 8).notes == [
        f"--resume: nothing to resume in {tmp_path / 'new'}; starting the run"]
    run = _started(tmp_path / "run")
    _checkpoint(run, 2)
    _checkpoint(run, 4, state=None)
    (run / "adapter.partial").mkdir()
    with pytest.raises(RecipeError, match=r"run: field 'output_dir': already holds an unfinished run \(latest "
                                           r"complete checkpoint: checkpoint-2\); pass --resume"):
        plan_run(run, False, SETTINGS, 8)
    plan = plan_run(run, True, SETTINGS, 8)
    assert plan.checkpoint == run / "checkpoint-2" and not plan.finished
    assert sorted(p.name for p in plan.remove) == ["adapter.partial", "checkpoint-4"]
    assert plan.notes == ["checkpoint-4 is incomplete (no trainer_state.json (the process stopped while saving "
                          "it)); removed, it will be written again", "resuming from checkpoint-2"]
    with pytest.raises(RecipeError, match=r"resume_from_checkpoint': cannot resume from it: no trainer_state"):
        plan_run(run, True, SETTINGS, 8, resume_from=str(run / "checkpoint-4"))
    assert plan_run(run, False, SETTINGS, 8, resume_from=str(run / "checkpoint-2")).checkpoint.name == "checkpoint-2"


def test_a_resume_that_changes_shapes_lists_every_difference(tmp_path, caplog):
    from rolebench_eval.finetune.resume import plan_run

    run = _started(tmp_path / "run")
    _checkpoint(run, 2)
    changed = SETTINGS | {"lora_r": 4, "learning_rate": 2e-3, "output_dir": "b"}
    with pytest.raises(RecipeError) as err:
        plan_run(run, True, changed, 8)
    assert str(err.value) == (f"{run / 'rolebench_run.json'}: --resume with settings that change the adapter's shape "
                              "or prompts: learning_rate: 0.001 -> 0.002; lora_r: 8 -> 4; resume with the recorded "
                              "values or choose a new output_dir")
    with caplog.at_level("WARNING"):
        assert plan_run(run, True, SETTINGS | {"learning_rate": 2e-3}, 8).checkpoint.name == "checkpoint-2"
    assert "changed settings (the checkpoint's optimizer and scheduler state are kept): learning_rate" in caplog.text
    with pytest.raises(RecipeError, match="base_model: {'name_or_path': 'm'} -> {'name_or_path': 'other'}"):
        plan_run(run, True, SETTINGS | {"base_model": {"name_or_path": "other"}}, 8)


def test_folders_that_cannot_be_resumed_say_why(tmp_path):
    from rolebench_eval.finetune.resume import plan_run

    foreign = tmp_path / "foreign"
    _checkpoint(foreign, 2)
    with pytest.raises(RecipeError, match=r"holds an unfinished run .* but no rolebench_run.json, so its settings "
                                           r"are unknown .*choose a new output_dir"):
        plan_run(foreign, True, SETTINGS, 8)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecipeError, match="is a file, not a run folder"):
        plan_run(tmp_path / "file", True, SETTINGS, 8)
    broken = _started(tmp_path / "broken")
    (broken / "rolebench_run.json").write_text("{")
    with pytest.raises(RecipeError, match=r"rolebench_run.json: unreadable"):
        plan_run(broken, True, SETTINGS, 8)


def test_a_finished_run_is_left_alone(tmp_path):
    from rolebench_eval.finetune.resume import plan_run, reached_the_end

    run = _started(tmp_path / "run")
    final = _checkpoint(run, 8)
    (run / "adapter").mkdir()
    (run / "adapter" / PROVENANCE_FILE).write_text(json.dumps({"result": {"global_step": 8}}))
    plan = plan_run(run, True, SETTINGS, 8)
    assert plan.finished and plan.remove == [] and plan.notes == [f"{run} is finished (adapter/ at step 8); nothing to do"]
    assert not plan_run(run, True, SETTINGS, 10).finished  # a longer run continues from checkpoint-8
    assert reached_the_end(final, 8) and reached_the_end(final, -1) and not reached_the_end(final, 10)


@pytest.mark.slow  # the finetune process imports TRL to parse its flags (about 7 s)
def test_a_second_run_in_a_folder_being_trained_is_refused_before_loading(tiny_llama, fixture_data_dir, tmp_path):
    """Two runs on one output_dir would both see it empty and both train into it; the second is refused (exit 2)."""
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
                               "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(60)",
                               str(tmp_path / ".run.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = _run(_flags(tiny_llama, fixture_data_dir, run))
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr[-3000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "another command is writing the training run folder now" in lines[0], lines
    assert str(run) in lines[0] and "Traceback" not in second.stderr
    assert not (run / "rolebench_run.json").exists()  # nothing of the run was written
