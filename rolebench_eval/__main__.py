"""The console script ``rolebench-eval`` (and ``python -m rolebench_eval``).

A Ctrl-C while Python is still importing the CLI (about half a second) comes before the CLI's own
handler is in place; here it is the policy's exit 130 with one line, as it is during the work, not a
traceback. (One in the first milliseconds, while the interpreter itself starts, is Python's.) Once
the command has finished and said so, a Ctrl-C while Python tears down is ignored: it would turn a
finished command into one killed by a signal, with no line.
"""

import sys  # already imported by the interpreter: nothing runs here before the ``try`` below


def main() -> int:
    """Import the CLI and run it; returns its exit status."""
    try:  # everything, ``signal`` included (its import builds enums: milliseconds a Ctrl-C can land in)
        from rolebench_eval.cli import main as cli_main
    except KeyboardInterrupt:
        if "--debug" in sys.argv:  # as the CLI does: the traceback, on request
            raise
        from rolebench_eval.errors import EXIT_INTERRUPTED, INTERRUPTED_STARTING

        verb = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
        print(f"\nrolebench-eval {verb}: {INTERRUPTED_STARTING}", file=sys.stderr)
        return EXIT_INTERRUPTED
    code = cli_main()
    import signal  # imported by the CLI already

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # finished: see the module docstring
    return code


if __name__ == "__main__":
    sys.exit(main())
