"""Network namespaces for labs (system tests and benchmarks): root only, iproute2.

Everything happens inside namespaces this module creates, never in the machine's own: a
namespace is created with ``ip netns add``, gets its loopback up, and runs commands with
``ip netns exec``. :meth:`Netns.close` stops every process it started (by PID, never by name)
and deletes the namespace; use it as a context manager so that happens on failure too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the calling thread inside network namespace ``name`` (one this lab created), and
    always bring it back. Sockets made meanwhile stay in that namespace: a server started
    here listens there, while its threads run in this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{name}") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:  # pragma: no cover
                os._exit(70)  # never go on running in the wrong namespace


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Netns:
    """One network namespace and the processes started in it."""

    def __init__(self, prefix: str = "eipha") -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen[Any]] = []
        ip("netns", "add", self.name)
        try:
            ip("-n", self.name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(cmd), capture_output=True, text=True, env=env, timeout=timeout, check=check
        )

    def popen(
        self, cmd: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(self.argv(cmd), env=env, **kwargs)
        self.procs.append(proc)
        return proc

    def addresses(self, ifname: str) -> list[tuple[str, int]]:
        """IPv4 addresses on an interface in this namespace, as (ip, prefixlen)."""
        out = ip("-n", self.name, "-j", "-4", "addr", "show", "dev", ifname).stdout
        return [
            (a["local"], int(a["prefixlen"]))
            for link in json.loads(out or "[]")
            for a in link.get("addr_info", [])
        ]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()
        ip("netns", "del", self.name, check=False)


class NodeNetns(Netns):
    """A namespace playing one EC2 node: interface ``eth0`` (one end of a veth pair, the
    other end ``peer0`` stays inside too) with the node's MAC and primary address, and an
    IMDSv2 double on its own loopback serving ``metadata`` (change it with :meth:`metadata`)."""

    def __init__(self, mac: str, primary: str, prefixlen: int = 24) -> None:
        super().__init__("eipha-node")
        try:
            ip("-n", self.name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
            ip("-n", self.name, "link", "set", "eth0", "address", mac)
            ip("-n", self.name, "addr", "add", f"{primary}/{prefixlen}", "dev", "eth0")
            ip("-n", self.name, "link", "set", "eth0", "up")
            ip("-n", self.name, "link", "set", "peer0", "up")
            self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
            self.dir.chmod(0o755)  # readable by the unprivileged users some tests run as
            self.data_file = self.dir / "imds.json"
            self.imds_endpoint = ""
        except subprocess.CalledProcessError:
            self.close()
            raise

    def start_imds(self, metadata: Mapping[str, str]) -> str:
        self.metadata(metadata)
        port_file = self.dir / "imds.port"
        self.popen(
            [
                sys.executable,
                "-m",
                "eipha.sim.imds_file",
                "--data",
                str(self.data_file),
                "--port-file",
                str(port_file),
            ]
        )
        deadline = time.monotonic() + 15
        while not port_file.exists():
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                raise RuntimeError("the IMDS double did not start in the namespace")
            time.sleep(0.02)
        self.imds_endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}/"
        return self.imds_endpoint

    def metadata(self, data: Mapping[str, str], down: bool = False) -> None:
        """Replace what the IMDS double serves (``down``: every request answers 500)."""
        payload = dict(data)
        if down:
            payload["__down__"] = "1"
        tmp = self.data_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.data_file)
        time.sleep(0.15)  # the double polls the file every 50 ms

    def close(self) -> None:
        super().close()
        directory = getattr(self, "dir", None)
        if directory is not None:
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()
