"""Packaging: declared dependencies match the imports; the sdist and wheel build, check and install; the
package works from a clone's root after the README's install, editable or not. Nothing is downloaded:
fresh venvs see this environment's packages (the dependencies) through a ``.pth`` line and get
rolebench-eval itself from a local build with ``--no-deps --no-build-isolation --no-index``.
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = ("rolebench_eval", "tasks", "judges", "leaderboard", "finetune", "conversations")  # what the wheel ships
SUPPORT = ("tests", "benchmarks", "scripts")  # what the `dev` extra serves
NOT_FEATURES = {"dev", "all"}  # extras that gather others and the developers' tools


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    """setup.cfg's install_requires and each extra -> the distributions it names (rolebench-eval itself left out)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    sections = {"install_requires": cfg["options"]["install_requires"], **cfg["options.extras_require"]}
    out = {}
    for key, text in sections.items():
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        out[key] = {_norm(re.match(r"[A-Za-z0-9._-]+", line).group()) for line in lines} - {"rolebench-eval"}
    return out


def _imported(folders) -> dict[str, str]:
    """Top-level names of the third-party modules the folders import (function-level too) -> a file importing it."""
    found = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    local = {p.stem for folder in SUPPORT for p in (REPO / folder).rglob("*.py")}
    return {k: v for k, v in found.items() if k not in sys.stdlib_module_names and k not in {*PACKAGE, *local}}


def _distributions(modules: dict[str, str]) -> dict[str, str]:
    """Distribution (normalized) -> a file importing it; a module no installed distribution provides fails."""
    owners = metadata.packages_distributions()
    unknown = sorted(m for m in modules if m not in owners)
    assert not unknown, f"imported, but no installed distribution provides them: {unknown}"
    found = {_norm(dist): modules[m] for m in modules for dist in owners[m]}
    found.pop("rolebench-eval", None)  # it ships lm_eval/tasks/rolebench, so it is one of lm_eval's owners
    return found


def test_declared_dependencies_are_exactly_what_the_package_imports():
    declared = _declared()
    features = set().union(*(names for key, names in declared.items() if key not in NOT_FEATURES))
    imported = _distributions(_imported(PACKAGE))
    undeclared = {d: f for d, f in imported.items() if d not in features}
    assert not undeclared, f"imported by the package but declared by no extra (dist: a file): {undeclared}"
    unused = features - set(imported)
    assert not unused, f"declared in install_requires or an extra, but never imported: {sorted(unused)}"
    support = _distributions(_imported(SUPPORT))
    missing = {d: f for d, f in support.items() if d not in set().union(*declared.values())}
    assert not missing, f"imported by tests, benchmarks or scripts but not declared (add to dev): {missing}"


def test_the_extra_of_each_optional_package_declares_it():
    from rolebench_eval.cli_notes import EXTRAS

    declared = _declared()
    owners = metadata.packages_distributions()
    for module, extra in EXTRAS.items():
        assert {_norm(d) for d in owners[module]} & declared[extra], (module, extra)


# --- builds and fresh installs (slow) -------------------------------------------------------------


def _checkout_copy(dest: Path) -> Path:
    """What a clone of this repository holds (tracked and new files, no venv or build leftovers)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory) -> Path:
    """A folder of links to this environment's packages, rolebench-eval's own install left out.

    Named site-packages: dill (datasets' hashing) pickles classes of modules outside such a folder by name.
    """
    deps = tmp_path_factory.mktemp("deps") / "site-packages"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("rolebench_eval", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    return deps


def _fresh_venv(path: Path, dependencies: Path) -> Path:
    """A venv without rolebench-eval that imports the dependencies from ``dependencies``; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(f"{dependencies}\n", encoding="utf-8")
    return python


def _pip_install(python: Path, *target: str) -> None:
    proc = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           *target], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _env() -> dict[str, str]:
    """The user's environment: no PYTHONPATH, and Python's default of putting the start folder on sys.path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}


def _python(python: Path, code: str, cwd: Path) -> str:
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_sdist_and_wheel_build_pass_twine_and_the_sdist_installs(tmp_path, dependencies):
    src = _checkout_copy(tmp_path / "clone")
    dist = tmp_path / "dist"
    # As the release workflow: the sdist, then the wheel built from it.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True)
    sdist, wheel = next(dist.glob("rolebench_eval-*.tar.gz")), next(dist.glob("rolebench_eval-*.whl"))
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count("PASSED") == 2, check.stdout + check.stderr

    names = set(zipfile.ZipFile(wheel).namelist())
    for task in ("rolebench_specific_en.yaml", "_rolebench.yaml", "_template_yaml"):
        assert f"rolebench_eval/tasks/rolebench/{task}" in names
        assert f"lm_eval/tasks/rolebench/{task}" in names
    assert "lm_eval/__init__.py" not in names and "lm_eval/tasks/__init__.py" not in names
    assert {"rolebench_eval/splits.yaml", "rolebench_eval/paper.yaml", "rolebench_eval/tasks/task.py",
            "rolebench_eval/breaks.yaml", "rolebench_eval/tasks/probes.yaml",
            "lm_eval/tasks/rolebench/rolebench_mt_probe_zh.yaml"} <= names

    python = _fresh_venv(tmp_path / "venv", dependencies)
    _pip_install(python, str(sdist))
    code = ("import json, rolebench_eval, rolebench_eval.judges.cli, rolebench_eval.leaderboard.cli, "
            "rolebench_eval.finetune.cli, rolebench_eval.generate.cli, rolebench_eval.conversations.cli\n"
            "from rolebench_eval.tasks.runner import task_manager\n"
            "print(json.dumps([rolebench_eval.__file__, sorted(task_manager().all_tasks)]))")
    where, tasks = json.loads(_python(python, code, cwd=tmp_path))
    assert Path(where).is_relative_to(tmp_path / "venv")
    from rolebench_eval.tasks.runner import rolebench_task_names

    assert set(tasks) == rolebench_task_names()
    listed = subprocess.run([tmp_path / "venv/bin/rolebench-eval", "tasks-dir"], capture_output=True, text=True,
                            cwd=tmp_path, env=_env())
    assert Path(listed.stdout.strip()).is_relative_to(tmp_path / "venv"), listed.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["pip-install-dot", "pip-install-e"])
def test_the_readme_snippet_and_version_work_from_the_clone_root(tmp_path, dependencies, fixture_data_dir, editable):
    clone = _checkout_copy(tmp_path / "clone")
    python = _fresh_venv(tmp_path / "venv", dependencies)
    _pip_install(python, *(["-e"] if editable else []), str(clone))
    evaluate = ("import rolebench_eval\n"
                "results = rolebench_eval.evaluate(model='rolegpt', tasks=['rolebench_specific_zh'], "
                f"data_dir={str(fixture_data_dir)!r})\n"
                "print(results['results']['rolebench_specific_zh']['sample_len'], rolebench_eval.__file__)")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (clone, elsewhere):
        count, where = _python(python, evaluate, cwd).split(" ", 1)
        assert count == "2"
        # From the root Python imports the clone's folder whatever the install; elsewhere, the install.
        source = cwd == clone or editable
        assert Path(where).is_relative_to(clone if source else tmp_path / "venv"), (cwd, where)
        version = subprocess.run([python, "-m", "rolebench_eval.cli", "--version"], capture_output=True, text=True,
                                 cwd=cwd, env=_env())
        assert version.stdout.strip() == f"rolebench-eval {metadata.version('rolebench-eval')}", version.stderr
    # A missing extra names the command for this install: the clone, as '.' from its root.
    hint = "from rolebench_eval.install import install_command; print(install_command('judge'))"
    flag = "-e " if editable else ""
    assert _python(python, hint, clone) == f"pip install {flag}'.[judge]'"
    assert _python(python, hint, elsewhere) == f"pip install {flag}'{clone}[judge]'"


@pytest.mark.parametrize("origin, cwd, command", [
    (None, "/x", "pip install 'rolebench-eval[judge]'"),  # from an index: no direct_url.json
    ({"url": "file:///src/rolebench-eval", "dir_info": {}}, "/src/rolebench-eval", "pip install '.[judge]'"),
    ({"url": "file:///src/rolebench-eval", "dir_info": {}}, "/x", "pip install '/src/rolebench-eval[judge]'"),
    ({"url": "file:///src/rolebench%20eval", "dir_info": {"editable": True}}, "/x",
     "pip install -e '/src/rolebench eval[judge]'"),
    ({"url": "file:///d/rolebench_eval-0.2.0.tar.gz", "archive_info": {}}, "/x",
     "pip install 'rolebench-eval[judge] @ file:///d/rolebench_eval-0.2.0.tar.gz'"),
    ({"url": "https://github.com/o/r", "vcs_info": {"vcs": "git", "commit_id": "abc"}}, "/x",
     "pip install 'rolebench-eval[judge] @ git+https://github.com/o/r@abc'"),
])
def test_the_install_command_fits_how_the_package_was_installed(monkeypatch, origin, cwd, command):
    from rolebench_eval import install

    monkeypatch.setattr(install, "direct_url", lambda: origin)
    assert install.install_command("judge", cwd=cwd) == command
