"""Live role-play conversations: scenarios as data, models talked to turn by turn, scores per turn.

- :mod:`.simulator`: the simulated user's prompts (``simulator.yaml``), rendered with jinja2;
- :mod:`.characters`: the characters of a data folder (RoleBench, or one written by ``generate``);
- :mod:`.scenarios`: ``rolebench-eval scenarios write`` (a simulator writes them), ``freeze``;
- :mod:`.converse`: ``rolebench-eval converse``, replay or live, through the package's LLM client;
- :mod:`.scores`: each turn's character break and paper metric, summaries by kind, character, turn;
- :mod:`.lmeval`: the conversations as lm-eval results and samples files (``live_tasks``), for the leaderboard.

The files are typed in the ground floor: :mod:`rolebench_eval.outputs.scenario` and
:mod:`rolebench_eval.outputs.conversation`.
"""
