"""What every cluster-manager front end shares (eipha.agents.verdicts, eipha.agents.setup),
against an in-memory EC2: the stop rule (a stop fails only when the EIP is provably still
here), the deadline a manager's cap leaves, and the Setup seam.

The fakes here (a node over :class:`~tests.fakes.FakeAdapters`, a :class:`Setup` around it)
serve the other ``test_agents_*`` modules too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from eipha import errors
from eipha.agents import verdicts
from eipha.agents.setup import Setup
from eipha.clock import Deadline
from eipha.config import Config, parse_text
from eipha.model import Binding, Interface, NodeIdentity
from eipha.node import Node
from tests.fakes import FakeAdapters, FakeEc2

WEB_A, WEB_B = "eipalloc-0000000a", "eipalloc-0000000b"
A_PRIMARY = Binding("eni-aaaaaaaa", "10.0.0.11")
A_SECOND = Binding("eni-aaaaaaaa", "10.0.0.12")
B_PRIMARY = Binding("eni-bbbbbbbb", "10.0.0.21")
B_SECOND = Binding("eni-bbbbbbbb", "10.0.0.22")

CONFIG = f"""
node_name: lb-a
timeout: 5
eips:
  web-a: {{allocation_id: {WEB_A}, home: lb-a}}
  web-b: {{allocation_id: {WEB_B}, home: lb-b}}
"""

LB_A = NodeIdentity(
    node_name="lb-a",
    region="eu-west-1",
    interface=Interface("eni-aaaaaaaa", "0a:00:00:00:00:0a", "10.0.0.11", ("10.0.0.12",)),
)


def config(text: str = CONFIG) -> Config:
    return parse_text(text, "/etc/eipha/eipha.yaml")


@dataclass
class World:
    """One in-memory EC2 and node; ``setup`` builds nodes over them, and records the
    adapters of each (``built``)."""

    ec2: FakeEc2 = field(default_factory=FakeEc2)
    node: NodeIdentity | None = LB_A
    text: str = CONFIG
    built: list[FakeAdapters] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ec2.add(WEB_A, "203.0.113.10")
        self.ec2.add(WEB_B, "203.0.113.20")

    def load(self, path: str | None) -> Config:
        return config(self.text)

    def build(self, cfg: Config) -> Node:
        def adapters(deadline: Deadline) -> FakeAdapters:
            made = FakeAdapters(self.ec2, self.node, deadline)
            self.built.append(made)
            return made

        return Node(cfg, adapters)

    @property
    def setup(self) -> Setup:
        return Setup(self.load, self.build)

    def where(self, allocation_id: str) -> Binding | None:
        address = self.ec2.addresses[allocation_id]
        if not address.associated:
            return None
        return Binding(address.network_interface_id or "", address.private_ip or "")


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------- Setup


def test_the_deadline_is_the_config_timeout_or_the_managers_cap(world: World):
    for cap in (None, 2.0, 60.0):
        verdicts.running(world.setup.node(), ["web-a"], cap=cap)
    assert [a.deadlines for a in world.built] == [[5.0], [2.0], [5.0]]


# --------------------------------------------------------------------------- stop


def node(world: World) -> Node:
    return world.setup.node()


def test_stop_takes_it_off_this_node(world: World):
    world.ec2.put(WEB_A, A_PRIMARY)
    assert verdicts.stopped(lambda: node(world), ["web-a"]) is None
    assert world.where(WEB_A) is None
    assert world.ec2.calls == ["DescribeAddresses", "DisassociateAddress"]


def test_stop_leaves_the_peers_eip_alone(world: World):
    world.ec2.put(WEB_B, B_PRIMARY)
    assert verdicts.stopped(lambda: node(world), ["web-b"]) is None
    assert world.where(WEB_B) == B_PRIMARY
    assert world.ec2.calls == ["DescribeAddresses"]


def test_stop_fails_when_the_eip_is_provably_still_here(world: World):
    world.ec2.put(WEB_A, A_PRIMARY)
    world.ec2.fail["DisassociateAddress"] = errors.AwsError("DisassociateAddress failed", "500")
    error = verdicts.stopped(lambda: node(world), ["web-a"])
    assert error is not None
    assert str(error).startswith("stop failed: web-a still on this node")
    assert "DisassociateAddress failed" in str(error)
    assert world.ec2.calls == ["DescribeAddresses", "DisassociateAddress", "DescribeAddresses"]
    assert [a.reads for a in world.built] == [["enis"]]  # the re-read asks EC2, not IMDS


def test_stop_succeeds_when_the_failed_disassociate_was_overtaken(world: World):
    """DisassociateAddress failed, but by the re-read the peer had taken the EIP."""
    world.ec2.put(WEB_A, A_PRIMARY)
    ec2 = world.ec2

    def moved_then_failed(association_id: str, *, dry_run: bool = False) -> bool:
        ec2.calls.append("DisassociateAddress")
        ec2.put(WEB_A, B_SECOND)
        raise errors.AwsError("DisassociateAddress failed", "timeout")

    ec2.disassociate_address = moved_then_failed  # type: ignore[method-assign]
    assert verdicts.stopped(lambda: node(world), ["web-a"]) is None
    assert world.where(WEB_A) == B_SECOND


def test_stop_succeeds_when_the_re_read_fails(world: World):
    world.ec2.put(WEB_A, A_PRIMARY)
    ec2 = world.ec2

    def fail_and_break_describe(association_id: str, *, dry_run: bool = False) -> bool:
        ec2.fail["DescribeAddresses"] = errors.AwsError("DescribeAddresses failed", "500")
        raise errors.AwsError("DisassociateAddress failed", "500")

    ec2.disassociate_address = fail_and_break_describe  # type: ignore[method-assign]
    assert verdicts.stopped(lambda: node(world), ["web-a"]) is None
    assert world.where(WEB_A) == A_PRIMARY  # still here, but nothing could prove it


@pytest.mark.parametrize(
    "broken",
    ["no config", "imds down", "api down", "unknown eip"],
)
def test_stop_succeeds_when_nothing_can_prove_the_eip_is_here(world: World, broken: str):
    world.ec2.put(WEB_A, A_PRIMARY)
    eips = ["web-a"]

    def make() -> Node:
        if broken == "no config":
            raise errors.NotConfigured("config file /x not found")
        return node(world)

    if broken == "imds down":
        world.node = None
    elif broken == "api down":
        world.ec2.fail["DescribeAddresses"] = errors.AwsError("DescribeAddresses failed", "x")
    elif broken == "unknown eip":
        eips = ["web-z"]
    assert verdicts.stopped(make, eips) is None
    assert world.where(WEB_A) == A_PRIMARY


# --------------------------------------------------------------------------- start, running


def test_start_and_running(world: World):
    assert verdicts.running(node(world), ["web-b"]) is False
    assert verdicts.started(node(world), ["web-a", "web-b"]) is None
    assert world.where(WEB_A) == A_PRIMARY
    assert world.where(WEB_B) == A_SECOND
    assert verdicts.running(node(world), ["web-a", "web-b"]) is True


def test_start_returns_the_first_failure(world: World):
    world.ec2.fail["AssociateAddress"] = errors.AwsPermissionDenied("no", code="Unauthorized")
    error = verdicts.started(node(world), ["web-a"])
    assert isinstance(error, errors.AwsPermissionDenied)


def test_running_raises_when_it_cannot_know(world: World):
    world.node = None
    with pytest.raises(errors.MetadataError):
        verdicts.running(node(world), ["web-a"])
