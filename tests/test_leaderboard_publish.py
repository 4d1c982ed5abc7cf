"""``rolebench-eval leaderboard ... --push-to-hub ORG/NAME`` end to end, against the local Hub stand-in
(tests/fixtures/hub/stand_in.py) served through HF_ENDPOINT: what goes up, in one commit; a refused
token, a failed commit and a missing token, each one line with the exit status of the policy and
nothing half-published.

Each push runs the CLI in a child Python, because huggingface_hub reads HF_ENDPOINT when it is imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUNS, JUDGES = FIXTURES / "leaderboard" / "runs", FIXTURES / "leaderboard" / "judges"
_spec = importlib.util.spec_from_file_location("stand_in", FIXTURES / "hub" / "stand_in.py")
stand_in = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stand_in)

REPO, KEY = "me/rolebench-board", "datasets/me/rolebench-board"
TOKEN = "hf_StandInSecret123"
ERROR = "rolebench-eval leaderboard: error: "


@pytest.fixture
def hub(tmp_path):
    with stand_in.StandInHub(tmp_path / "hub-data") as server:
        server.token = TOKEN
        yield server


def push(tmp_path: Path, hub, *extra: str, token: str | None = TOKEN, repo: str = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_TOKEN")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if token is not None:
        env["HF_TOKEN"] = token
    code = "import sys; from rolebench_eval.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["leaderboard", str(RUNS), "--judges", str(JUDGES), "--out", str(tmp_path / "site"), "--no-cache",
            "--n-boot", "50", "--push-to-hub", repo, *extra]
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


def _error_lines(done: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith(ERROR)]


def test_one_commit_uploads_exactly_the_files_it_lists_and_prints_the_commit(tmp_path, hub):
    done = push(tmp_path, hub)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = next(line for line in done.stdout.splitlines() if line.startswith(f"pushed "))
    count, files = listed.split(" files to ")[0].split()[-1], listed.split(": ", 1)[1].split()
    assert int(count) == len(files)
    assert len(hub.commits) == 1 and hub.commits[0]["files"] == sorted(files) == sorted(hub.repos[KEY])
    assert f"commit: {hub.url}/{KEY}/commit/{hub.commits[0]['oid']}" in done.stdout.splitlines()
    site = tmp_path / "site"
    for name in ("index.html", "items.html", "items-data.js", "leaderboard.json", "leaderboard.csv",
                 "leaderboard.md", "breakdowns.csv", "scores.png"):
        assert hub.repos[KEY][name] == (site / name).read_bytes(), name
    runs = sorted(f for f in files if f.startswith("runs/"))
    assert runs and all(Path(f).name.startswith("results_") for f in runs)  # run records, never samples
    assert "runs/model-a/" in " ".join(runs)
    judged = [f for f in files if f.startswith("judges/")]
    assert "judges/rolebench_specific_en/pairwise/model-a.json" in judged
    summary = json.loads(hub.repos[KEY]["judges/rolebench_specific_en/pairwise/model-a.json"])
    assert summary["kind"] == "rolebench-judge-summary" and summary["model"] == "org/model-a"
    card = hub.repos[KEY]["README.md"].decode()
    assert card.startswith("---\nconfigs:\n- config_name: default\n  data_files: leaderboard.csv\n")
    assert "# RoleBench leaderboard" in card
    assert set(hub.authorizations) == {f"Bearer {TOKEN}"}  # the token of the environment, on every request
    output = done.stdout + done.stderr + "".join(b.decode("utf-8", "replace") for b in hub.repos[KEY].values())
    assert TOKEN not in output  # never printed, never uploaded


def test_samples_go_up_only_when_asked(tmp_path, hub):
    done = push(tmp_path, hub, "--push-samples")
    assert done.returncode == 0, done.stderr[-3000:]
    samples = [f for f in hub.repos[KEY] if f.startswith("runs/") and Path(f).name.startswith("samples_")]
    assert "runs/model-a/" in " ".join(samples) and all(f.endswith(".jsonl") for f in samples)


def test_a_refused_token_is_one_line_exit_2_and_nothing_published(tmp_path, hub):
    done = push(tmp_path, hub, token="hf_NotTheRightOne")
    assert done.returncode == 2
    [line] = _error_lines(done)
    assert f"{hub.url}/{KEY}: field 'HF_TOKEN': the Hub refused the token (HTTP 401)" in line
    assert line.endswith("nothing was published")
    assert "hf_NotTheRightOne" not in done.stdout + done.stderr
    assert hub.commits == [] and not any(hub.repos.values())


def test_a_failed_commit_is_one_line_exit_4_and_nothing_half_published(tmp_path, hub):
    hub.fail_commit = True
    done = push(tmp_path, hub)
    assert done.returncode == 4
    [line] = _error_lines(done)
    assert f"{hub.url}/{KEY}: the Hub did not take the commit (HTTP 500)" in line
    assert "nothing was published, rerun to try again" in line
    assert hub.commits == [] and hub.repos == {KEY: {}}  # the repository exists; not one file in it
    assert ("POST", f"/api/{KEY}/commit/main") in hub.requests  # the one commit was sent, and refused whole


def test_a_hub_that_does_not_answer_is_one_line_exit_4(tmp_path):
    hub = SimpleNamespace(url=f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    done = push(tmp_path, hub)
    assert done.returncode == 4, done.stderr[-3000:]
    [line] = _error_lines(done)
    assert f"{hub.url}/{KEY}: cannot reach the Hub (ConnectError" in line
    assert line.endswith("nothing was published")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("token, repo, field", [(None, REPO, "HF_TOKEN"), (TOKEN, "no-org", "--push-to-hub"),
                                                (TOKEN, "me/bad name", "--push-to-hub")])
def test_a_missing_token_or_bad_name_stops_before_the_build(tmp_path, hub, token, repo, field):
    done = push(tmp_path, hub, token=token, repo=repo)
    assert done.returncode == 2
    [line] = _error_lines(done)
    assert f"field '{field}'" in line
    assert not (tmp_path / "site").exists() and hub.requests == []
