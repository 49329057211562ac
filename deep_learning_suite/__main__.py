"""``python -m deep_learning_suite`` and the ``cs231n-toolkit`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
