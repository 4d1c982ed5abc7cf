"""rolebench-eval: RoleBench (RoleLLM, arXiv 2310.00746) for lm-evaluation-harness.

Heavy libraries (lm-eval, torch, transformers) are imported only by the functions
that need them, so ``import rolebench_eval`` and ``rolebench-eval --help`` stay fast.
"""

import os as _os

__version__ = "0.2.0"

__all__ = ["__version__", "evaluate"]

# Installed, the feature folders tasks/, judges/, leaderboard/ and finetune/ sit inside this package
# (setup.cfg's package_dir maps them in). In a source checkout they sit beside it, one folder up; a
# Python started in the checkout's root imports this folder rather than the installed copy, so the
# checkout's root joins the package's search path and ``rolebench_eval.tasks`` is ``<root>/tasks``
# (the same files an editable install maps in; nothing imports the root's other folders this way).
_ROOT = _os.path.dirname(__path__[0])
if _os.path.isfile(_os.path.join(_ROOT, "setup.cfg")) and not _os.path.isdir(_os.path.join(__path__[0], "tasks")):
    __path__.append(_ROOT)


def evaluate(*args, **kwargs):
    """Run RoleBench tasks through lm-eval; see :func:`rolebench_eval.tasks.runner.evaluate`."""
    from rolebench_eval.tasks.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
