"""The judges' input error (a subclass of the package's one input error)."""

from rolebench_eval.errors import InputError


class JudgeConfigError(InputError):
    """A judge folder is missing or malformed; the message names the file and field."""
