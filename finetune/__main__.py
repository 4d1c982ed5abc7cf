"""``python -m rolebench_eval.finetune`` / ``accelerate launch -m rolebench_eval.finetune``.

An entry point, like the console script: the verb runs under the CLI's exit policy.
"""

import sys

from rolebench_eval.cli import main

sys.exit(main(["finetune", *sys.argv[1:]]))
