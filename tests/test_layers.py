"""The two floors (see the README's Layout): read from the source's imports, not from memory.

Ground modules (data, source, prompts, metrics, errors, fileio, outputs, provenance, the
``llm`` package, ...) import no feature folder; feature folders (tasks, judges,
leaderboard, finetune, generate) import the ground and never each other. Only the app
layer (``cli`` with its ``cli_notes``, ``demo``, ``reproduce``, ``board`` with its ``board_steps`` and the ``evaluate`` facade in ``__init__``) may
import everything. Function-level imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# source folder -> the package it is installed as (setup.cfg's package_dir)
FEATURES = {
    "tasks": "rolebench_eval.tasks",
    "judges": "rolebench_eval.judges",
    "leaderboard": "rolebench_eval.leaderboard",
    "finetune": "rolebench_eval.finetune",
    "conversations": "rolebench_eval.conversations",
    "rolebench_eval/generate": "rolebench_eval.generate",
}
APP = {"cli", "demo", "reproduce", "board", "board_steps", "cli_notes", "__init__", "__main__"}


def _modules(folder: Path, package: str):
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        is_pkg = path.name == "__init__.py"
        yield path, ".".join([package, *parts]), is_pkg


def _imports(path: Path, module: str, is_pkg: bool) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}
    return found


def _feature_of(name: str) -> str | None:
    for package in FEATURES.values():
        if name == package or name.startswith(package + "."):
            return package
    return None


def _ground_modules():
    for path, module, is_pkg in _modules(REPO / "rolebench_eval", "rolebench_eval"):
        if _feature_of(module) is None and module.split(".")[1:2] != [] and module.split(".")[-1] not in APP:
            yield path, module, is_pkg


def test_the_ground_floor_imports_no_feature_folder():
    offenders = []
    for path, module, is_pkg in _ground_modules():
        bad = sorted(n for n in _imports(path, module, is_pkg) if _feature_of(n))
        offenders += [f"{path.relative_to(REPO)} imports {name}" for name in bad]
    assert not offenders, "\n".join(offenders)


def test_feature_folders_import_only_the_ground():
    offenders = []
    for folder, package in FEATURES.items():
        for path, module, is_pkg in _modules(REPO / folder, package):
            for name in sorted(_imports(path, module, is_pkg)):
                other = _feature_of(name)
                if other is not None and other != package:
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_only_entry_points_import_the_app_layer():
    """The app layer (cli, demo, reproduce) imports the features, so nothing below may import it back."""
    app = {f"rolebench_eval.{name}" for name in APP - {"__init__", "__main__"}}
    offenders = []
    folders = [(REPO / "rolebench_eval", "rolebench_eval"), *((REPO / f, p) for f, p in FEATURES.items())]
    for folder, package in folders:
        for path, module, is_pkg in _modules(folder, package):
            if module in app or module == "rolebench_eval" or path.name == "__main__.py":
                continue
            bad = sorted(n for n in _imports(path, module, is_pkg) if n in app)
            offenders += [f"{path.relative_to(REPO)} imports {name}" for name in bad]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_what_it_must_see(tmp_path):
    """The checker itself: planted upward imports, relative and inside a function, are found."""
    planted = tmp_path / "planted.py"
    planted.write_text("from .tasks.runner import evaluate\n"
                       "def f():\n    from .llm import client\n    import rolebench_eval.judges.run\n")
    names = _imports(planted, "rolebench_eval.planted", False)
    assert {_feature_of(n) for n in names} == {"rolebench_eval.tasks", "rolebench_eval.judges", None}
    inside = _imports(planted, "rolebench_eval.llm.planted", False)
    assert "rolebench_eval.llm.tasks.runner" in inside  # resolved against its own package
    assert {m for _, m, _ in _ground_modules()} >= {
        "rolebench_eval.data", "rolebench_eval.metrics", "rolebench_eval.errors", "rolebench_eval.fileio",
        "rolebench_eval.provenance", "rolebench_eval.llm.client"}
    assert "rolebench_eval.cli" not in {m for _, m, _ in _ground_modules()}
