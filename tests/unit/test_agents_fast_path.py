"""The cluster managers' way in, run as the program: the answer and the exit code survive
the quick exit (``os._exit`` after flushing), and only one-shot calls go without the
cyclic garbage collector."""

from __future__ import annotations

import subprocess
import sys

import pytest

# eipha.agents.fast_path.main replaced by a stub that reports what exit_program set up
STUB = """
import gc, logging, sys
from eipha import logsetup
from eipha.agents import fast_path

def main(argv):
    logsetup.configure(0)  # as fast_path.main does
    print("gc on" if gc.isenabled() else "gc off")  # block-buffered into a pipe: no flush
    logging.getLogger("eipha").error("said on stderr")
    return int(sys.argv[1])

fast_path.main = main
fast_path.exit_program(sys.argv[2:])
"""


def program(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STUB, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("code", [0, 1, 3, 7])
def test_the_answer_and_the_exit_code_survive_the_quick_exit(code: int):
    result = program(str(code), "heartbeat", "web-a", "status")
    assert result.returncode == code
    assert result.stdout == "gc off\n"
    assert result.stderr == "eipha: error: said on stderr\n"


def test_the_fifo_reader_keeps_the_garbage_collector():
    result = program("0", "keepalived", "fifo", "/run/keepalived-eipha.fifo")
    assert (result.returncode, result.stdout) == (0, "gc on\n")


def test_a_closed_stdout_changes_nothing():
    """Started with descriptor 1 closed (sys.stdout is None): no traceback, same exit code."""
    closed = subprocess.run(
        ["sh", "-c", 'exec "$0" -c "$1" 3 heartbeat web-a status >&-', sys.executable, STUB],
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    assert closed.returncode == 3
    assert closed.stderr == "eipha: error: said on stderr\n"
