"""The README's quickstart is two commands, and CI runs the second one verbatim."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quickstart\n(.*?)^## ", readme, re.S | re.M).group(1)
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_has_two_commands_and_ci_runs_the_tests_one():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "rolebench-eval" in commands[0] and "pytest" in commands[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci


def test_the_judge_example_judges_a_model_run_not_the_replay():
    """Issue 20: the example judged `out/`, where the README's rolegpt replay also writes: RoleGPT against itself."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Judge with an LLM\n(.*?)^## ", readme, re.S | re.M).group(1)
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    run = next(line for line in block.splitlines() if " run " in line)
    assert "--model hf" in run
    folder = re.search(r"--output_path (\S+)", run).group(1).rstrip("/")
    judged = [re.search(r"judge (\S+)", line).group(1).rstrip("/") for line in block.splitlines() if " judge " in line]
    assert judged and set(judged) == {folder}
    replays = re.findall(r"run --model rolegpt .*?--output_path (\S+)", readme.replace("\\\n", " "))
    assert replays and all(not (p.rstrip("/") + "/").startswith(folder + "/") and not (folder + "/").startswith(
        p.rstrip("/") + "/") for p in replays)
