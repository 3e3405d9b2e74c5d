"""The load balancer's own health moves the EIP: the pair deployed by the roles from one
inventory (HAProxy, eipha and keepalived or the peer monitor) on the lab's two nodes, a web
server behind them, a client of web-a following where EC2 maps it.

Stop HAProxy on lb-a (the node itself stays up: its cluster manager keeps running): HAProxy's
health endpoint no longer answers, keepalived's track script fails (the instance goes FAULT)
or the monitor's health_check.url does (it says unhealthy), and web-a moves to lb-b's
secondary IP, where lb-b's HAProxy serves it. Start HAProxy again: web-a returns home.
bench/health_failover.py times the same cycle.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eipha.sim.netns import in_netns, ip
from tests.system.lab import API, Lab, Node, serve_web, wait_for, wait_listening
from tests.system.managers import start_keepalived
from tests.system.test_ansible_lab import deploy
from tests.system.test_monitor import start as start_monitor

HOME_A, A_ON_B = ("lb-a", "10.0.0.11"), ("lb-b", "10.0.0.22")
SECONDARY = {"lb-a": "10.0.0.12", "lb-b": "10.0.0.22"}
WEB_PORT = 8080
HEALTH = "http://127.0.0.1:8405/healthz"
KEY = "0123456789abcdef" * 4
FAST: dict[str, dict[str, object]] = {
    "keepalived": {
        "keepalived_track_haproxy": True,
        "keepalived_check_interval": 1,
        "keepalived_check_timeout": 1,
        "keepalived_check_fall": 1,
        "keepalived_check_rise": 1,
    },
    "monitor": {
        "eipha_agents": [],  # the monitor needs no shim (its unit is not used here)
        "eipha_monitor_key": KEY,  # one key for both nodes' converges
        "eipha_monitor_interval": 0.5,
        "eipha_monitor_dead_after": 2.0,
        "eipha_monitor_init_dead": 3.0,
        "eipha_monitor_min_hold": 3.0,
        "eipha_monitor_quorum": [API],
        "eipha_monitor_health_check": {"url": HEALTH, "interval": 0.5, "fall": 1, "rise": 1},
    },
}


@dataclass
class Pair:
    lab: Lab
    manager: str

    def haproxy(self, node: Node) -> None:
        """HAProxy inside the node, with the haproxy.cfg the role wrote for it."""
        config = str(node.dir / "haproxy.cfg")
        with (node.dir / "log" / "haproxy.log").open("a") as log:  # no syslog in the node
            proc = subprocess.Popen(
                node.argv(["haproxy", "-W", "-db", "-f", config]), stdout=log, stderr=log
            )
        node.netns.procs.append(proc)
        wait_listening(node.netns, "127.0.0.1", 8405, f"HAProxy on {node.name}")

    def client(self, eip: str = "web-a") -> str | None:
        """One request to the EIP, sent to the private IP EC2 maps it to now, from outside
        the pair; the address of the load balancer that served it, or None."""
        _, private = self.lab.where(eip)
        if private is None:
            return None
        with in_netns(self.lab.infra.name):
            conn = http.client.HTTPConnection(private, 80, timeout=1)
            try:
                conn.request("GET", "/", headers={"Host": "www.example.com"})
                response = conn.getresponse()
                response.read()
                return response.getheader("X-Seen-Peer") if response.status == 200 else None
            except OSError:
                return None
            finally:
                conn.close()

    def stop_haproxy(self, node: Node) -> None:
        assert node.kill("haproxy", signal.SIGTERM), f"no HAProxy on {node.name}"
        wait_for(f"HAProxy gone on {node.name}", lambda: not node.pids("haproxy"), 10)

    def cycle(self, timeout: float = 30) -> tuple[float, float]:
        """Stop lb-a's HAProxy: seconds to the first request served by lb-b through web-a;
        start it again: seconds to the first one served by lb-a."""
        a, b = self.lab.nodes["lb-a"], self.lab.nodes["lb-b"]
        stopped = time.monotonic()
        self.stop_haproxy(a)
        wait_for("web-a served by lb-b", lambda: self.client() == b.primary, timeout, 0.05)
        away = time.monotonic() - stopped
        assert self.lab.where("web-a") == A_ON_B
        assert self.client("web-b") == b.primary  # lb-b's own EIP is served all along
        started = time.monotonic()
        self.haproxy(a)
        wait_for("web-a served by lb-a", lambda: self.client() == a.primary, timeout, 0.05)
        back = time.monotonic() - started
        self.lab.wait_where("web-a", HOME_A, 5)
        return away, back


@contextlib.contextmanager
def pair(manager: str) -> Iterator[Pair]:
    """The lab with the pair deployed by the roles for ``manager``, running, both EIPs home
    and served; everything removed at the end."""
    with Lab.build() as lab:
        serve_web(lab.infra, "web-1", API, WEB_PORT)
        web: dict[str, object] = {"web-1": {"ansible_host": API}}
        backends = [{"name": "web", "group": "web", "port": WEB_PORT, "check_path": "/healthz"}]
        deploy(lab, manager, web, haproxy_backends=backends, **FAST[manager])
        built = Pair(lab, manager)
        for node in lab.nodes.values():
            # the secondary private IP that carries the peer's EIP after a takeover (the
            # eipha_secondary_ips role puts it there on EC2)
            ip("-n", node.netns.name, "addr", "add", f"{SECONDARY[node.name]}/32", "dev", "eth0")
            built.haproxy(node)
        for node in lab.nodes.values():
            if manager == "keepalived":
                start_keepalived(node)
            else:
                start_monitor(node)
        lab.wait_where("web-a", HOME_A, 30)
        lab.wait_where("web-b", ("lb-b", "10.0.0.21"), 30)
        wait_for("web-a served by lb-a", lambda: built.client() == "10.0.0.11", 10)
        yield built
        assert lab.reboots() == []


@pytest.fixture(params=["keepalived", "monitor"])
def running(request: pytest.FixtureRequest) -> Iterator[Pair]:
    with pair(request.param) as built:
        yield built


def test_haproxy_down_moves_the_eip_to_the_peer_and_back(running: Pair):
    a = running.lab.nodes["lb-a"]
    if running.manager == "keepalived":
        conf = a.file("/etc/keepalived/keepalived.conf").read_text()
        assert f'script "/usr/bin/curl -fs -o /dev/null --max-time 1 {HEALTH}"' in conf
    else:
        config = (a.dir / "eipha.yaml").read_text()
        assert HEALTH in config
    assert running.client("web-b") == "10.0.0.21"
    away, back = running.cycle()
    print(f"{running.manager}: served by the peer {away:.2f} s after HAProxy stopped, "
          f"home {back:.2f} s after it started")  # fmt: skip
    # the node stayed up all along: its cluster manager is still running
    assert a.pids("keepalived" if running.manager == "keepalived" else "eipha")
