"""``eipha sandbox`` end to end: the sandbox and every eipha command are real subprocesses.

The sandbox runs on free loopback ports in a temporary ``--dir``; a shell becomes a node by
the lines ``eipha sandbox --env NODE`` prints, as a person pastes them. Every process a test
starts is killed by its PID at the end, also when the test fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EIPHA = [sys.executable, "-m", "eipha"]
READY_WITHIN = 60.0  # generous: a loaded CI machine imports moto slowly


def free_base() -> int:
    """A base port whose four ports (the sandbox uses N to N+3) are free on 127.0.0.1 now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base > 65535 - 3:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + 4):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no four free consecutive ports on 127.0.0.1")


def bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Sandbox:
    """``eipha sandbox`` as a subprocess; its stdout collected line by line as it comes."""

    def __init__(self, directory: Path, port: int, *args: str) -> None:
        self.directory = directory
        self.port = port
        self.proc = subprocess.Popen(
            [*EIPHA, "sandbox", "--dir", str(directory), "--port", str(port), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float = 15.0) -> str:
        """The first stdout line that starts with ``prefix`` (after any indentation)."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((x for x in self.lines if x.lstrip().startswith(prefix)), None)
                if found is not None:
                    return found
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no line {prefix!r} from the sandbox; stdout so far:\n"
                        + "\n".join(self.lines)
                        + f"\nstderr: {self.stderr_if_ended()}"
                    )
                self._changed.wait(min(left, 0.2))

    def stderr_if_ended(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    def ended(self, timeout: float = 30.0) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()

    def kill(self) -> None:
        """Ours only, by PID: whatever state the test left it in."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def running(directory: Path, *args: str) -> Iterator[Sandbox]:
    sandbox = Sandbox(directory, free_base(), *args)
    try:
        sandbox.wait_for("ready:", READY_WITHIN)
        yield sandbox
    finally:
        sandbox.kill()


def eipha(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EIPHA, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def node_env(directory: Path, node: str) -> dict[str, str]:
    """This process's environment changed as the ``--env`` lines say (unset, export)."""
    result = eipha("sandbox", "--dir", str(directory), "--env", node)
    assert result.returncode == 0, result.stderr
    env = dict(os.environ)
    for line in result.stdout.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] in ("unset", "export"), line
        for word in words[1:]:
            if words[0] == "unset":
                env.pop(word, None)
            else:
                name, _, value = word.partition("=")
                env[name] = value
    return env


def show(env: dict[str, str]) -> dict[str, tuple[str | None, str | None, str]]:
    """``eipha show --json`` as {EIP: (node now, private IP now, state)}."""
    result = eipha("show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["eips"]
    return {r["eip"]: (r["now"]["node"], r["now"]["private_ip"], r["state"]) for r in rows}


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("eipha: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def router_says(sandbox: Sandbox, eip: str) -> str:
    url = f"http://127.0.0.1:{sandbox.port + 3}/{eip}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as answer:
        return str(answer.read().decode().strip())


def test_every_command_works_against_a_running_sandbox(tmp_path: Path):
    directory = tmp_path / "sandbox"
    with running(directory) as sandbox:
        out = "\n".join(sandbox.lines)
        assert f'eval "$(eipha sandbox --dir {directory} --env lb-a)"' in out
        assert "web-b  eipalloc-" in out
        assert "home lb-b, on 10.0.0.21" in out
        assert "lb-a  i-" in out
        assert "primary 10.0.0.11  secondary 10.0.0.12" in out
        # owner-only: the directory and the configs
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "lb-a.yaml").stat().st_mode) == 0o600
        lb_a, lb_b = node_env(directory, "lb-a"), node_env(directory, "lb-b")
        assert lb_a["EIPHA_CONFIG"] == str(directory / "lb-a.yaml")
        assert eipha("config", "check", lb_a["EIPHA_CONFIG"], env=lb_a).returncode == 0

        # the eval form, as a person pastes it into a shell
        script = 'eval "$("$PY" -m eipha sandbox --dir "$DIR" --env lb-a)"; "$PY" -m eipha show'
        pasted = subprocess.run(
            ["sh", "-c", script],
            env={**os.environ, "PY": sys.executable, "DIR": str(directory)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert pasted.returncode == 0, pasted.stderr
        table = [line.split() for line in pasted.stdout.splitlines()]
        assert [table[1][i] for i in (0, 2, 4, -1)] == ["web-a", "lb-a", "10.0.0.11", "home"]

        # a healthy pair to start with: each EIP at home, and clients see that node
        assert show(lb_a) == {
            "web-a": ("lb-a", "10.0.0.11", "home"),
            "web-b": ("lb-b", "10.0.0.21", "home"),
        }
        assert router_says(sandbox, "web-b") == "served by lb-b"
        status = eipha("status", "web-a", env=lb_a)
        assert (status.returncode, status.stdout.strip()) == (0, "running")
        status = eipha("status", "web-b", env=lb_a)
        assert (status.returncode, status.stdout.strip()) == (3, "not running")

        # lb-a takes over the peer's EIP: onto its secondary IP, web-a untouched
        assert eipha("start", "web-b", env=lb_a).returncode == 0
        assert show(lb_a) == {
            "web-a": ("lb-a", "10.0.0.11", "home"),
            "web-b": ("lb-a", "10.0.0.12", "away"),
        }
        assert eipha("status", "web-b", env=lb_a).returncode == 0
        assert eipha("status", "web-b", env=lb_b).returncode == 3
        assert router_says(sandbox, "web-b") == "served by lb-a"
        # the sandbox's log says who did what, by name
        line = sandbox.wait_for("now: web-a on lb-a 10.0.0.11; web-b on lb-a 10.0.0.12")
        assert line
        associate = [x for x in sandbox.lines if "lb-a: AssociateAddress" in x]
        assert associate, sandbox.lines
        assert (
            "AllocationId=web-b NetworkInterfaceId=lb-a PrivateIpAddress=10.0.0.12"
            in (associate[-1])
        )
        assert associate[-1].endswith("-> ok")

        # lb-a lets it go; lb-b takes it home
        assert eipha("stop", "web-b", env=lb_a).returncode == 0
        assert show(lb_a)["web-b"] == (None, None, "unassociated")
        assert eipha("status", "web-b", env=lb_a).returncode == 3
        assert eipha("start", "web-b", env=lb_b).returncode == 0
        assert show(lb_b)["web-b"] == ("lb-b", "10.0.0.21", "home")

        # a drill, probing through the router, and back
        drill = eipha(
            "drill",
            "web-a",
            "--to",
            "lb-b",
            "--back",
            "--settle",
            "0.3",
            "--probe",
            f"http://127.0.0.1:{sandbox.port + 3}/web-a",
            "--json",
            env=lb_a,
        )
        assert drill.returncode == 0, drill.stderr
        report = json.loads(drill.stdout)
        assert report["ok"] is True
        assert show(lb_a)["web-a"] == ("lb-a", "10.0.0.11", "home")

        # validate: everything EC2 and IMDS can tell passes; the OS side is a plain warning
        checks = eipha("validate", "--json", env=lb_a)
        assert checks.returncode == 0, checks.stdout + checks.stderr
        by_name = {c["check"]: c for c in json.loads(checks.stdout)}
        assert {c["status"] for c in by_name.values()} <= {"ok", "warn", "skip"}
        os_check = by_name["OS interface"]
        assert os_check["status"] == "warn"
        assert "0a:00:00:00:00:0a" in os_check["detail"]
        assert "not that instance" in os_check["detail"]
        assert by_name["IAM ec2:AssociateAddress"]["status"] == "ok"

        # a second sandbox notices the first: same directory, or only the same ports
        again = eipha("sandbox", "--dir", str(directory), "--port", str(sandbox.port))
        assert again.returncode == 1
        assert f"already running in {directory} (pid {sandbox.proc.pid})" in one_error_line(
            again.stderr
        )
        other = tmp_path / "other"
        again = eipha("sandbox", "--dir", str(other), "--port", str(sandbox.port))
        assert again.returncode == 1
        line = one_error_line(again.stderr)
        assert f"ports {sandbox.port} (the simulated EC2 API), " in line
        assert f"and {sandbox.port + 3} (the router) are in use" in line
        assert "--port N" in line
        assert not other.exists()
        assert show(lb_a)["web-a"] == ("lb-a", "10.0.0.11", "home")  # the first one is fine

        # Ctrl-C: exit 0, every server down, every file gone
        sandbox.proc.send_signal(signal.SIGINT)
        code, err = sandbox.ended()
        assert code == 0, err
        assert err == ""
        assert sandbox.lines[-1] == f"stopped; {directory} is removed"
        assert not directory.exists()
        assert all(bindable(p) for p in range(sandbox.port, sandbox.port + 4))
        gone = eipha("sandbox", "--dir", str(directory), "--env", "lb-a")
        assert gone.returncode == 3
        assert f"no eipha sandbox is running in {directory}" in one_error_line(gone.stderr)


def test_after_sigkill_nothing_runs_and_the_next_sandbox_clears_the_leftovers(tmp_path: Path):
    directory = tmp_path / "sandbox"
    with running(directory) as killed:
        killed.proc.kill()  # SIGKILL: no clean-up; its files stay
        killed.ended()
    assert (directory / "sandbox.json").exists()
    stale = eipha("sandbox", "--dir", str(directory), "--env", "lb-a")
    assert stale.returncode == 3
    assert "no eipha sandbox is running" in one_error_line(stale.stderr)

    sandbox = Sandbox(directory, free_base(), "--for", "1")
    try:
        sandbox.wait_for("ready:", READY_WITHIN)
        assert node_env(directory, "lb-a")["AWS_ENDPOINT_URL_EC2"].endswith(f":{sandbox.port}")
        code, err = sandbox.ended(READY_WITHIN)  # --for ends it by itself
        assert code == 0, err
        assert "stopping (--for 1 s elapsed)" in sandbox.lines
        assert not directory.exists()  # it held only a sandbox's files: it goes too
    finally:
        sandbox.kill()


def test_a_directory_of_the_users_keeps_everything_but_the_sandboxs_files(tmp_path: Path):
    directory = tmp_path / "mine"
    directory.mkdir(mode=0o700)
    (directory / "notes.txt").write_text("mine")
    with running(directory) as sandbox:
        assert (directory / "lb-b.yaml").exists()
        sandbox.proc.send_signal(signal.SIGTERM)
        code, err = sandbox.ended()
        assert code == 0, err
    assert sorted(os.listdir(directory)) == ["notes.txt"]


def test_a_taken_port_is_refused_with_one_line_and_nothing_is_left(tmp_path: Path):
    base = free_base()
    directory = tmp_path / "sandbox"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 2))
        holder.listen()
        result = eipha("sandbox", "--dir", str(directory), "--port", str(base))
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"127.0.0.1 port {base + 2} (lb-b's IMDSv2 metadata) is in use" in line
    assert "--port N" in line
    assert result.stdout == ""
    assert not directory.exists()
    assert all(bindable(p) for p in range(base, base + 4))


def test_a_sandbox_still_starting_in_the_directory_is_left_alone(tmp_path: Path):
    """The first sandbox holds the directory's lock from before it binds until it is gone;
    a second one that passed the port check at the same moment must not touch its files."""
    directory = tmp_path / "sandbox"
    directory.mkdir(mode=0o700)
    (directory / "lb-a.yaml").write_text("the first sandbox's")
    fd = os.open(directory / ".sandbox.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = eipha("sandbox", "--dir", str(directory), "--port", str(free_base()))
    finally:
        os.close(fd)
    assert result.returncode == 1
    assert f"another sandbox is starting or running in {directory}" in one_error_line(result.stderr)
    assert (directory / "lb-a.yaml").read_text() == "the first sandbox's"


def test_an_unsafe_directory_is_refused(tmp_path: Path):
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o777)
    result = eipha("sandbox", "--dir", str(directory), "--port", str(free_base()))
    assert result.returncode == 4
    line = one_error_line(result.stderr)
    assert f"unsafe sandbox directory {directory}" in line
    assert "writable by group or others: mode 0777" in line
    assert os.listdir(directory) == []


def test_without_the_simulate_extra_it_names_the_pip_command(tmp_path: Path):
    code = (
        "import sys\n"
        "sys.modules['moto'] = None  # as if the simulate extra were not installed\n"
        "from eipha.program import main\n"
        f"sys.exit(main(['sandbox', '--dir', {str(tmp_path / 'sb')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 5
    assert "pip install 'eipha[simulate]'" in one_error_line(result.stderr)
    assert not (tmp_path / "sb").exists()
