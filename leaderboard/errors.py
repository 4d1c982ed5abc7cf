"""The leaderboard's input errors are the package's one input error (file, line, field, problem)."""

from rolebench_eval.errors import InputError

# Kept under its first name: an input file is missing, corrupt, truncated or inconsistent.
LoadError = InputError
