"""The docs tier: the examples of README.md and docs/*.md, checked by the real tools.

Every command a test runs here runs in the suite's safe environment (fake credentials, EC2
and IMDS endpoints on a closed loopback port, see tests/conftest.py) or against a sandbox this
tier starts on free loopback ports and stops by its PID at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.integration.test_sandbox import free_base

VENV_BIN = Path(sys.executable).parent
READY_WITHIN = 90.0  # a loaded machine imports moto slowly
STEP = "@@docs-step@@"


def shell_env(**extra: str) -> dict[str, str]:
    """The environment a page's commands run in: this venv's eipha first on PATH, output
    unbuffered so that stdout and stderr interleave as on a terminal."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("EIPHA_CONFIG", None)
    env.update(extra)
    return env


def run_steps(
    lines: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float = 180
) -> list[list[str]]:
    """Run ``lines`` in one bash, in order (variables and ``eval`` carry over, as in one
    shell), stderr with stdout; what each line printed."""
    script = "exec 2>&1\n" + "".join(f"echo {STEP}\n{line}\n" for line in lines)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    chunks: list[list[str]] = []
    for line in result.stdout.split("\n"):
        if line == STEP:
            chunks.append([])
        elif chunks:
            chunks[-1].append(line)
    for chunk in chunks:
        while chunk and chunk[-1] == "":
            chunk.pop()
    assert len(chunks) == len(lines), result.stdout
    return chunks


class Sandbox:
    """``eipha sandbox`` on free ports, its default directory under a private
    XDG_RUNTIME_DIR (so the lines it prints are the ones a person sees); stdout collected."""

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.port = free_base()
        self.env = shell_env(XDG_RUNTIME_DIR=str(runtime_dir))
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "eipha"), "sandbox", "--port", str(self.port)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        began = time.monotonic()
        while not any(line.startswith("ready: ") for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() - began > READY_WITHIN:
                self.stop()
                raise AssertionError("the sandbox did not start:\n" + "\n".join(self.lines))
            time.sleep(0.1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def ports(self, line: str) -> str:
        """A line of the docs with the default ports (7780 to 7783) made this sandbox's."""
        for offset in range(4):
            line = line.replace(f"127.0.0.1:{7780 + offset}", f"127.0.0.1:{self.port + offset}")
        return line

    def home(self) -> None:
        """Both EIPs on their home nodes, as a fresh sandbox has them."""
        for node, eip in (("lb-a", "web-a"), ("lb-b", "web-b")):
            out = run_steps(
                [f'eval "$(eipha sandbox --env {node})"', f"eipha -q start {eip}"],
                self.runtime_dir,
                self.env,
            )
            assert out == [[], []], out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    runtime = tmp_path_factory.mktemp("xdg-runtime")
    runtime.chmod(0o700)
    box = Sandbox(runtime)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What ``eipha drill --simulate`` prints on stdout, run once for every page."""
    result = subprocess.run(
        [str(VENV_BIN / "eipha"), "drill", "--simulate"],
        cwd=tmp_path_factory.mktemp("story"),
        env=shell_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.rstrip("\n").split("\n")
