"""The fault suite (issue 21, item 7): every verb as a subprocess against what the machine does.

Verbs: run, judge, leaderboard, generate, finetune, merge, board. Faults: a full disk (a small
tmpfs filled to the last byte), a read-only folder (a read-only tmpfs), SIGINT while starting
and while working, SIGKILL while working (then the same command again), and two writers of one
output at once. Every case asserts an exit status of the policy, the one line naming the path
(``rolebench-eval VERB: ...``), no traceback without ``--debug``, no half output (every JSON and
JSONL file under the output parses; a run's results file has its whole samples beside it), and
that nothing paid for is lost (a rerun sends only the requests not answered before).

:data:`EXPECTED` is the table of the lead's note (verb x fault -> exit status); the tests check it.
Each case is small: the fixture data, the tiny Llama, the scripted local OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from rolebench_eval.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_REQUESTS, EXIT_WRITE
from rolebench_eval.fileio import read_jsonl
from rolebench_eval.outputs import find_runs
from rolebench_eval.tasks.resumable import expected_samples

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
FIX = HERE / "fixtures"
REPO = HERE.parent
BIN = Path(sys.executable).parent / "rolebench-eval"
KEY = "sk-fault-suite"
TINY = HERE.parent / "finetune" / "recipes" / "tiny_cpu.yaml"
RUN_TASK = "rolebench_specific_zh"
SIGKILL_RERUN = "sigkill+rerun"

# verb -> fault -> the exit status every case of that cell must end with (the lead's table).
EXPECTED = {
    verb: {"full disk": EXIT_WRITE, "read-only": EXIT_WRITE, "sigint starting": EXIT_INTERRUPTED,
           "sigint working": EXIT_INTERRUPTED, SIGKILL_RERUN: EXIT_OK, "two writers": EXIT_OK}
    for verb in ("run", "judge", "leaderboard", "generate", "finetune", "merge", "board")
}
# one merges; the other refuses a folder not empty (by merge's own check, or by the whole-folder build when the
# first made the folder between that check and the build): one line naming the folder either way
EXPECTED["merge"]["two writers"] = (EXIT_OK, EXIT_INPUT)
EXPECTED["finetune"]["two writers"] = (EXIT_OK, EXIT_INPUT)  # one trains, the other refuses a folder with a run
EXPECTED["merge"][SIGKILL_RERUN] = (EXIT_OK, EXIT_INPUT)  # 2 when the merge had finished: it writes a new folder


@dataclass
class Case:
    """How to run one verb: its command for an output path, the server it asks, when it is at work."""

    argv: Callable[[Path], list[str]]
    script: dict | None = None
    working: Callable[["Ctx", Path], bool] = lambda ctx, out: True
    env: dict | None = None


@dataclass
class Ctx:
    root: Path
    srv: object | None
    data: Path


def _server_script(name: str) -> dict:
    """A fixture script without its scripted faults (429s, hangs): here the machine is the fault."""
    script = json.loads((FIX / name).read_text(encoding="utf-8"))
    for rule in script.get("rules", []):
        rule.pop("faults", None)
    return script


def _requests(ctx: Ctx) -> int:
    """Requests the server answered so far."""
    return ctx.srv.count() if ctx.srv is not None else 0


def _building(ctx: Ctx, out: Path) -> bool:
    """A whole-folder build is under way beside ``out`` (:func:`rolebench_eval.fileio.whole_folder`)."""
    return any(out.parent.glob(f".{out.name}.new-*"))


def _cases(ctx: Ctx, tiny_llama: Path, parts: list[Path]) -> dict[str, Case]:
    board = ctx.root / "board.yaml"
    board.write_text(f"models:\n  - {{name: replay, model: rolegpt}}\ntasks: [{RUN_TASK}]\nshards: 1\n"
                     "leaderboard:\n  n_boot: 50\n", encoding="utf-8")
    llm = ["--model", "m", "--base-url", ctx.srv.url if ctx.srv else "", "--timeout", "5", "--no-progress",
           "--cache", str(ctx.root / "cache.sqlite")]
    return {
        "run": Case(lambda out: ["run", "--model", "local-chat-completions", "--model_args",
                                 f"model=m,base_url={ctx.srv.url}/chat/completions,max_retries=1,num_concurrent=1",
                                 "--apply_chat_template", "--tasks", RUN_TASK, "--output_path", str(out),
                                 "--log_samples"],
                    {"default_reply": "Of course."}, lambda c, out: _requests(c) >= 1),
        "judge": Case(lambda out: ["judge", str(FIX / "judges" / "lmeval_out"), "--judge", "pairwise",
                                   "--out", str(out), "--concurrency", "1", *llm],
                      _server_script("judges/pairwise_script.json"), lambda c, out: _requests(c) >= 1),
        "generate": Case(lambda out: ["generate", "rolegpt", "--profile", str(ctx.root / "brine" / "brine.yaml"),
                                      "--instructions", str(FIX / "generate" / "instructions.jsonl"),
                                      "--out", str(out), "--concurrency", "1", *llm],
                         _server_script("generate/rolegpt_script.json"), lambda c, out: _requests(c) >= 1),
        "leaderboard": Case(lambda out: ["leaderboard", str(FIX / "leaderboard" / "runs" / "a"),
                                         str(FIX / "leaderboard" / "runs" / "b"), "--no-cache", "--n-boot", "200",
                                         "--out", str(out)], working=_building),
        "merge": Case(lambda out: ["merge", *map(str, parts), "--output-path", str(out)], working=_building),
        "finetune": Case(lambda out: ["finetune", "--config", str(TINY), "--model_name_or_path", str(tiny_llama),
                                      "--output_dir", str(out), "--data_dir", str(ctx.data), "--max_steps", "6",
                                      "--save_steps", "2", "--report_to", "none"],
                         working=lambda c, out: (out / "checkpoint-2").is_dir(), env={"OMP_NUM_THREADS": "1"}),
        "board": Case(lambda out: ["board", str(board), "--out", str(out)],
                      working=lambda c, out: (out / ".steps").is_dir() and any((out / ".steps").iterdir())),
    }


# --------------------------------------------------------------------------- running and checking


def _env(ctx: Ctx, case: Case) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL",)}
    return env | {"OPENAI_API_KEY": KEY, "ROLEBENCH_DATA_DIR": str(ctx.data), "XDG_CACHE_HOME": str(ctx.root / "xdg")} \
        | (case.env or {})


def _start(ctx: Ctx, case: Case, out: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN), *case.argv(out)], env=_env(ctx, case), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _one_line(err: str, verb: str) -> str:
    """The verb's one line (no traceback): ``rolebench-eval VERB: ...``."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith(f"rolebench-eval {verb}: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def _whole(out: Path) -> None:
    """No half output: every JSON and JSONL file parses; a run's results file has all its samples."""
    if not out.exists():
        return
    for path in out.rglob("*"):
        if any(p.startswith(".") for p in path.relative_to(out).parts) or not path.is_file():
            continue
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            list(read_jsonl(path))
    runs, _ = find_runs([out]) if any(out.rglob("results_*.json")) else ([], [])
    for run in runs:
        for task in run.results.get("n-samples") or {}:
            lines = sum(1 for _ in read_jsonl(run.samples[task]))
            assert lines >= expected_samples(run.results, task), (run.results_path, task)


def _wait_working(ctx: Ctx, case: Case, proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 240
    while proc.poll() is None and not case.working(ctx, out):
        assert time.monotonic() < deadline, "never got to work"
        time.sleep(0.05)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    """Signal the command's whole process group (its workers too), unless it is gone already."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _code_ok(code: int, expected) -> bool:
    return code in (expected if isinstance(expected, tuple) else (expected,))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def parts(tmp_path_factory, fixture_data_dir) -> list[Path]:
    """Two shards of the rolegpt replay: the merge's inputs."""
    root = tmp_path_factory.mktemp("parts")
    env = os.environ | {"ROLEBENCH_DATA_DIR": str(fixture_data_dir)}
    for k in range(2):
        subprocess.run([str(BIN), "run", "--model", "rolegpt", "--tasks", "rolebench_specific_en", "--shard",
                        f"{k}/2", "--output_path", str(root / f"p{k}"), "--log_samples"], env=env, check=True,
                       capture_output=True)
    return [root / "p0", root / "p1"]


@pytest.fixture
def ctx_for(tmp_path, fake_server, fixture_data_dir, tiny_llama, parts):
    """``ctx_for(verb)`` -> (Ctx, Case) with the verb's server running (stopped after the test)."""
    servers = []
    brine = tmp_path / "brine"
    shutil.copytree(FIX / "generate", brine)

    def make(verb: str, latency: float = 0.0):
        probe = _cases(Ctx(tmp_path, None, fixture_data_dir), tiny_llama, parts)[verb]
        srv = None
        if probe.script is not None:
            srv = fake_server(probe.script, tmp_path / f"server{len(servers)}", latency, KEY).__enter__()
            servers.append(srv)
        ctx = Ctx(tmp_path, srv, fixture_data_dir)
        return ctx, _cases(ctx, tiny_llama, parts)[verb]

    yield make
    for srv in servers:
        srv.__exit__(None, None, None)


def _full_disk(small_fs) -> Path:
    """A tmpfs with no byte left (folders can still be made; no file can grow)."""
    where = small_fs(1 << 20)
    with open(where / "ballast", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return where


from test_machine_faults import small_fs  # noqa: E402,F401  (the fixture: a tmpfs, or skip)

VERBS = list(EXPECTED)
OBSERVED: dict[tuple[str, str], list[int]] = {}  # (verb, fault) -> exit statuses seen (both writers' for two)


@pytest.fixture(scope="module", autouse=True)
def _table():
    """With $ROLEBENCH_FAULT_TABLE set, write the observed verb x fault table there (Markdown) at the end."""
    yield
    where = os.environ.get("ROLEBENCH_FAULT_TABLE")
    if where:
        faults = list(EXPECTED["run"])
        rows = [f"| verb | {' | '.join(faults)} |", "|---" * (len(faults) + 1) + "|"]
        rows += [f"| {verb} | " + " | ".join("/".join(map(str, sorted(set(OBSERVED.get((verb, f), []))))) or "-"
                                            for f in faults) + " |" for verb in VERBS]
        Path(where).write_text("\n".join(rows) + "\n", encoding="utf-8")


def _seen(verb: str, fault: str, *codes: int) -> None:
    OBSERVED.setdefault((verb, fault), []).extend(codes)


# --------------------------------------------------------------------------- the faults


@pytest.mark.parametrize("verb", VERBS)
def test_a_full_disk(verb, ctx_for, small_fs):
    ctx, case = ctx_for(verb)
    out = _full_disk(small_fs) / "out"
    code, err = _finish(_start(ctx, case, out))
    _seen(verb, "full disk", code)
    line = _one_line(err, verb)
    assert _code_ok(code, EXPECTED[verb]["full disk"]), line
    reason = "No space left on device" if "SQLite" not in line else "disk is full"  # (a board stops at its first
    # own file, the models' display data, before any step)
    assert reason in line, line
    assert str(out) in line or str(out.parent) in line, line
    _whole(out)


@pytest.mark.parametrize("verb", VERBS)
def test_a_read_only_folder(verb, ctx_for, small_fs):
    ctx, case = ctx_for(verb)
    out = small_fs(1 << 20, ro=True) / "out"
    code, err = _finish(_start(ctx, case, out))
    _seen(verb, "read-only", code)
    line = _one_line(err, verb)
    assert _code_ok(code, EXPECTED[verb]["read-only"]) and "Read-only file system" in line and str(out) in line, line
    assert _requests(ctx) == 0  # refused before anything was paid for


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("moment", ["starting", "working"])
def test_ctrl_c(verb, moment, ctx_for, tmp_path):
    ctx, case = ctx_for(verb, latency=0.3)
    out = tmp_path / "out"
    proc = _start(ctx, case, out)
    if moment == "starting":
        time.sleep(1.5)
    else:
        _wait_working(ctx, case, proc, out)
    _signal(proc, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    code, err = _finish(proc)
    _seen(verb, f"sigint {moment}", code)
    if code == EXIT_OK:  # finished before the signal came
        return
    line = _one_line(err, verb)
    assert code == EXPECTED[verb][f"sigint {moment}"] and line.startswith(f"rolebench-eval {verb}: interrupted"), line
    assert "the same command" in line, line  # says what a rerun redoes
    _whole(out)


def _before_our_code(code: int, err: str) -> bool:
    """Stopped by the SIGINT while the interpreter itself started: killed by it (-2) with nothing said (before
    Python put its handler in place) or with a traceback, or, in one of its start's steps (the standard streams'
    codecs; ``site``, with the editable install's path hook), Python's "Fatal Python error: init_..." (exit 1);
    and no frame of the traceback is a file of the package (the console script pip writes, importlib, site are
    not). A loaded machine can take longer than the sweep's first moments to get there; this one case is
    Python's own (rolebench_eval/__main__.py imports nothing before it catches a Ctrl-C)."""
    if code == -signal.SIGINT and not err.strip():
        return True
    frames = [line.split('"')[1] for line in err.splitlines() if line.strip().startswith('File "')]
    ours = [f for f in frames if f.endswith(".py") and ("/rolebench_eval/" in f or (
        Path(f).is_relative_to(REPO) and not Path(f).is_relative_to(Path(sys.prefix))))]
    in_start = code == -signal.SIGINT or (code == 1 and "Fatal Python error: init_" in err)  # its start's steps
    return in_start and "KeyboardInterrupt" in err and bool(frames) and not ours


def test_ctrl_c_at_any_moment_is_done_or_one_line_never_a_traceback_or_a_kill(ctx_for, tmp_path):
    """Ctrl-C swept over a whole leaderboard command, from the interpreter's start to its exit: while the CLI is
    imported, while flags are parsed, at work, and while Python tears down after the last line was written."""
    ctx, case = ctx_for("leaderboard")
    seen = set()
    for k, delay in enumerate([0.05 * i for i in range(1, 11)] + [0.2 * i for i in range(3, 16)]):
        proc = _start(ctx, case, tmp_path / f"out{k}")
        time.sleep(delay)
        _signal(proc, signal.SIGINT)
        code, err = _finish(proc)
        if _before_our_code(code, err):
            continue
        assert code in (EXIT_OK, EXIT_INTERRUPTED), (delay, code, err[-3000:])  # -2: killed by the signal
        if code == EXIT_INTERRUPTED:
            line = _one_line(err, "leaderboard")
            assert "the same command" in line, (delay, line)
            seen.add(line.split(";")[0])
        else:
            assert "Traceback" not in err, err[-3000:]
        _whole(tmp_path / f"out{k}")
    assert len(seen) >= 2  # it was stopped at more than one stage


@pytest.mark.parametrize("verb", VERBS)
def test_sigkill_then_the_same_command(verb, ctx_for, tmp_path):
    ctx, case = ctx_for(verb, latency=0.3)
    out = tmp_path / "out"
    proc = _start(ctx, case, out)
    _wait_working(ctx, case, proc, out)
    _signal(proc, signal.SIGKILL)
    proc.communicate()
    _whole(out)
    paid = _requests(ctx)
    argv = case.argv
    if verb == "finetune":
        case.argv = lambda out: [*argv(out), "--resume"]
    code, err = _finish(_start(ctx, case, out))
    _seen(verb, SIGKILL_RERUN, code)
    assert _code_ok(code, EXPECTED[verb][SIGKILL_RERUN]), err[-3000:]
    _whole(out)
    if ctx.srv is not None:  # nothing paid for is asked again (but the one request in flight at the kill)
        sent = _requests(ctx)
        for cache in ctx.root.glob("cache.sqlite*"):
            cache.unlink()
        code, err = _finish(_start(ctx, case, tmp_path / "fresh"))  # the same work from nothing
        assert code == EXIT_OK, err[-3000:]
        alone = _requests(ctx) - sent
        assert 1 <= paid and sent <= alone + 1, (paid, sent, alone)


@pytest.mark.parametrize("verb", VERBS)
def test_two_writers_at_once(verb, ctx_for, tmp_path):
    ctx, case = ctx_for(verb)
    out = tmp_path / "out"
    second = case
    if verb == "generate":  # two characters into one folder
        other = tmp_path / "pip"
        shutil.copytree(FIX / "generate", other)
        (other / "brine.yaml").write_text((other / "brine.yaml").read_text(encoding="utf-8").replace(
            "name: Captain Ottoline Brine", "name: First Mate Pip"), encoding="utf-8")
        second = Case(lambda o: [a.replace(str(tmp_path / "brine"), str(other)) for a in case.argv(o)],
                      case.script, case.working, case.env)
    procs = [_start(ctx, case, out), _start(ctx, second, out)]
    results = [_finish(p) for p in procs]
    _seen(verb, "two writers", *(code for code, _ in results))
    expected = EXPECTED[verb]["two writers"]
    for code, err in results:
        assert _code_ok(code, expected) and "Traceback" not in err, err[-3000:]
        if code != EXIT_OK:
            _one_line(err, verb)
    assert EXIT_OK in [code for code, _ in results]
    _whole(out)
    if verb == "generate":
        roles = {row["role"] for _, row in read_jsonl(out / "general" / "train.jsonl")}
        assert roles == {"Captain Ottoline Brine", "First Mate Pip"}
    if verb == "run":
        assert len(find_runs([out])[0]) == 2


def test_the_table_covers_every_verb_and_fault():
    assert set(EXPECTED) == {"run", "judge", "leaderboard", "generate", "finetune", "merge", "board"}
    assert all(set(row) == set(EXPECTED["run"]) for row in EXPECTED.values())
    assert EXIT_REQUESTS not in [c for row in EXPECTED.values() for c in row.values()]
