"""LLM-as-judge scoring of RoleBench outputs (installed as ``rolebench_eval.judges``)."""
