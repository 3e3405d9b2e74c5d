"""The namespace lab: two EC2 "nodes" with real cluster managers, and an "infra" namespace.

    infra (netns)  bridge br0: 10.0.0.2 (the simulated EC2 API, moto, port 5000)
                               169.254.169.254 (one IMDSv2 double, answering each node by
                               its source address, with instance-role credentials)
      |- veth - lb-a (netns + UTS + mount + PID ns): eth0 10.0.0.11/24, MAC 0a:..:0a
      |- veth - lb-b (netns + UTS + mount + PID ns): eth0 10.0.0.21/24, MAC 0a:..:0b

The moto server and the IMDS double run as threads of the test process, listening inside
the infra namespace (their sockets were made there, see ``in_netns``), so tests read EC2's
state and the request log directly. Each node is a holder process (PID 1 of its own PID
namespace, with its own hostname and a private /run, /etc/ha.d, /var/lib/heartbeat,
/etc/keepalived and /etc/default); daemons run inside it through nsenter with a bare
environment, as init would start them. Killing the holder kills everything in the node.
/sbin/reboot and /sbin/init are replaced inside the nodes by a guard that records the call:
Heartbeat's reboot on a failed stop must never reach the real machine, and a test fails if
it would have run.

Nothing is added to the machine's own network namespace; everything is removed on close.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from eipha.sim.imds_double import ImdsDouble, node_metadata
from eipha.sim.netns import Netns, in_netns, ip
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_client

ROOT = Path(__file__).resolve().parents[2]
EIPHA_BIN = Path(sys.executable).parent / "eipha"
API = "10.0.0.2"
API_PORT = 5000
IMDS = "169.254.169.254"
ROLE = "eipha-lab"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# PID 1 of a node: reaps every orphan (daemons that died must not linger as zombies, or
# Heartbeat believes its old PID is still running), and otherwise sleeps.
REAPER = (
    "import os, time\n"
    "while True:\n"
    "    try:\n"
    "        os.wait()\n"
    "    except ChildProcessError:\n"
    "        time.sleep(0.2)\n"
)
GUARD = """#!/bin/sh
# eipha lab: this node tried to run "$0 $*"; a real machine would have rebooted.
echo "$0 $*" >> {marker}
exit 0
"""


def wait_for(what: str, check: Callable[[], bool], timeout: float, step: float = 0.1) -> float:
    """Poll until ``check()``; return the seconds it took, or fail naming ``what``."""
    began = time.monotonic()
    while True:
        if check():
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


@dataclass
class Node:
    """One simulated load balancer: a network namespace and a holder process."""

    name: str
    mac: str
    primary: str
    peer: str
    dir: Path
    netns: Netns
    holder: subprocess.Popen[bytes] | None = None
    init_pid: int = 0  # host PID of the node's PID 1

    @property
    def reboot_marker(self) -> Path:
        return self.dir / "reboot-attempted"

    def boot(self) -> None:
        """Start the holder: hostname, private directories, reboot guard; then sleep."""
        for sub in ("ha.d", "keepalived", "default", "log"):
            (self.dir / sub).mkdir(exist_ok=True)
        if not (self.dir / "lib-heartbeat").exists():
            shutil.copytree("/var/lib/heartbeat", self.dir / "lib-heartbeat", symlinks=True)
        guard = self.dir / "guard"
        guard.write_text(GUARD.format(marker=self.reboot_marker))
        guard.chmod(0o755)
        mounts = [
            f"hostname {self.name}",
            "mount -t tmpfs -o mode=0755 lab-run /run",
            "mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/eipha",
            f"mount --bind {self.dir}/ha.d /etc/ha.d",
            f"mount --bind {self.dir}/lib-heartbeat /var/lib/heartbeat",
            f"mount --bind {self.dir}/keepalived /etc/keepalived",
            f"mount --bind {self.dir}/default /etc/default",
            f"mount --bind {guard} /sbin/reboot",
            f"mount --bind {guard} /sbin/init",
            f"exec {sys.executable} -c '{REAPER}'",
        ]
        cmd = [
            "unshare",
            "--uts",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-ec",
            "; ".join(mounts),
        ]
        self.holder = self.netns.popen(cmd)
        self.init_pid = 0

        def started() -> bool:
            children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children")  # type: ignore[union-attr]
            pids = children.read_text().split() if children.exists() else []
            if pids and "while True" in Path(f"/proc/{pids[0]}/cmdline").read_text():
                self.init_pid = int(pids[0])
                return True
            return False

        wait_for(f"{self.name} to boot", started, 10, 0.02)

    def argv(self, cmd: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        """``cmd`` inside the node, with a bare environment unless ``env`` is given."""
        bare = ["env", "-i", f"PATH={PATH}", *(f"{k}={v}" for k, v in (env or {}).items())]
        return ["nsenter", "-t", str(self.init_pid), "-n", "-u", "-m", "-p", "--", *bare, *cmd]

    def run(
        self, cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(cmd, env), capture_output=True, text=True, timeout=timeout, check=False
        )

    def file(self, path: str) -> Path:
        """A path inside the node's mount namespace, seen from outside."""
        return Path(f"/proc/{self.init_pid}/root") / path.lstrip("/")

    def pids(self, comm: str) -> list[int]:
        """PIDs (inside the node) of this node's processes named ``comm``."""
        found = []
        for entry in self.file("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() == comm:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def kill(self, comm: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal this node's ``comm`` processes, by PID."""
        pids = self.pids(comm)
        if pids:
            self.run(["kill", f"-{int(sig)}", *map(str, pids)])
        return pids

    def halt(self) -> None:
        """Kill the node outright: its PID 1 goes, and with it everything inside."""
        # nsenter stops itself when the process it runs is stopped (SIGSTOP tests): wake
        # every process this node started, so that each can see its child die and exit
        for proc in [*self.netns.procs, *([self.holder] if self.holder else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        if self.init_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self.holder is not None:
            self.holder.wait(timeout=10)
        self.init_pid = 0


@dataclass
class Lab:
    tmp: Path
    infra: Netns
    region: SimulatedRegion
    imds: ImdsDouble
    world: World
    nodes: dict[str, Node] = field(default_factory=dict)
    _client: Any = None
    _client_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(cls) -> Lab:
        tmp = Path(tempfile.mkdtemp(prefix="eipha-lab-"))
        tmp.chmod(0o755)
        infra = Netns("eipha-infra")
        lab: Lab | None = None
        try:
            for args in (
                ("link", "add", "br0", "type", "bridge"),
                ("addr", "add", f"{API}/24", "dev", "br0"),
                ("addr", "add", f"{IMDS}/32", "dev", "br0"),
                ("link", "set", "br0", "up"),
            ):
                ip("-n", infra.name, *args)
            with in_netns(infra.name):
                region = SimulatedRegion(API, API_PORT, lab_namespace=infra.name).start()
                imds = ImdsDouble(host=IMDS, port=80).start()
                world = build_pair(region)
            lab = cls(tmp, infra, region, imds, world)
            for name, peer in (("lb-a", "lb-b"), ("lb-b", "lb-a")):
                lab._add_node(name, peer)
            return lab
        except BaseException:
            if lab is not None:
                lab.close()
            else:
                infra.close()
                shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _add_node(self, name: str, peer: str) -> None:
        spec = self.world.nodes[name]
        ns = Netns(f"eipha-{name}")
        node = Node(
            name, spec.mac, spec.primary_ip, self.world.nodes[peer].primary_ip, self.tmp / name, ns
        )
        self.nodes[name] = node
        node.dir.mkdir()
        veth = f"v-{name}"
        ip(
            "-n",
            self.infra.name,
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name,
        )
        ip("-n", self.infra.name, "link", "set", veth, "master", "br0", "up")
        ip("-n", ns.name, "link", "set", "eth0", "address", spec.mac)
        ip("-n", ns.name, "addr", "add", f"{spec.primary_ip}/24", "dev", "eth0")
        ip("-n", ns.name, "link", "set", "eth0", "up")
        ip("-n", ns.name, "route", "add", f"{IMDS}/32", "dev", "eth0")
        self.imds.serve_client(spec.primary_ip, self._metadata(name))
        node.boot()
        self._configure(node)

    def _metadata(self, name: str) -> dict[str, str]:
        n = self.world.nodes[name]
        data = node_metadata(
            n.instance_id,
            self.world.region,
            f"{self.world.region}a",
            [(n.mac, n.eni_id, 0, n.primary_ip, n.secondary_ips, n.subnet_cidr)],
        )
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
        creds = {
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": f"ASIALAB{name.upper()}",
            "SecretAccessKey": "lab-secret",
            "Token": "lab-token",
            "LastUpdated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        data[f"meta-data/iam/security-credentials/{ROLE}"] = json.dumps(creds)
        return data

    def _configure(self, node: Node) -> None:
        """The files every manager needs: eipha's config, /etc/default/eipha, the shims."""
        config = {
            "node_name": node.name,
            "timeout": 10,
            "nodes": {
                n.name: {"instance_id": n.instance_id, "address": n.primary_ip}
                for n in self.world.nodes.values()
            },
            "eips": {
                e.name: {"allocation_id": e.allocation_id, "home": e.home}
                for e in self.world.eips.values()
            },
        }
        (node.dir / "eipha.yaml").write_text(json.dumps(config))
        defaults = node.dir / "default"
        for item in Path("/etc/default").iterdir():
            if item.is_file():
                shutil.copy2(item, defaults / item.name)
        (defaults / "eipha").write_text(
            f"AWS_ENDPOINT_URL_EC2=http://{API}:{API_PORT}\nEIPHA_CONFIG={node.dir}/eipha.yaml\n"
        )

    def shim(self, source: str | Path, target: Path) -> None:
        """Install a script (a path under src/eipha/resource_agents/, or any file) with the
        eipha path fixed, as an installer would; root-owned, mode 0755."""
        path = (
            source
            if isinstance(source, Path)
            else ROOT / "src" / "eipha" / "resource_agents" / source
        )
        text = path.read_text()
        target.write_text(text.replace("/usr/local/bin/eipha", str(EIPHA_BIN)))
        target.chmod(0o755)

    # -- observing EC2 ---------------------------------------------------------------------

    def where(self, eip: str) -> tuple[str | None, str | None]:
        """(node, private IP) that EC2 has the EIP on now."""
        with self._client_lock, in_netns(self.infra.name):
            if self._client is None:
                self._client = ec2_client(self.region)
            [address] = self._client.describe_addresses(
                AllocationIds=[self.world.eips[eip].allocation_id]
            )["Addresses"]
        return self.world.placement(address)

    def wait_where(
        self, eip: str, expected: tuple[str | None, str | None], timeout: float
    ) -> float:
        return wait_for(f"{eip} on {expected}", lambda: self.where(eip) == expected, timeout)

    def reboots(self) -> list[str]:
        return [
            f"{n.name}: {n.reboot_marker.read_text().strip()}"
            for n in self.nodes.values()
            if n.reboot_marker.exists()
        ]

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        for node in self.nodes.values():
            node.halt()
            node.netns.close()
        self.imds.stop()
        self.region.stop()
        self.infra.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_quiet(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kwargs)


# -- HAProxy labs: a bridge of plain namespaces (tests/system/test_haproxy_*.py) -----------

# A web server: answers every GET with "<name> <path>" (so each answer names who served it)
# and echoes in headers what it saw: X-Forwarded-For, X-Forwarded-Proto, the peer address.
WEB_SERVER = """
import http.server, sys
name, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{name} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-For", self.headers.get("X-Forwarded-For", "-"))
        self.send_header("X-Seen-Proto", self.headers.get("X-Forwarded-Proto", "-"))
        self.send_header("X-Seen-Peer", self.client_address[0])
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a health check that hangs up early is no error
Server(("0.0.0.0", port), Handler).serve_forever()
"""

# systemctl for a node without systemd, for the haproxy role's handler: `reload haproxy` is
# what Debian's haproxy.service does (check the config, then SIGUSR2 to the master);
# `show haproxy` says active while the master runs. Every call is recorded.
SYSTEMCTL_DOUBLE = """#!/bin/sh
printf '%s\\n' "$*" >> {calls}
pid=$(cat {pidfile} 2>/dev/null)
case "$1" in
show)
    state=inactive; kill -0 "$pid" 2>/dev/null && state=active
    printf 'Id=%s\\nLoadState=loaded\\nActiveState=%s\\nUnitFileState=enabled\\n' "$2" "$state" ;;
is-enabled) echo enabled ;;
reload) haproxy -c -q -f {config} && kill -USR2 "$pid" ;;
esac
"""


def listening(ns: Netns, address: str, port: int) -> bool:
    with in_netns(ns.name), socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


def wait_listening(ns: Netns, address: str, port: int, what: str) -> None:
    wait_for(f"{what} listening on {address}:{port}", lambda: listening(ns, address, port), 10)


def serve_web(ns: Netns, name: str, address: str, port: int) -> subprocess.Popen[bytes]:
    proc = ns.popen([sys.executable, "-c", WEB_SERVER, name, str(port)])
    wait_listening(ns, address, port, name)
    return proc


def stats(socket_path: Path, command: str = "show stat") -> list[list[str]]:
    """A command on HAProxy's admin socket; its CSV or table rows (comment lines dropped)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = [line for line in data.decode().splitlines() if line and line[0] != "#"]
    return [line.split("," if command == "show stat" else " ") for line in lines]


def servers(socket_path: Path, backend: str | None = None) -> dict[str, str]:
    """`show stat`: server -> status (UP, DOWN, MAINT, ...), of one backend or all."""
    return {
        row[1]: row[17]
        for row in stats(socket_path)
        if row[1] not in ("FRONTEND", "BACKEND") and backend in (None, row[0])
    }


@dataclass
class HttpLab:
    """Plain namespaces on one bridge (10.0.1.0/24): each name in ``hosts`` has one address."""

    tmp: Path
    bridge: Netns
    hosts: dict[str, Netns]
    addresses: dict[str, str]

    @classmethod
    def build(cls, tmp: Path, addresses: dict[str, str]) -> HttpLab:
        bridge = Netns("eipha-hxnet")
        lab = cls(tmp, bridge, {}, dict(addresses))
        try:
            ip("-n", bridge.name, "link", "add", "br0", "type", "bridge")
            ip("-n", bridge.name, "link", "set", "br0", "up")
            for name, address in addresses.items():
                lab.add(name, address)
        except BaseException:
            lab.close()
            raise
        return lab

    def add(self, name: str, address: str) -> Netns:
        ns = Netns(f"eipha-hx{name.replace('-', '')}")
        self.hosts[name] = ns
        self.addresses[name] = address
        veth = f"hx{len(self.hosts)}"
        peer = ("peer", "name", "eth0", "netns", ns.name)
        ip("-n", self.bridge.name, "link", "add", veth, "type", "veth", *peer)
        ip("-n", self.bridge.name, "link", "set", veth, "master", "br0", "up")
        ip("-n", ns.name, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns.name, "link", "set", "eth0", "up")
        return ns

    def haproxy(self, host: str, config: Path, pidfile: Path) -> subprocess.Popen[bytes]:
        """HAProxy in master-worker mode, as Debian's unit runs it (reloaded by SIGUSR2)."""
        check = self.hosts[host].run(["haproxy", "-c", "-f", str(config)])
        assert check.returncode == 0, check.stdout + check.stderr
        cmd = ["haproxy", "-W", "-db", "-f", str(config), "-p", str(pidfile)]
        with (self.tmp / f"haproxy-{host}.log").open("a") as log:
            return self.hosts[host].popen(cmd, stdout=log, stderr=log)

    def close(self) -> None:
        for ns in reversed(list(self.hosts.values())):
            ns.close()
        self.bridge.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
