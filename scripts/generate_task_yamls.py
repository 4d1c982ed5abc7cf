"""Write the task YAMLs of tasks/rolebench/ from the catalogue (rolebench_eval/splits.yaml).

    python scripts/generate_task_yamls.py           # after editing the catalogue
    python scripts/generate_task_yamls.py --check   # exit 1 and name the stale files (what the test checks)

The rendering is ``rolebench_eval.tasks.configs.render``; files of the folder it no longer
renders are removed, so a task dropped from the catalogue leaves no YAML behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rolebench_eval.tasks import TASKS_DIR
from rolebench_eval.tasks.configs import render


def stale(folder: Path, files: dict[str, str]) -> list[str]:
    """Names of the files to write or remove so that ``folder`` holds exactly ``files``."""
    on_disk = {p.name for p in folder.iterdir() if p.is_file()}
    changed = [n for n, text in files.items() if n not in on_disk or (folder / n).read_text(encoding="utf-8") != text]
    return sorted(changed + list(on_disk - set(files)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which files are stale (exit 1 if any)")
    args = parser.parse_args(argv)
    folder, files = Path(TASKS_DIR), render()
    names = stale(folder, files)
    if args.check:
        print("\n".join(f"stale: {folder / n}" for n in names) or "up to date")
        return 1 if names else 0
    for name in names:
        if name in files:
            (folder / name).write_text(files[name], encoding="utf-8")
        else:
            (folder / name).unlink()
        print(f"{'wrote' if name in files else 'removed'} {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
