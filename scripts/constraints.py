"""The test environment's versions, pinned on purpose and checked against new releases.

    python scripts/constraints.py newest    # fresh venv, newest releases: which tests break, which versions moved
    python scripts/constraints.py refresh   # the same, and when the whole suite passes, write constraints.txt

The README's test command and .ci/run install with ``-c constraints.txt``, so a release
elsewhere cannot turn main red overnight; setup.cfg's ``install_requires`` stay ranges, as
a library's should. ``refresh`` is the deliberate step that moves the pins (commit the file
it writes, saying why); ``newest`` is the early warning, safe to run at any time: it writes
nothing in the checkout. Both run the full suite (slow tests included) in a throwaway venv.

torch is the exception: a newer CPU build is rarely on the local index and the CUDA build is
gigabytes, so both install the version pinned in constraints.txt unless ``--torch`` names one.
Extra arguments after ``--`` go to pytest (``-- -x tests/test_metrics.py``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "constraints.txt"
HEADER = """\
# Versions the whole test suite passed with (Python {python}, {date}).
# Written by `python scripts/constraints.py refresh`; refresh deliberately and commit the result.
# The README's test command and .ci/run install with `-c constraints.txt`.
"""


def read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines (comments and blanks skipped) as {normalised name: version}."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def frozen(python: Path) -> dict[str, str]:
    """What the venv holds, local version labels dropped (``2.13.0+cpu`` pins as ``2.13.0``)."""
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable"],
                         check=True, capture_output=True, text=True).stdout
    pins = {name: version.split("+", 1)[0] for name, version in read_pins(out).items()}
    pins.pop("rolebench-eval", None)
    return pins


def moved(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """One line per package whose version differs, appeared or went."""
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) != new.get(name):
            lines.append(f"{name}: {old.get(name, '(absent)')} -> {new.get(name, '(absent)')}")
    return lines


def failures(junit: Path) -> list[str]:
    """The test ids that failed or errored, from pytest's JUnit XML."""
    if not junit.is_file():
        return ["(pytest wrote no report: see its output above)"]
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            path = case.get("classname", "").replace(".", "/")
            found.append(f"{path}.py::{case.get('name')}")
    return found


def build_venv(where: Path, torch: str) -> Path:
    """A fresh venv with torch pinned and the newest releases of everything ``.[dev]`` asks for."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    pip = [str(python), "-m", "pip", "install", "-q", "--upgrade"]
    subprocess.run(pip + [f"torch=={torch}", "setuptools", "wheel"], check=True, env=env)
    # An eager upgrade would replace the pinned torch by the newest (a CUDA build: gigabytes); hold it.
    hold = where / "torch-pin.txt"
    hold.write_text(f"torch=={torch}\n", encoding="utf-8")
    subprocess.run(pip + ["--upgrade-strategy", "eager", "-c", str(hold), f"{REPO}[dev]"], check=True, env=env)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["newest", "refresh"])
    parser.add_argument("--torch", help="torch version to install (default: the one in constraints.txt)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    pinned = read_pins(CONSTRAINTS.read_text(encoding="utf-8")) if CONSTRAINTS.is_file() else {}
    torch = args.torch or pinned.get("torch")
    if not torch:
        parser.error("no torch version: constraints.txt pins none, so name one with --torch")
    with tempfile.TemporaryDirectory(prefix="rolebench-deps-") as tmp:
        python = build_venv(Path(tmp) / "venv", torch)
        versions = frozen(python)
        junit = Path(tmp) / "junit.xml"
        tests = subprocess.run([str(python), "-m", "pytest", "--full", "-q", "-p", "no:cacheprovider",
                                f"--junitxml={junit}", *args.pytest_args], cwd=REPO)
        broken = failures(junit) if tests.returncode else []
    print("\n== versions moved against constraints.txt ==")
    print("\n".join(moved(pinned, versions)) or "(none)")
    print(f"\n== tests that break: {len(broken)} ==")
    print("\n".join(broken) or "(none)")
    if tests.returncode:
        print(f"\npytest exited {tests.returncode}; constraints.txt left as it was")
        return 1
    if args.command == "refresh":
        pins = "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))
        header = HEADER.format(python=".".join(map(str, sys.version_info[:2])), date=datetime.date.today())
        CONSTRAINTS.write_text(header + pins, encoding="utf-8")
        print(f"\nwrote {CONSTRAINTS.relative_to(REPO)} ({len(versions)} pins): commit it with the reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
