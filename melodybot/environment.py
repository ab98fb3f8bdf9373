"""The process settings every command runs under; they only work if set before NumPy loads.

OpenBLAS and OpenMP read their thread counts once, when NumPy is first imported, and TensorFlow
its log level when it starts. The command line sets them before any command imports either;
a benchmark that measures the bot as it runs calls :func:`configure_process` itself, first.
"""

from __future__ import annotations

import os

# One BLAS thread per process (the worker processes inherit it): the model's step multiplies
# small matrices, and BLAS thread pools fighting the workers for 2 cores made a step 10× slower.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def configure_process() -> None:
    """One BLAS thread, TensorFlow's start-up chatter off; what the environment sets wins."""
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its chatter would hide our output
