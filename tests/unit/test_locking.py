"""Per-EIP locks: exclusive across processes, released by the kernel when a holder dies."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from eipha import errors, locking
from eipha.clock import Deadline

HOLD = """
import sys, time
from pathlib import Path
from eipha import locking
from eipha.clock import Deadline
with locking.locked(["eipalloc-0000000a"], Deadline(5), Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def holder(directory):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc):
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_second_holder_waits_until_deadline(tmp_path):
    proc = holder(tmp_path)
    try:
        began = time.monotonic()
        with (
            pytest.raises(errors.DeadlineExceeded, match="another eipha"),
            locking.locked(["eipalloc-0000000a"], Deadline(0.3), tmp_path),
        ):
            pass
        assert time.monotonic() - began >= 0.3
        # a different EIP is not blocked
        with locking.locked(["eipalloc-0000000b"], Deadline(0.3), tmp_path):
            pass
    finally:
        stop(proc)


def test_sigkilled_holder_leaves_no_stale_lock(tmp_path):
    proc = holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    stop(proc)
    with locking.locked(["eipalloc-0000000a"], Deadline(1), tmp_path):
        pass


def test_lock_files_are_owner_only(tmp_path):
    with locking.locked(["eipalloc-0000000a"], Deadline(1), tmp_path / "locks"):
        pass
    mode = stat.S_IMODE((tmp_path / "locks" / "eipalloc-0000000a.lock").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o700


def test_lock_dir_honours_eipha_run_dir(tmp_path):
    assert locking.lock_dir({"EIPHA_RUN_DIR": str(tmp_path)}) == tmp_path / "locks"
