"""RoleBench tasks for lm-evaluation-harness (installed as ``rolebench_eval.tasks``)."""

from pathlib import Path

#: The folder of task YAMLs, for ``lm_eval --include_path`` or ``TaskManager(include_path=...)``.
TASKS_DIR = str(Path(__file__).resolve().parent / "rolebench")
