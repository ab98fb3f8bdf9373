"""Helpers every benchmark shares: pinning to cores, machine facts, and printing results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def pin_to_cores(cores: int | None) -> None:
    """Run on the first N cores only (before numpy/TensorFlow start their thread pools)."""
    if not cores:
        return
    os.sched_setaffinity(0, set(range(cores)))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(cores)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)


def split_as_trained(engine, data: str) -> tuple[list, list]:
    """The corpus in ``data``, split into (training, held-out) songs as ``engine``'s model was."""
    from generator.training.corpus import preprocess

    percent = engine.meta["hyperparameters"]["validation_percent"]
    return preprocess(data, progress=False).split(percent)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def report(title: str, rows: list[tuple[str, ...]], payload: dict) -> None:
    """A Markdown table for BENCHMARKS.md and a JSON line for machines."""
    print(f"\n{title}  ({machine()})\n")
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\n" + json.dumps(payload | {"machine": machine()}))
