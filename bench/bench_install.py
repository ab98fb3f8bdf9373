"""How big `make run`'s venv is, and how long a fresh clone takes to compose its first melody.

For each commit: `git clone` into a new folder, then README's `make run` with one console line
piped in (no token is set, so the bot opens the console chat, composes the melody, and exits at
the end of its input). Timed from the clone's start to the melody's reply line and to the exit;
then the venv's size on disk (`du`). Each run gets a fresh folder and a fresh venv.

    python bench/bench_install.py main light-install --runs 3
    python bench/bench_install.py main light-install --cold   # an empty pip cache for each run

Runs alternate between the commits (a, b, a, b, ...) so that a change in the machine's load
falls on both. Without --cold, pip uses the cache given by --pip-cache-dir (default: pip's
own); whether that cache was warm is the caller's to say. The standard library alone: it runs
with any python3, before any venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MELODY = "!melody C4 D4 E4 seed=1\n"
REPLY = "#1 · "  # the console's first line of a melody's reply
TOKENS = ("DISCORD_TOKEN", "TELEGRAM_TOKEN", "MELODYBOT_DISCORD_TOKEN", "MELODYBOT_TELEGRAM_TOKEN")


def _env(pip_cache: Path | None, secrets: Path) -> dict[str, str]:
    """The caller's environment without bot tokens (a token would start a real bot instead of
    the console chat), and the pip cache asked for."""
    env = {k: v for k, v in os.environ.items() if k not in TOKENS}
    env["MELODYBOT_SECRETS_DIR"] = str(secrets)  # empty: no token from a secrets folder either
    if pip_cache is not None:
        env["PIP_CACHE_DIR"] = str(pip_cache)
    return env


def _du(path: Path) -> int:
    """Bytes on disk, as `du -sk` counts them (hard links once, blocks not lengths)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) * 1024


def _machine() -> str:
    """The CPU's model name (as lscpu says it), its cores and the Python that ran this."""
    cpu = platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def one_run(commit: str, repo: Path, workdir: Path, pip_cache: Path | None, keep: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-install-", dir=workdir))
    clone = folder / "melodybot"
    secrets = folder / "secrets"
    secrets.mkdir()
    env = _env(pip_cache, secrets)
    log = folder / "make-run.log"
    started = time.monotonic()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
    cloned = time.monotonic() - started
    reply_at: list[float] = []
    with log.open("w", encoding="utf-8") as out:
        make = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def read() -> None:
            for line in make.stdout:
                if not reply_at and line.startswith(REPLY):
                    reply_at.append(time.monotonic() - started)
                out.write(line)

        reader = threading.Thread(target=read)
        reader.start()
        make.stdin.write(MELODY)
        make.stdin.close()  # the console exits at the end of its input
        code = make.wait()
        reader.join()
    finished = time.monotonic() - started
    venv = clone / ".venv"
    site = next(venv.glob("lib/python*/site-packages"), venv)
    result = {
        "commit": commit,
        "sha": subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "exit_code": code,
        "clone_s": round(cloned, 1),
        "first_melody_s": round(reply_at[0], 1) if reply_at else None,
        "exit_s": round(finished, 1),
        "venv_bytes": _du(venv) if venv.exists() else 0,
        "tensorflow": (site / "tensorflow").exists(),
        "folder": str(folder) if keep else None,
    }
    if code != 0 or not reply_at:
        print(log.read_text()[-3000:], file=sys.stderr)
        result["folder"] = str(folder)  # kept, to see what went wrong
    elif not keep:
        shutil.rmtree(folder)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="+", help="Commits or branches of --repo to measure.")
    parser.add_argument("--repo", type=Path, default=REPO, help="Repository to clone.")
    parser.add_argument("--runs", type=int, default=1, help="Runs per commit (default 1).")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--pip-cache-dir", type=Path, default=None, help="pip's cache for all runs."
    )
    parser.add_argument("--cold", action="store_true", help="A new, empty pip cache each run.")
    parser.add_argument("--keep", action="store_true", help="Keep each clone and its venv.")
    args = parser.parse_args()

    results = []
    for run in range(args.runs):
        for commit in args.commits:
            cache = args.pip_cache_dir
            if args.cold:
                cache = Path(tempfile.mkdtemp(prefix="bench-pip-cache-", dir=args.workdir))
            result = one_run(commit, args.repo, args.workdir, cache, args.keep)
            if args.cold:
                shutil.rmtree(cache)
            result |= {"run": run + 1, "pip_cache": "cold" if args.cold else str(cache or "pip's")}
            results.append(result)
            print(json.dumps(result), flush=True)

    print(f"\n{_machine()}\n")
    print(
        "| commit | runs | venv | TensorFlow | first melody (median) | exit (median) | each run |"
    )
    print("|---|---|---|---|---|---|---|")
    for commit in args.commits:
        mine = [r for r in results if r["commit"] == commit]
        firsts = [r["first_melody_s"] for r in mine if r["first_melody_s"] is not None]
        each = ", ".join(f"{r['first_melody_s']} s" for r in mine)
        size = statistics.median(r["venv_bytes"] for r in mine) / 2**30
        print(
            f"| {commit} | {len(mine)} | {size:.2f} GiB | "
            f"{'yes' if any(r['tensorflow'] for r in mine) else 'no'} | "
            f"{statistics.median(firsts) if firsts else '—'} s | "
            f"{statistics.median(r['exit_s'] for r in mine)} s | {each} |"
        )


if __name__ == "__main__":
    main()
