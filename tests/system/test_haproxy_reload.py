"""Inventory changes applied by the role's handler (a reload), under load, and servers found
through a DNS catalog with no reload at all.

Reload: a client sends a steady stream of requests (a new connection each, at least 100 a
second for 10 s) while the inventory changes (web-4 added, web-2 drained) and the role's
`Reload haproxy` handler runs; systemd is not running here, so `systemctl` is a double that
does what Debian's haproxy.service does on reload (check the config, SIGUSR2 to the master).

Discovery: dnsmasq from Debian serves SRV records the way a Consul catalog's DNS interface
does (`_web._tcp.service.consul` -> `web-N.node.consul` -> address); an instance added to
and removed from the catalog (dnsmasq restarted with the new records) shows up in and leaves
HAProxy's server list, with no reload.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eipha.sim.netns import in_netns
from tests.ansible.staging import BIN
from tests.system.lab import SYSTEMCTL_DOUBLE, serve_web, stats, wait_for
from tests.system.test_haproxy_lab import BACKENDS, LB, ROUTED, balancer, render

RATE = 150  # requests a second
DURATION = 10.0


@dataclass
class Load:
    """Requests from the client namespace at RATE a second, each on a new connection."""

    ns: str
    stop: threading.Event = field(default_factory=threading.Event)
    results: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)

    def run(self) -> None:
        with in_netns(self.ns):
            began = time.monotonic()
            sent = 0
            while not self.stop.is_set():
                sent += 1
                try:
                    conn = http.client.HTTPConnection(LB, 80, timeout=5)
                    conn.request("GET", "/", headers={"Host": "www.example.com"})
                    response = conn.getresponse()
                    body = response.read().decode()
                    conn.close()
                    self.results[str(response.status)] += 1
                    self.served[body.split()[0]] += 1
                except OSError as exc:
                    self.results[type(exc).__name__] += 1
                time.sleep(max(0.0, began + sent / RATE - time.monotonic()))


def test_inventory_change_reloads_under_load_without_dropping_a_request(tmp_path: Path):
    backends = {k: v for k, v in BACKENDS.items() if k != "web-3"}
    with balancer(ROUTED, backends=backends) as lab:
        wait_for("health checks", lambda: set(lab.servers().values()) == {"UP"}, 15)
        web4 = lab.net.add("web-4", "10.0.1.14")
        serve_web(web4, "web-4", "10.0.1.14", 80)
        calls = lab.net.tmp / "systemctl-calls"
        double = lab.net.tmp / "bin" / "systemctl"
        double.parent.mkdir()
        double.write_text(
            SYSTEMCTL_DOUBLE.format(calls=calls, pidfile=lab.pidfile, config=lab.config)
        )
        double.chmod(0o755)
        changed = {
            **backends,
            "web-2": ("10.0.1.12", 80, "web", True),  # drained
            "web-4": ("10.0.1.14", 80, "web", False),  # added
        }
        master = lab.pidfile.read_text().strip()
        children = Path(f"/proc/{master}/task/{master}/children")
        worker = children.read_text()
        load = Load(lab.hosts["client"].name)
        thread = threading.Thread(target=load.run, daemon=True)
        began = time.monotonic()
        thread.start()
        time.sleep(2)
        path = f"{double.parent}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}"
        render(
            lab.net.tmp,
            lab.stats_socket,
            {**ROUTED, "haproxy_service_manage": True},
            changed,
            env={"PATH": path},
        )
        time.sleep(max(0.0, began + DURATION - time.monotonic()))
        load.stop.set()
        thread.join(10)
        elapsed = time.monotonic() - began
        total = sum(load.results.values())
        print(f"reload under load: {dict(load.results)} in {elapsed:.1f} s; {dict(load.served)}")
        assert "reload haproxy" in calls.read_text().splitlines()
        assert children.read_text() != worker  # reloaded: a new worker, the same master
        assert load.results == Counter({"200": total}), load.results
        assert total >= 100 * DURATION
        # the new server set, as the stats socket shows it
        wait_for(
            "web-4 up",
            lambda: lab.servers("web") == {"web-1": "UP", "web-2": "MAINT", "web-4": "UP"},
            15,
        )
        assert load.served["web-4"] > 0  # served once up, within the run


DNSMASQ = [
    "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
    "--bind-interfaces", "--listen-address=10.0.1.53", "--port=53", "--log-facility=-",
]  # fmt: skip


def test_catalog_instances_come_and_go_without_a_reload():
    discovery = {
        **ROUTED,
        "haproxy_resolvers": [
            {"name": "consul", "nameservers": ["10.0.1.53:53"], "hold_valid": "1s"}
        ],
        "haproxy_backends": [
            *ROUTED["haproxy_backends"],
            {
                "name": "catalog",
                "check_path": "/healthz",
                "discovery": {
                    "fqdn": "_web._tcp.service.consul",
                    "count": 3,
                    "resolvers": "consul",
                },
            },
        ],
        "haproxy_routes": [
            {"name": "catalog", "hosts": ["catalog.example.com"], "backend": "catalog"},
            *ROUTED["haproxy_routes"],
        ],
    }
    with balancer(discovery) as lab:
        dns = lab.net.add("dns", "10.0.1.53")
        for name, address in (("web-5", "10.0.1.15"), ("web-6", "10.0.1.16")):
            serve_web(lab.net.add(name, address), name, address, 8080)

        def catalog(*instances: str) -> None:
            for proc in list(dns.procs):
                proc.terminate()
                proc.wait(5)
                dns.procs.remove(proc)
            records = [
                arg
                for name in instances
                for arg in (
                    # priority 1, weight 1, as Consul answers (weight 0 would get no traffic)
                    f"--srv-host=_web._tcp.service.consul,{name}.node.consul,8080,1,1",
                    f"--host-record={name}.node.consul,{lab.net.addresses[name]}",
                )
            ]
            dns.popen([*DNSMASQ, *records])

        def up() -> dict[str, str]:
            """catalog server -> address, of the slots that are UP."""
            state = {
                row[3]: row[4] for row in stats(lab.stats_socket, "show servers state catalog")[1:]
            }
            return {
                name: state[name]
                for name, status in lab.servers("catalog").items()
                if status == "UP"
            }

        master = lab.pidfile.read_text().strip()
        children = Path(f"/proc/{master}/task/{master}/children")
        worker = children.read_text()  # a reload would replace the master's worker
        catalog("web-5")
        wait_for("web-5 discovered", lambda: sorted(up().values()) == ["10.0.1.15"], 20)
        catalog("web-5", "web-6")
        wait_for(
            "web-6 discovered", lambda: sorted(up().values()) == ["10.0.1.15", "10.0.1.16"], 20
        )
        served = Counter(lab.get(LB, "/", "catalog.example.com").split()[0] for _ in range(6))
        assert served == Counter({"web-5": 3, "web-6": 3})
        catalog("web-6")
        wait_for("web-5 gone", lambda: sorted(up().values()) == ["10.0.1.16"], 20)
        assert {lab.get(LB, "/", "catalog.example.com").split()[0] for _ in range(4)} == {"web-6"}
        # no reload: the worker that served from the start is still the only one
        assert children.read_text() == worker
        assert len(worker.split()) == 1
