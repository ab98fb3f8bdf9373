"""Job functions the worker-pool tests send to real worker processes (importable there)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def note_setup(path: str) -> None:
    with Path(path).open("a") as log:
        log.write(f"{os.getpid()}\n")


def echo(payloads: list[object]) -> list[object]:
    """Each payload back with the worker's pid and how many payloads came in this call."""
    return [(os.getpid(), len(payloads), payload) for payload in payloads]


def start_time(payloads: list[object]) -> list[float]:
    now = time.monotonic()
    return [now for _ in payloads]


def nap(payloads: list[float]) -> list[float]:
    for seconds in payloads:
        time.sleep(seconds)
    return payloads


def crash_on(payloads: list[str]) -> list[str]:
    """Dies as a crashing native library would when one payload says so."""
    if "crash" in payloads:
        os.kill(os.getpid(), signal.SIGKILL)
    return payloads


def fail_some(payloads: list[str]) -> list[object]:
    return [ValueError(f"bad payload {p}") if p.startswith("bad") else p for p in payloads]


def broken_setup(_: object) -> None:
    raise OSError("no model here")


def mark_and_nap(payloads: list[tuple[str, float, object]]) -> list[tuple[str, object]]:
    """For the queue's tests: leave a file named after the `melodybot worker` that took the job
    (the name the test gave it, in $QUEUE_TEST_WORKER), sleep, and answer which worker it was."""
    worker = os.environ.get("QUEUE_TEST_WORKER", "unnamed")
    results = []
    for folder, seconds, value in payloads:
        (Path(folder) / f"{worker}-{os.getpid()}").touch()
        time.sleep(seconds)
        results.append((worker, value))
    return results
