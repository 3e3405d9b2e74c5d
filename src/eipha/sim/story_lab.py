"""The lab of the simulated story and the sandbox: the simulated region and world, each
node's IMDS double and web server, and (act two) each node's ``eipha monitor`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eipha import wiring
from eipha.config import Config, EipSpec, NodeSpec
from eipha.node import Node
from eipha.sim.ec2_client import ec2_client
from eipha.sim.imds_double import ImdsDouble, node_metadata
from eipha.sim.region import SimulatedRegion
from eipha.sim.stand_ins import WebServer
from eipha.sim.world import SimNode, World

NODE_TIMEOUT = 10.0
# act two: both monitors on loopback addresses of their own, one port
MONITOR_ADDRESS = {"lb-a": "127.0.0.11", "lb-b": "127.0.0.21"}
MONITOR_TIMES = {"interval": 0.5, "dead_after": 2.0, "init_dead": 2.0, "min_hold": 2.0}


@dataclass
class Lab:
    """What runs in the simulated world, by node name; :meth:`close` stops all of it."""

    region: SimulatedRegion
    world: World
    imds: dict[str, ImdsDouble] = field(default_factory=dict)
    web: dict[str, WebServer] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)
    monitors: dict[str, tuple[subprocess.Popen[bytes], Any]] = field(default_factory=dict)

    def config(self, node: str) -> Config:
        return Config(
            path=None,
            region=self.world.region,
            node_name=node,
            interface=None,
            timeout=NODE_TIMEOUT,
            nodes={
                n.name: NodeSpec(n.name, n.instance_id, n.primary_ip)
                for n in self.world.nodes.values()
            },
            eips={
                e.name: EipSpec(e.name, e.allocation_id, e.home, {})
                for e in self.world.eips.values()
            },
            monitor=None,
            keepalived_instances={},
        )

    def bring_up(self, node: SimNode, imds_port: int = 0) -> str:
        """Start ``node``'s IMDS double (on ``imds_port``, 0: an ephemeral one) and web server."""
        meta = node_metadata(
            node.instance_id,
            self.world.region,
            f"{self.world.region}a",
            [(node.mac, node.eni_id, 0, node.primary_ip, node.secondary_ips, node.subnet_cidr)],
        )
        self.imds[node.name] = ImdsDouble(meta, port=imds_port).start()
        self.web[node.name] = WebServer(node.name).start()
        self.web_ports[node.name] = self.web[node.name].port
        return f"{node.name} is up"

    def take_down(self, name: str) -> str:
        self.web_ports.pop(name, None)
        for server in (self.web.pop(name, None), self.imds.pop(name, None)):
            if server is not None:
                server.stop()
        return f"{name} is down"

    def node(self, node: str) -> Node:
        """``node``'s eipha, as it would run there (its own IMDS)."""
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds[node].endpoint}
        return wiring.node(self.config(node), env=env)

    def where(self, eip: str) -> tuple[str | None, str | None]:
        client = ec2_client(self.region)
        [address] = client.describe_addresses(AllocationIds=[self.world.eips[eip].allocation_id])[
            "Addresses"
        ]
        return self.world.placement(address)

    def close(self) -> None:
        for name in list(self.monitors):
            self.stop_monitor(name, signal.SIGKILL)
        for name in list(self.web) + list(self.imds):
            self.take_down(name)

    # -- act two: eipha's own peer monitor on each node -----------------------------------

    def start_monitor(self, name: str, run_dir: Path, port: int) -> str:
        """``eipha monitor`` for one node, as a real process with its own metadata."""
        node_dir = run_dir / name
        node_dir.mkdir(exist_ok=True)
        key = run_dir / "monitor.key"
        if not key.exists():
            key.write_bytes(os.urandom(32))
            key.chmod(0o600)
        config = {
            "region": self.world.region,
            "node_name": name,
            "timeout": NODE_TIMEOUT,
            "nodes": self.world.nodes_section(MONITOR_ADDRESS),
            "eips": self.world.eips_section(),
            "monitor": {
                "port": port,
                "key_file": str(key),
                **MONITOR_TIMES,
                "quorum": [f"127.0.0.1:{self.region.port}"],
                "health_check": {
                    "url": f"http://127.0.0.1:{self.web_ports[name]}/",
                    "interval": 0.5,
                    "fall": 1,
                    "rise": 1,
                },
            },
        }
        (node_dir / "eipha.yaml").write_text(json.dumps(config))
        env = {
            **os.environ,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds[name].endpoint,
            "EIPHA_CONFIG": str(node_dir / "eipha.yaml"),
            "EIPHA_RUN_DIR": str(node_dir),
        }
        log = open(node_dir / "monitor.log", "ab")  # noqa: SIM115 - closed in stop_monitor
        proc = subprocess.Popen(
            [sys.executable, "-m", "eipha", "monitor"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        self.monitors[name] = (proc, log)
        return f"{name}: eipha monitor started (pid {proc.pid})"

    def stop_monitor(self, name: str, sig: int = signal.SIGTERM) -> str:
        proc, log = self.monitors.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        return f"{name}: eipha monitor stopped ({signal.Signals(sig).name})"
