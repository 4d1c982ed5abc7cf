"""Write the task YAMLs of tasks/rolebench/ from the catalogue (rolebench_eval/splits.yaml).

    python scripts/generate_task_yamls.py    # after editing the catalogue; commit what it writes

The rendering is ``rolebench_eval.tasks.configs.render``; files of the folder it no longer
renders are removed, so a task dropped from the catalogue leaves no YAML behind.
tests/test_catalogue.py fails while the folder differs from it.
"""

from __future__ import annotations

from pathlib import Path

from rolebench_eval.tasks import TASKS_DIR
from rolebench_eval.tasks.configs import render


def main() -> None:
    folder, files = Path(TASKS_DIR), render()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in files:
            path.unlink()
            print(f"removed {path}")
    for name, text in files.items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
