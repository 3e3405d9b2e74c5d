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
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from eipha.sim.netns import in_netns, ip
from tests.ansible.staging import REPO, converge
from tests.system.lab import HttpLab, serve_web, servers, wait_for, wait_listening

# the haproxy role alone (site.yml would also deploy eipha and a cluster manager)
ONLY = str(REPO / "tests" / "ansible" / "haproxy-only.yml")
LB, LB_SECONDARY, CLIENT = "10.0.1.5", "10.0.1.6", "10.0.1.100"
BACKENDS = {  # name: (address, port, group, excluded)
    "web-1": ("10.0.1.11", 80, "web", False),
    "web-2": ("10.0.1.12", 80, "web", False),
    "web-3": ("10.0.1.13", 80, "web", True),
    "api-1": ("10.0.1.21", 8080, "api", False),
}
ROUTED: dict[str, Any] = {
    "haproxy_backends": [
        {"name": "web", "group": "web", "port": 80, "check_path": "/healthz"},
        {"name": "api", "group": "api", "port": 8080, "check_path": "/healthz"},
    ],
    "haproxy_routes": [
        {"name": "api", "hosts": ["api.example.com"], "backend": "api"},
        {"name": "v1", "hosts": ["www.example.com"], "path_prefixes": ["/v1/"], "backend": "api"},
    ],
    "haproxy_default_backend": "web",
}


@dataclass
class Balancer:
    """HAProxy (from the role's haproxy.cfg) on ``lb``, web servers, clients."""

    net: HttpLab
    config: Path
    stats_socket: Path
    pidfile: Path

    @property
    def hosts(self) -> dict[str, Any]:
        return self.net.hosts

    def request(
        self, address: str, path: str, host: str, client: str = "client", **headers: str
    ) -> http.client.HTTPResponse:
        """One request from a client namespace; the response, its body read."""
        with in_netns(self.hosts[client].name):
            conn = http.client.HTTPConnection(address, 80, timeout=5)
            try:
                conn.request("GET", path, headers={"Host": host, **headers})
                response = conn.getresponse()
                response.body = response.read().decode()  # type: ignore[attr-defined]
                return response
            finally:
                conn.close()

    def get(self, address: str, path: str, host: str) -> str:
        """One request from the client namespace; the answering backend's body."""
        response = self.request(address, path, host)
        assert response.status == 200, f"{host}{path} via {address}: {response.status}"
        return str(response.body)  # type: ignore[attr-defined]

    def servers(self, backend: str | None = None) -> dict[str, str]:
        """`show stat` through the stats socket the role configured: server -> status."""
        return servers(self.stats_socket, backend)


def inventory(backends: dict[str, tuple[str, int, str, bool]] = BACKENDS) -> dict[str, object]:
    groups: dict[str, dict[str, object]] = {}
    for name, (address, _port, group, excluded) in backends.items():
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


def render(
    tmp: Path,
    stats_socket: Path,
    extra: dict[str, Any],
    backends: dict[str, tuple[str, int, str, bool]] = BACKENDS,
    env: dict[str, str] | None = None,
) -> Path:
    """Converge the haproxy role for lb-a into a staging root; the haproxy.cfg it wrote."""
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory(backends)))
    settings = {
        # run as the starting user, no chroot; the stats socket where the test can reach it
        "haproxy_user": "",
        "haproxy_chroot": "",
        "haproxy_stats_socket": str(stats_socket),
        **extra,
    }
    result = converge(
        tmp / "staging", "heartbeat", settings, inventory=path, limit="lb-a", env=env, playbook=ONLY
    )
    assert result.returncode == 0, result.output
    assert result.recap["lb-a"]["failed"] == 0
    return tmp / "staging" / "lb-a" / "etc" / "haproxy" / "haproxy.cfg"


@contextlib.contextmanager
def balancer(
    extra: dict[str, Any],
    clients: dict[str, str] | None = None,
    backends: dict[str, tuple[str, int, str, bool]] = BACKENDS,
) -> Iterator[Balancer]:
    """The role's haproxy.cfg for ``extra`` running on lb (10.0.1.5) in front of
    ``backends``, with ``clients``; every namespace and process goes at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="eipha-haproxy-"))
    stats = tmp / "admin.sock"
    config = render(tmp, stats, extra, backends)
    addresses = {
        "lb": LB,
        **(clients or {"client": CLIENT}),
        **{k: v[0] for k, v in backends.items()},
    }
    net = HttpLab.build(tmp, addresses)
    try:
        for name, (address, port, _group, _excluded) in backends.items():
            serve_web(net.hosts[name], name, address, port)
        pidfile = tmp / "haproxy.pid"
        net.haproxy("lb", config, pidfile)
        wait_listening(net.hosts[next(iter(clients or {"client": CLIENT}))], LB, 80, "HAProxy")
        yield Balancer(net, config, stats, pidfile)
    finally:
        net.close()


@pytest.fixture
def lab() -> Iterator[Balancer]:
    with balancer(ROUTED) as built:
        yield built


def test_haproxy_from_the_role_balances_routes_and_drains(lab: Balancer) -> None:
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
