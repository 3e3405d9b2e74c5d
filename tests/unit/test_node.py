"""The use-case layer (eipha.node): one watchdog per action, names resolved once, who this
node is read once per process and again after a miss, a hung call cut at the deadline."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from eipha import errors
from eipha.config import parse_text
from eipha.failover import Placement
from eipha.model import Binding
from eipha.node import OVERRUN, Keeper, Node
from tests.fakes import FakeAdapters
from tests.unit.test_agents_common import (
    A_PRIMARY,
    A_SECOND,
    B_PRIMARY,
    CONFIG,
    LB_A,
    WEB_A,
    WEB_B,
    World,
    config,
)


@pytest.fixture
def world(run_dir: object) -> World:
    return World()


def adapters(node: Node) -> FakeAdapters:
    assert isinstance(node.adapters, FakeAdapters)
    return node.adapters


@pytest.fixture
def threads_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads started while the test runs."""
    names: list[str] = []
    start = threading.Thread.start

    def counting(self: threading.Thread) -> None:
        names.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    return names


def test_one_start_of_one_eip_runs_in_one_watchdog_thread(world: World, threads_started):
    [outcome] = world.setup.node().start(["web-b"])
    assert outcome.error is None
    assert threads_started == ["eipha-start"]


def test_several_eips_apply_side_by_side(world: World, threads_started):
    world.text = CONFIG.replace("home: lb-b}", "home: lb-b, private_ips: {lb-a: 10.0.0.12}}")
    outcomes = world.setup.node().start(["web-a", "web-b"])
    assert [o.error for o in outcomes] == [None, None]
    assert threads_started == ["eipha-start", "eipha-web-a", "eipha-web-b"]
    assert world.ec2.calls.count("DescribeAddresses") == 3  # one plan, two read-backs


# who this node is: without its secondary IPs, then those alone, or all of it; its ENIs
BRIEF, SECONDARIES, FULL, STOP = "brief", "secondaries", "full", "enis"


def test_an_eip_at_home_needs_no_secondary_ip_read(world: World):
    node = world.setup.node()
    assert [a.running for a in node.status(["web-a"])] == [False]
    [outcome] = node.start(["web-a"])
    assert outcome.error is None
    assert world.where(WEB_A) == A_PRIMARY
    assert adapters(node).reads == [BRIEF]


def test_a_takeover_reads_the_secondary_ips_it_needs(world: World):
    node = world.setup.node()
    [outcome] = node.start(["web-b"])
    assert outcome.error is None
    assert world.where(WEB_B) == A_SECOND
    assert adapters(node).reads == [BRIEF, SECONDARIES]


def test_a_kept_node_keeps_what_does_not_change_and_reads_what_may(world: World):
    node = world.setup.node()
    node.start(["web-a"])
    node.status(["web-a", "web-b"])  # web-b needs a secondary IP: read them, keep them
    node.stop(["web-a"])  # a stop needs every ENI's id, read now
    node.stop(["web-b"])
    node.status(["web-a", "web-b"])
    node.start(["web-b"])
    # the ENI and primary IP are kept; the secondary IPs and the ENIs may change: read anew
    assert adapters(node).reads == [BRIEF, SECONDARIES, STOP, STOP, SECONDARIES, SECONDARIES]


def test_a_secondary_ip_added_since_is_seen(world: World):
    node = world.setup.node()
    node.status(["web-a", "web-b"])  # who this node is, secondary IPs included, kept
    more = replace(LB_A.interface, secondary_ips=("10.0.0.12", "10.0.0.13"))
    adapters(node).node = replace(LB_A, interface=more)  # 10.0.0.13 assigned since
    [outcome] = node.start(["web-b"], "10.0.0.13")  # the secondary IPs are read for it
    assert outcome.error is None
    assert world.where(WEB_B) == Binding("eni-aaaaaaaa", "10.0.0.13")
    assert adapters(node).reads == [BRIEF, SECONDARIES, SECONDARIES]


def test_a_failed_action_forgets_who_this_node_is(world: World):
    node = world.setup.node()
    adapters(node).node = replace(LB_A, interface=replace(LB_A.interface, secondary_ips=()))
    with pytest.raises(errors.NotConfigured, match="no secondary private IP"):
        node.status(["web-b"])
    adapters(node).node = LB_A  # 10.0.0.12 assigned since
    [outcome] = node.start(["web-b"])
    assert outcome.error is None
    assert adapters(node).reads == [BRIEF, SECONDARIES, BRIEF, SECONDARIES]


def test_a_binding_ec2_refuses_makes_the_next_action_read_this_node_again(world: World):
    node = world.setup.node()
    world.ec2.fail["AssociateAddress"] = errors.AwsNotConfigured(
        "AssociateAddress failed", "InvalidParameterValue: 10.0.0.12 is not on the ENI"
    )
    [outcome] = node.start(["web-b"])
    assert isinstance(outcome.error, errors.AwsNotConfigured)
    del world.ec2.fail["AssociateAddress"]
    world.ec2.fail["DisassociateAddress"] = errors.AwsError("DisassociateAddress failed", "500")
    node.start(["web-b"])
    node.stop(["web-b"])  # an outage, not a wrong binding: what was read is kept
    node.status(["web-b"])
    assert adapters(node).reads == [BRIEF, SECONDARIES, BRIEF, SECONDARIES, STOP, SECONDARIES]


def test_a_binding_ip_missing_from_a_fresh_read_is_not_configured(world: World):
    world.node = replace(LB_A, interface=replace(LB_A.interface, secondary_ips=()))
    node = world.setup.node()
    with pytest.raises(errors.NotConfigured, match="no secondary private IP for web-b on lb-a"):
        node.start(["web-b"])
    assert adapters(node).reads == [BRIEF, SECONDARIES]


def test_without_secondary_ips_read_a_wrong_private_ip_is_still_refused(world: World):
    """The brief read never lets a binding through that the full one would refuse."""
    node = world.setup.node()
    with pytest.raises(errors.NotConfigured, match=r"10\.0\.0\.99 .* is not on eni-aaaaaaaa"):
        node.start(["eipalloc-0000000f"], "10.0.0.99")
    assert adapters(node).reads == [BRIEF, SECONDARIES]


def test_a_public_ip_is_resolved_with_one_call(world: World):
    [outcome] = world.setup.node().start(["203.0.113.20"])
    assert outcome.error is None
    assert world.ec2.calls == [
        "DescribeAddresses",  # which EIP is 203.0.113.20
        "DescribeAddresses",  # the plan
        "AssociateAddress",
        "DescribeAddresses",  # the read-back
    ]


def test_an_unknown_name_fails_before_any_call_or_thread(world: World, threads_started):
    with pytest.raises(errors.NotConfigured, match="unknown EIP 'web-z'"):
        world.setup.node().start(["web-z"])
    assert world.ec2.calls == []
    assert threads_started == []


def test_a_hung_call_is_cut_at_the_deadline_and_the_others_keep_their_outcome(world: World):
    world.text = CONFIG.replace("timeout: 5", "timeout: 0.3")
    world.ec2.put(WEB_A, B_PRIMARY)
    world.ec2.put(WEB_B, Binding(B_PRIMARY.eni_id, "10.0.0.22"))
    gate = threading.Event()

    def hang_web_b(fake: object, allocation_id: str) -> None:
        if allocation_id == WEB_B:
            gate.wait(10)

    world.ec2.after_associate = hang_web_b
    node = world.setup.node()
    first = node.adapters
    try:
        a, b = node.start(["web-a", "web-b"])
    finally:
        gate.set()
    assert a.error is None
    assert world.where(WEB_A) == A_PRIMARY
    assert isinstance(b.error, errors.DeadlineExceeded)
    assert "may or may not have moved" in str(b.error)
    assert node.adapters is not first  # the stuck thread keeps the old ones


def test_a_hung_plan_fails_the_whole_action(world: World):
    world.text = CONFIG.replace("timeout: 5", "timeout: 0.2")
    gate = threading.Event()
    original = world.ec2.describe_addresses

    def hung(*args: object, **kwargs: object) -> object:
        gate.wait(10)
        return original()

    world.ec2.describe_addresses = hung  # type: ignore[assignment,method-assign]
    try:
        with pytest.raises(errors.DeadlineExceeded, match="start did not finish"):
            world.setup.node().start(["web-a"])
    finally:
        gate.set()


def test_place_moves_onto_any_binding_and_off(world: World):
    node = world.setup.node()
    outcome = node.place(Placement("web-a", WEB_A, Binding("eni-bbbbbbbb", "10.0.0.22")))
    assert outcome.error is None
    assert world.where(WEB_A) == Binding("eni-bbbbbbbb", "10.0.0.22")
    outcome = node.place(Placement("web-a", WEB_A))
    assert outcome.error is None
    assert world.where(WEB_A) is None
    assert adapters(node).reads == []  # a drill's move needs nothing of this node


def test_survey_says_where_each_eip_is_and_whether_here(world: World):
    world.ec2.put(WEB_A, A_PRIMARY)
    world.ec2.put(WEB_B, B_PRIMARY)
    seen = world.setup.node().survey(["web-a", "web-b"])
    assert [(s.label, s.here) for s in seen] == [("web-a", True), ("web-b", False)]
    assert world.ec2.calls == ["DescribeAddresses"]


def test_the_keeper_keeps_a_node_until_the_config_changes_or_it_is_dropped(world: World):
    keeper = Keeper(world.build)
    first = keeper.get(config())
    again = keeper.get(config())
    reused = keeper.reused
    assert again is first
    assert reused
    changed = keeper.get(config(CONFIG.replace("timeout: 5", "timeout: 6")))
    assert changed is not first
    assert keeper.reused is False
    keeper.drop()
    assert keeper.get(parse_text(CONFIG, "/etc/eipha/eipha.yaml")) is not changed


def test_a_thread_the_watchdog_gave_up_on_sends_nothing_afterwards(world: World):
    """The stuck thread keeps its own adapters and their passed deadline: when its IMDS read
    finally answers it must not go on to AssociateAddress."""
    world.text = CONFIG.replace("timeout: 5", "timeout: 0.3")
    gate = threading.Event()
    node = world.setup.node()
    adapters(node).hold = lambda: gate.wait(10)
    with pytest.raises(errors.DeadlineExceeded, match="start did not finish"):
        node.start(["web-b"])
    gate.set()
    time.sleep(0.5)  # the stuck thread runs on now
    assert "AssociateAddress" not in world.ec2.calls
    assert world.where(WEB_B) is None
    [outcome] = node.start(["web-b"])  # the next action, on new adapters, does it
    assert outcome.error is None
    assert world.where(WEB_B) == A_SECOND


def test_a_failed_stop_and_its_re_read_share_one_deadline(world: World):
    world.text = CONFIG.replace("timeout: 5", "timeout: 1")
    world.ec2.put(WEB_A, A_PRIMARY)
    gate = threading.Event()
    original = world.ec2.describe_addresses

    def fail_then_hang(association_id: str, *, dry_run: bool = False) -> bool:
        world.ec2.describe_addresses = lambda *a, **k: gate.wait(10) or original(*a, **k)  # type: ignore[assignment,method-assign]
        raise errors.AwsError("DisassociateAddress failed", "500")

    world.ec2.disassociate_address = fail_then_hang  # type: ignore[method-assign]
    node = world.setup.node()
    began = time.monotonic()
    try:
        released = node.release(["web-a"])
    finally:
        gate.set()
    assert time.monotonic() - began < 1 + OVERRUN + 0.5  # one deadline, not two
    assert released.still_here is None
    assert isinstance(released.unknown, errors.DeadlineExceeded)
