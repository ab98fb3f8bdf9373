"""The scratch folder's lock tells a running bot process from one that is gone, however it died;
real processes, killed with SIGKILL."""

from __future__ import annotations

import subprocess
import sys

from bot.scratch import Scratch, is_alive

HOLDER = """
import sys, time
from pathlib import Path
from bot.scratch import Scratch
scratch = Scratch(Path(sys.argv[1]))
print(scratch.name, flush=True)
time.sleep(300)
"""


def test_a_lock_tells_a_live_process_from_a_killed_one(tmp_path):
    root = tmp_path / "tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        name = holder.stdout.readline().strip()
        assert name and is_alive(root, name)
        mine = Scratch(root)
        assert is_alive(root, mine.name)  # this process, through a second handle
        holder.kill()
        holder.wait(10)
        assert not is_alive(root, name)  # its lock went with it, though its file stays
        assert (root / f"{name}.lock").exists()
        assert not is_alive(root, "0123456789ab") and not is_alive(root, "../etc")
        mine.close()
        assert not is_alive(root, mine.name)
    finally:
        holder.kill()
        holder.wait(10)
