"""The console script ``rolebench-eval`` (and ``python -m rolebench_eval``).

A Ctrl-C while Python is still importing the CLI (about half a second) comes before the CLI's own
handler is in place; here it is the policy's exit 130 with one line, as it is during the work, not a
traceback. (One in the first milliseconds, while the interpreter itself starts, is Python's.)
"""

import sys

from rolebench_eval.errors import EXIT_INTERRUPTED


def main() -> int:
    """Import the CLI and run it."""
    try:
        from rolebench_eval.cli import main as cli_main
    except KeyboardInterrupt:
        if "--debug" in sys.argv:  # as the CLI does: the traceback, on request
            raise
        verb = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
        print(f"\nrolebench-eval {verb}: interrupted while starting, before anything was read or written; "
              "the same command starts it again", file=sys.stderr)
        return EXIT_INTERRUPTED
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
