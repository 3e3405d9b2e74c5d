"""HAProxy, configured by the Ansible haproxy role, serving real HTTP in a namespace lab.

    bridge namespace br0 (10.0.1.0/24)
      |- lb      10.0.1.5 (primary) + 10.0.1.6 added later (a peer's EIP after a takeover)
      |          HAProxy with the haproxy.cfg the role rendered for lb-a
      |- web-1   10.0.1.11:80      tiny HTTP servers that answer with their own name
      |- web-2   10.0.1.12:80
      |- web-3   10.0.1.13:80      exclude_from_loadbalancer: true (drained)
      |- api-1   10.0.1.21:8080
      |- client  10.0.1.100

The inventory's `web` group feeds backend `web` and the `api` group backend `api`; requests
for host api.example.com, or for www.example.com under /v1/, go to `api`; everything else
to `web`. Every namespace and process here is this test's own and goes when it ends.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from eipha.sim.netns import Netns, in_netns, ip
from tests.ansible.staging import converge
from tests.system.lab import wait_for

LB, LB_SECONDARY, CLIENT = "10.0.1.5", "10.0.1.6", "10.0.1.100"
BACKENDS = {  # name: (address, port, group, excluded)
    "web-1": ("10.0.1.11", 80, "web", False),
    "web-2": ("10.0.1.12", 80, "web", False),
    "web-3": ("10.0.1.13", 80, "web", True),
    "api-1": ("10.0.1.21", 8080, "api", False),
}

# A backend: answers every GET with "<name> <path>", so each answer names who served it.
SERVER = """
import http.server, sys
name, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
"""


@dataclass
class HttpLab:
    tmp: Path
    bridge: Netns
    hosts: dict[str, Netns]
    stats_socket: Path

    def get(self, address: str, path: str, host: str) -> str:
        """One request from the client namespace; the answering backend's body."""
        with in_netns(self.hosts["client"].name):
            conn = http.client.HTTPConnection(address, 80, timeout=5)
            try:
                conn.request("GET", path, headers={"Host": host})
                response = conn.getresponse()
                body = response.read().decode()
                assert response.status == 200, f"{host}{path} via {address}: {response.status}"
                return body
            finally:
                conn.close()

    def servers(self) -> dict[str, str]:
        """`show stat` through the stats socket the role configured: server -> status."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line and line[0] != "#"]
        return {row[1]: row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def inventory() -> dict[str, object]:
    groups: dict[str, dict[str, object]] = {}
    for name, (address, _port, group, excluded) in BACKENDS.items():
        host: dict[str, object] = {"ansible_host": address}
        if excluded:
            host["exclude_from_loadbalancer"] = True
        groups.setdefault(group, {"hosts": {}})["hosts"][name] = host  # type: ignore[index]
    lb = {
        "lb-a": {
            "ansible_host": LB,
            "eipha_instance_id": "i-0aaaaaaaaaaaaaaaa",
            "eipha_address": LB,
            "eipha_home_eips": {"web-a": "eipalloc-0123456789abcdef0"},
        },
        "lb-b": {
            "ansible_host": "10.0.1.7",
            "eipha_instance_id": "i-0bbbbbbbbbbbbbbbb",
            "eipha_address": "10.0.1.7",
            "eipha_home_eips": {"web-b": "eipalloc-0fedcba9876543210"},
        },
    }
    return {"all": {"children": {"lb": {"hosts": lb}, **groups}}}


def render(tmp: Path, stats_socket: Path) -> Path:
    """Converge site.yml for lb-a into a staging root; the haproxy.cfg the role wrote."""
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory()))
    extra = {
        "haproxy_backends": [
            {"name": "web", "group": "web", "port": 80, "check_path": "/healthz"},
            {"name": "api", "group": "api", "port": 8080, "check_path": "/healthz"},
        ],
        "haproxy_routes": [
            {"name": "api", "hosts": ["api.example.com"], "backend": "api"},
            {
                "name": "v1",
                "hosts": ["www.example.com"],
                "path_prefixes": ["/v1/"],
                "backend": "api",
            },
        ],
        "haproxy_default_backend": "web",
        # run as the starting user, no chroot; the stats socket where the test can reach it
        "haproxy_user": "",
        "haproxy_chroot": "",
        "haproxy_stats_socket": str(stats_socket),
    }
    result = converge(tmp / "staging", "heartbeat", extra, inventory=path, limit="lb-a")
    assert result.returncode == 0, result.output
    return tmp / "staging" / "lb-a" / "etc" / "haproxy" / "haproxy.cfg"


def attach(bridge: Netns, ns: Netns, address: str, n: int) -> None:
    veth = f"hx{n}"
    peer = ("peer", "name", "eth0", "netns", ns.name)
    ip("-n", bridge.name, "link", "add", veth, "type", "veth", *peer)
    ip("-n", bridge.name, "link", "set", veth, "master", "br0", "up")
    ip("-n", ns.name, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", ns.name, "link", "set", "eth0", "up")


def listening(ns: Netns, address: str, port: int) -> bool:
    with in_netns(ns.name), socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


def wait_listening(ns: Netns, address: str, port: int, what: str) -> None:
    wait_for(f"{what} listening on {address}:{port}", lambda: listening(ns, address, port), 10)


@pytest.fixture
def lab() -> Iterator[HttpLab]:
    tmp = Path(tempfile.mkdtemp(prefix="eipha-haproxy-"))
    spaces: list[Netns] = []
    try:
        stats = tmp / "admin.sock"
        config = render(tmp, stats)
        bridge = Netns("eipha-hxnet")
        spaces.append(bridge)
        ip("-n", bridge.name, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge.name, "link", "set", "br0", "up")
        hosts: dict[str, Netns] = {}
        addresses = {"lb": LB, "client": CLIENT, **{k: v[0] for k, v in BACKENDS.items()}}
        for n, (name, address) in enumerate(addresses.items()):
            ns = Netns(f"eipha-hx{name.replace('-', '')}")
            spaces.append(ns)
            hosts[name] = ns
            attach(bridge, ns, address, n)
        for name, (address, port, _group, _excluded) in BACKENDS.items():
            hosts[name].popen([sys.executable, "-c", SERVER, name, str(port)])
            wait_listening(hosts[name], address, port, name)
        check = hosts["lb"].run(["haproxy", "-c", "-f", str(config)])
        assert check.returncode == 0, check.stdout + check.stderr
        with (tmp / "haproxy.log").open("w") as log:
            hosts["lb"].popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=log)
        wait_listening(hosts["client"], LB, 80, "HAProxy")
        yield HttpLab(tmp, bridge, hosts, stats)
    finally:
        for ns in reversed(spaces):
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_haproxy_from_the_role_balances_routes_and_drains(lab: HttpLab) -> None:
    # health checks (option httpchk GET /healthz) find every server up; the drained one is in
    # maintenance and never checked
    wait_for(
        "health checks to pass",
        lambda: lab.servers() == {"web-1": "UP", "web-2": "UP", "web-3": "MAINT", "api-1": "UP"},
        15,
    )

    # round robin across the two serving web backends; web-3 (excluded) gets nothing
    served = Counter(lab.get(LB, "/", "www.example.com").split()[0] for _ in range(20))
    assert served == Counter({"web-1": 10, "web-2": 10})

    # routing by host, by host + path prefix, and the default backend
    assert lab.get(LB, "/", "api.example.com") == "api-1 /"
    assert lab.get(LB, "/", "API.example.com:80") == "api-1 /"  # case and port ignored
    assert lab.get(LB, "/v1/items", "www.example.com") == "api-1 /v1/items"
    assert lab.get(LB, "/v2/items", "www.example.com").split()[0] in ("web-1", "web-2")
    # the path prefix alone is not enough: both conditions of the route must hold
    assert lab.get(LB, "/v1/items", "other.example.com").split()[0] in ("web-1", "web-2")

    # bind *:80: an address added after start (the peer's EIP landing on our secondary
    # private IP in a takeover) is served at once, without a reload or ip_nonlocal_bind
    ip("-n", lab.hosts["lb"].name, "addr", "add", f"{LB_SECONDARY}/32", "dev", "eth0")
    assert lab.get(LB_SECONDARY, "/", "api.example.com") == "api-1 /"
    assert lab.get(LB_SECONDARY, "/x", "www.example.com").split()[0] in ("web-1", "web-2")

    # taking web-1 down: HAProxy's health check notices and web-2 alone serves
    with contextlib.suppress(subprocess.TimeoutExpired):
        for proc in lab.hosts["web-1"].procs:
            proc.terminate()
            proc.wait(timeout=5)
    wait_for("web-1 marked down", lambda: lab.servers()["web-1"] == "DOWN", 20)
    served = Counter(lab.get(LB, "/", "www.example.com").split()[0] for _ in range(6))
    assert served == Counter({"web-2": 6})
