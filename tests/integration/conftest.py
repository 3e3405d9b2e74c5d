"""Integration tier: a real moto server over HTTP (with eipha's private-IP extension), one
IMDSv2 double per simulated node, and ``eipha`` run as a real subprocess pointed there by
``AWS_ENDPOINT_URL_EC2`` and ``AWS_EC2_METADATA_SERVICE_ENDPOINT``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from eipha.sim.imds_double import ImdsDouble, node_metadata
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def region() -> Iterator[SimulatedRegion]:
    with SimulatedRegion() as sim:
        yield sim


def metadata_for(world: World, node: str) -> dict[str, str]:
    n = world.nodes[node]
    return node_metadata(
        n.instance_id,
        world.region,
        f"{world.region}a",
        [(n.mac, n.eni_id, n.device_number, n.primary_ip, n.secondary_ips, n.subnet_cidr)],
    )


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free now (TCP by default, or ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def monitor_status(env: dict[str, str]) -> dict[str, Any]:
    """``eipha monitor --status --json``, the real command, with ``env``."""
    result = subprocess.run(
        [sys.executable, "-m", "eipha", "monitor", "--status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@dataclass
class Result:
    code: int
    out: str
    err: str
    calls: list[str]


@dataclass
class Lab:
    """Two simulated nodes (lb-a, lb-b) in a simulated region, and a way to run eipha on each."""

    region: SimulatedRegion
    world: World
    imds: dict[str, ImdsDouble]
    tmp: Path
    client: Any = field(init=False)

    def __post_init__(self) -> None:
        self.client = ec2_client(self.region)

    def alloc(self, eip: str) -> str:
        return self.world.eips[eip].allocation_id

    def config(self, node: str, **overrides: Any) -> Path:
        """A config file for ``node`` describing the whole pair."""
        data: dict[str, Any] = {
            "node_name": node,
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
        data.update(overrides)
        path = self.tmp / f"{node}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def env(self, node: str, config: Path | None) -> dict[str, str]:
        env = dict(os.environ)
        env["AWS_ENDPOINT_URL_EC2"] = self.region.endpoint
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.imds[node].endpoint
        env.pop("EIPHA_CONFIG", None)
        if config is not None:
            env["EIPHA_CONFIG"] = str(config)
        else:
            env["EIPHA_CONFIG"] = str(self.tmp / "absent" / "eipha.yaml")
        return env

    def run(
        self,
        node: str,
        *args: str,
        config: Path | bool | None = True,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Result:
        """Run ``eipha ARGS`` as ``node``; ``config=True`` uses that node's default config,
        ``None``/``False`` runs with no config at all."""
        path = self.config(node) if config is True else (config or None)
        full_env = self.env(node, path)
        full_env.update(env or {})
        if path is None:
            # no config at all: the default path must not exist, and EIPHA_CONFIG must be unset
            full_env.pop("EIPHA_CONFIG")
        mark = self.region.mark()
        proc = subprocess.run(
            [sys.executable, "-m", "eipha", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr, self.region.actions(mark))

    def where(self, eip: str) -> dict[str, Any]:
        [address] = self.client.describe_addresses(AllocationIds=[self.alloc(eip)])["Addresses"]
        return dict(address)

    def placement(self, eip: str) -> tuple[str | None, str | None]:
        """(node, private IP) the EIP is on now; (None, None) when unassociated."""
        return self.world.placement(self.where(eip))

    def associate(self, eip: str, node: str, private_ip: str | None = None) -> str:
        n = self.world.nodes[node]
        answer = self.client.associate_address(
            AllocationId=self.alloc(eip),
            NetworkInterfaceId=n.eni_id,
            PrivateIpAddress=private_ip or n.primary_ip,
            AllowReassociation=True,
        )
        return str(answer["AssociationId"])


@contextlib.contextmanager
def pair_lab(region: SimulatedRegion, tmp_path: Path) -> Iterator[Lab]:
    """A fresh pair in a reset region (no faults, no latency), an IMDSv2 double per node."""
    region.reset()
    region.clear_faults()
    region.latency = 0.0
    world = build_pair(region)
    doubles = {name: ImdsDouble(metadata_for(world, name)).start() for name in world.nodes}
    try:
        yield Lab(region, world, doubles, tmp_path)
    finally:
        for double in doubles.values():
            double.stop()
        region.clear_faults()


@pytest.fixture
def lab(region: SimulatedRegion, tmp_path: Path) -> Iterator[Lab]:
    with pair_lab(region, tmp_path) as built:
        yield built
