"""``python -m rolebench_eval.finetune`` / ``accelerate launch -m rolebench_eval.finetune``."""

import sys

from .cli import main

sys.exit(main())
