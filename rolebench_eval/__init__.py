"""rolebench-eval: RoleBench (RoleLLM, arXiv 2310.00746) for lm-evaluation-harness.

Heavy libraries (lm-eval, torch, transformers) are imported only by the functions
that need them, so ``import rolebench_eval`` and ``rolebench-eval --help`` stay fast.
"""

__version__ = "0.2.0"

__all__ = ["__version__", "evaluate"]


def evaluate(*args, **kwargs):
    """Run RoleBench tasks through lm-eval; see :func:`rolebench_eval.tasks.runner.evaluate`."""
    from rolebench_eval.tasks.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
