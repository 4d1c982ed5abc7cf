"""The console script: fast help, data check, the run pass-through, packaging."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rolebench_eval.cli as cli_module

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def cli(*args, env=None, **kw):
    return subprocess.run([str(BIN / "rolebench-eval"), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def test_help_imports_neither_torch_nor_lm_eval():
    code = ("import sys, rolebench_eval.cli as c; c.build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'openai', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert "reproduce" in cli("--help").stdout


def test_a_verb_imports_only_its_own_module():
    """``rolebench-eval leaderboard ...`` parses without importing the other verbs' modules (judge's imports the
    batch client); each plugged verb parses on its own, and --help lists them all."""
    for verb in cli_module.PLUGGED_VERBS:
        cli_module.build_parser(verb)  # raises when the verb's module did not add it
    code = ("import sys, rolebench_eval.cli as c; c.build_parser('leaderboard'); "
            "print(sorted(m for m in set(c.PLUGGED_VERBS.values()) | {'rolebench_eval.llm.batch'} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rolebench_eval.leaderboard.cli']"
    for argv in (["--help"], ["--help", "judge"], ["-h", "leaderboard"]):  # help before a verb is the whole help
        listed = cli(*argv).stdout
        assert all(verb in listed for verb in cli_module.PLUGGED_VERBS), argv


def test_data_check_ok_and_broken(tmp_path, fixture_data_dir):
    ok = cli("data", "check", str(fixture_data_dir))
    assert ok.returncode == 0 and "specific_en" in ok.stdout and "No problems found." in ok.stdout
    import shutil

    shutil.copytree(fixture_data_dir, tmp_path / "c")
    bad = tmp_path / "c/rolebench-zh/role_specific/test.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    broken = cli("data", "check", str(tmp_path / "c"))
    assert broken.returncode == 2 and f"{bad}:3: invalid JSON" in broken.stdout


@pytest.mark.slow
def test_run_passes_through_to_lm_eval(tmp_path, fixture_data_dir):
    out = cli("run", "--model", "rolegpt", "--tasks", "rolebench_specific_zh", "--output_path", str(tmp_path),
              "--log_samples", env={"ROLEBENCH_DATA_DIR": str(fixture_data_dir)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rolebench_specific_zh" in out.stdout and "spe" in out.stdout
    results = json.loads(Path(glob.glob(str(tmp_path / "*" / "results_*.json"))[0]).read_text())
    assert results["results"]["rolebench_specific_zh"]["sample_len"] == 2
    assert results["model_name"] == "rolegpt"  # not lm-eval's random id


def test_run_skips_lm_eval_builtin_index_only_for_rolebench_tasks():
    import lm_eval.tasks

    from rolebench_eval.tasks.runner import _rolebench_task_manager, only_rolebench, rolebench_task_names

    assert only_rolebench("rolebench_zh,rolebench_specific_en") and not only_rolebench("rolebench_zh,hellaswag")
    with _rolebench_task_manager(include_defaults=False):
        tm = lm_eval.tasks.TaskManager(include_path=None)  # what lm-eval's CLI builds inside `run`
    assert set(tm.all_tasks) == rolebench_task_names()
    assert lm_eval.tasks.TaskManager is not type(tm)  # restored afterwards


def test_run_help_is_lm_eval_help():
    out = cli("run", "--help")
    assert out.returncode == 0 and "--apply_chat_template" in out.stdout


@pytest.mark.integration
def test_reproduce_main_job(real_data_dir, tmp_path):
    out = cli("reproduce", "--data-dir", str(real_data_dir), "--output-path", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("rolebench_specific_zh"))
    assert line.split()[2:4] == ["0.2478", "0.2478"]
    assert "not run: rolebench_general_en" in out.stdout


def _editable() -> bool:
    import sysconfig

    return bool(glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "__editable__.rolebench_eval*")))


@pytest.mark.slow
def test_plain_lm_eval_finds_the_tasks_after_pip_install(tmp_path, fixture_data_dir):
    if _editable():
        pytest.skip("an editable install has no lm_eval/tasks/rolebench overlay; CI installs non-editable")
    out = subprocess.run(
        [str(BIN / "lm_eval"), "--model", "dummy", "--tasks", "rolebench_specific_zh",
         "--metadata", json.dumps({"data_dir": str(fixture_data_dir)})],
        capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rolebench_specific_zh" in out.stdout


def _one_line(proc) -> str:
    """The error line of a failed verb: stderr without lm-eval's and our log lines; no traceback."""
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith(("INFO", "WARNING", "20"))]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("verb", [
    ["reproduce", "--data-dir", "{empty}"],
    ["judge", "{missing}", "--judge", "pairwise", "--model", "m"],
    ["judge", "check", "--labels", "{missing}", "--judge", "pairwise", "--model", "m"],
    ["leaderboard", "{missing}", "--out", "{tmp}/site"],
    ["generate", "rolegpt", "--profile", "{missing}", "--instructions", "{missing}", "--out", "{tmp}/g", "--model", "m"],
    ["converse", "{missing}", "--out", "{tmp}/conv", "--model", "m"],
    ["finetune", "--config", "{missing}"],
    ["run", "--model", "rolegpt", "--tasks", "rolebench_specific_zh", "--metadata", '{{"data_dir": "{empty}"}}'],
])
def test_every_verb_exits_2_with_one_line_on_bad_input_and_leaves_nothing(tmp_path, verb):
    (tmp_path / "empty").mkdir()
    (tmp_path / "cwd").mkdir()  # where default outputs (./judgments) would appear
    fill = {"empty": str(tmp_path / "empty"), "missing": str(tmp_path / "nope.yaml"), "tmp": str(tmp_path)}
    proc = cli(*[part.format(**fill) for part in verb], cwd=tmp_path / "cwd")
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _one_line(proc)
    verb_name = "judge-check" if verb[:2] == ["judge", "check"] else verb[0]
    assert line.startswith(f"rolebench-eval {verb_name}: error: ") and str(tmp_path) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "empty"]  # no output folder made for nothing
    assert list((tmp_path / "cwd").iterdir()) == []


def test_debug_shows_the_traceback_and_version_prints(tmp_path):
    proc = cli("--debug", "reproduce", "--data-dir", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "InputError" in proc.stderr
    from rolebench_eval import __version__

    assert cli("--version").stdout.strip() == f"rolebench-eval {__version__}"


def test_a_missing_optional_package_is_one_line_naming_the_extra(monkeypatch, capsys):
    from rolebench_eval import cli, cli_notes
    from rolebench_eval.install import install_command

    def needs_openai(args):
        import importlib

        importlib.import_module("openai_not_installed_here")  # stands for openai missing

    monkeypatch.setitem(cli_notes.EXTRAS, "openai_not_installed_here", "judge")
    monkeypatch.setattr(cli, "_tasks_dir", needs_openai)
    assert cli.main(["tasks-dir"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # the command fits this install (tests/test_packaging.py checks it per install mode)
    assert err == ["rolebench-eval tasks-dir: error: this needs the package 'openai_not_installed_here', "
                   f"which is not installed: {install_command('judge')}"]
    missing = ModuleNotFoundError("No module named 'openai'", name="openai")
    assert cli_notes.missing_extra(missing, "generate").endswith(f": {install_command('generate')}")
    assert cli_notes.missing_extra(ModuleNotFoundError("x", name="not_optional"), "judge") is None  # a bug: traceback


def test_ctrl_c_while_the_cli_is_imported_is_exit_130_with_one_line(monkeypatch, capsys):
    """The CLI's handler is not in place while Python imports it; the console script catches that moment."""
    from rolebench_eval import __main__ as console
    from rolebench_eval.errors import INTERRUPTED_STARTING

    class CtrlCOnImport:  # a Ctrl-C arriving while rolebench_eval.cli is being imported
        def find_spec(self, name, path=None, target=None):
            if name == "rolebench_eval.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "rolebench_eval.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [CtrlCOnImport(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["rolebench-eval", "judge", "runs/x"])
    assert console.main() == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rolebench-eval judge: {INTERRUPTED_STARTING}"]
    assert "the same command starts it again" in INTERRUPTED_STARTING
    monkeypatch.setattr(sys, "argv", ["rolebench-eval", "--debug", "judge", "runs/x"])
    with pytest.raises(KeyboardInterrupt):
        console.main()


def _tasks_dir_verb(verb: str) -> subprocess.CompletedProcess:
    """``rolebench-eval tasks-dir`` in a fresh process, its work replaced by ``verb`` (source defining verb(args))."""
    code = f"import sys\nfrom rolebench_eval import cli\n{verb}cli._tasks_dir = verb\nsys.exit(cli.main(['tasks-dir']))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_ctrl_c_python_drops_in_a_finalizer_still_stops_the_verb():
    """Python cannot raise a KeyboardInterrupt that lands in a finalizer or a weakref callback: it prints
    "Exception ignored in ..." and the verb would go on. The CLI signals it again: exit 130, its one line."""
    verb = ("import time\n"
            "class Finalizer:\n    def __del__(self):\n        raise KeyboardInterrupt  # a Ctrl-C landing here\n"
            "def verb(args):\n    Finalizer()\n    for _ in range(200):\n        time.sleep(0.01)\n"
            "    print('went on as if never stopped')\n    return 0\n")
    proc = _tasks_dir_verb(verb)
    assert (proc.returncode, proc.stdout) == (130, ""), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rolebench-eval tasks-dir: interrupted: "), proc.stderr


def test_an_error_a_ctrl_c_caused_is_reported_as_the_interruption():
    """A worker stopped by the same Ctrl-C halfway through importing matplotlib fails its next import: that is
    the Ctrl-C, exit 130 with its line, not "matplotlib is not installed" (exit 2)."""
    verb = ("import os, signal, time\n"
            "def verb(args):\n    try:\n        os.kill(os.getpid(), signal.SIGINT)\n        time.sleep(5)\n"
            "    except KeyboardInterrupt:\n        raise ImportError(\"cannot import name 'pyplot' from partially "
            "initialized module 'matplotlib'\", name='matplotlib')\n    return 0\n")
    proc = _tasks_dir_verb(verb)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rolebench-eval tasks-dir: interrupted: "), proc.stderr
