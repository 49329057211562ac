"""``python -m deep_learning_suite`` and the ``cs231n-toolkit`` console script."""

import os
import sys

# The CLI's matrix products are small (a minibatch at a time), so BLAS threads gain little,
# and on a busy machine OpenBLAS threads that wait on each other made a 64 x 3136 x 128
# product 60 times slower (measured on 2 shared cores). Use one thread unless the user chose.
# This must run before NumPy is imported, hence here and not in cli.py.
if not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")):
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

from .cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
