"""The core against an in-memory EC2: plans, call budgets, read-back, races, deadlines."""

from __future__ import annotations

import pytest

from eipha import errors, failover
from eipha.clock import Deadline
from eipha.failover import Placement, Verb
from eipha.model import Address, Binding
from tests.fakes import FakeEc2

A_PRIMARY = Binding("eni-aaaaaaaa", "10.0.0.11")
A_SECOND = Binding("eni-aaaaaaaa", "10.0.0.12")
B_PRIMARY = Binding("eni-bbbbbbbb", "10.0.0.21")
WEB_A, WEB_B = "eipalloc-0000000a", "eipalloc-0000000b"


def no_sleep(_: float) -> None:
    pass


@pytest.fixture
def ec2() -> FakeEc2:
    fake = FakeEc2()
    fake.add(WEB_A, "203.0.113.10", A_PRIMARY, "i-aaaaaaaa")
    fake.add(WEB_B, "203.0.113.20", B_PRIMARY, "i-bbbbbbbb")
    return fake


def deadline(seconds: float = 5.0) -> Deadline:
    return Deadline(seconds)


def test_plan_start_is_pure_and_exact():
    here = Address(WEB_A, "1.1.1.1", "eipassoc-1", A_PRIMARY.eni_id, A_PRIMARY.private_ip)
    on_primary = Address(WEB_B, "2.2.2.2", "eipassoc-2", A_PRIMARY.eni_id, A_PRIMARY.private_ip)
    steps = failover.plan_start(
        [Placement("web-a", WEB_A, A_PRIMARY), Placement("web-b", WEB_B, A_SECOND)],
        {WEB_A: here, WEB_B: on_primary},
    )
    # same ENI but the wrong private IP is not "already there"
    assert [s.verb for s in steps] == [Verb.NOTHING, Verb.ASSOCIATE]


def test_start_takeover_budget_is_three_calls(ec2):
    [outcome] = failover.start([Placement("web-b", WEB_B, A_SECOND)], ec2, deadline(), no_sleep)
    assert outcome.error is None
    assert outcome.changed
    assert ec2.calls == ["DescribeAddresses", "AssociateAddress", "DescribeAddresses"]
    assert ec2.addresses[WEB_B].private_ip == "10.0.0.12"
    # our own EIP on the primary is untouched
    assert ec2.addresses[WEB_A].private_ip == "10.0.0.11"


def test_start_when_already_there_makes_no_associate_call(ec2):
    [outcome] = failover.start([Placement("web-a", WEB_A, A_PRIMARY)], ec2, deadline(), no_sleep)
    assert not outcome.changed
    assert outcome.error is None
    assert ec2.calls == ["DescribeAddresses"]


def test_start_reads_back_until_visible(ec2):
    ec2.lag = 3
    [outcome] = failover.start([Placement("web-b", WEB_B, A_SECOND)], ec2, deadline(), no_sleep)
    assert outcome.error is None
    assert ec2.calls.count("DescribeAddresses") == 1 + 4


def test_start_reports_a_racing_peer_and_does_not_fight(ec2):
    def peer_wins(fake: FakeEc2, allocation_id: str) -> None:
        fake.put(allocation_id, Binding("eni-cccccccc", "10.0.0.31"))

    ec2.after_associate = peer_wins
    [outcome] = failover.start([Placement("web-b", WEB_B, A_SECOND)], ec2, deadline(), no_sleep)
    assert isinstance(outcome.error, errors.RaceLost)
    assert "eni-cccccccc" in str(outcome.error)
    assert ec2.calls.count("AssociateAddress") == 1


def test_start_read_back_respects_deadline(ec2):
    ec2.lag = 10**6
    [outcome] = failover.start([Placement("web-b", WEB_B, A_SECOND)], ec2, Deadline(0.3))
    assert isinstance(outcome.error, errors.DeadlineExceeded)


def test_start_several_eips_one_describe(ec2):
    ec2.add("eipalloc-0000000c", "203.0.113.30")
    wanted = [
        Placement("web-b", WEB_B, A_SECOND),
        Placement("web-c", "eipalloc-0000000c", Binding("eni-aaaaaaaa", "10.0.0.13")),
    ]
    outcomes = failover.start(wanted, ec2, deadline(), no_sleep)
    assert all(o.error is None for o in outcomes)
    assert ec2.calls[0] == "DescribeAddresses"
    assert ec2.calls.count("AssociateAddress") == 2


def test_start_unknown_allocation_is_not_configured(ec2):
    with pytest.raises(errors.NotConfigured):
        failover.start([Placement("x", "eipalloc-0000ffff", A_SECOND)], ec2, deadline(), no_sleep)


def mine_a(address: Address) -> bool:
    return address.network_interface_id == "eni-aaaaaaaa"


def test_stop_here_disassociates_by_the_association_just_read(ec2):
    association = ec2.addresses[WEB_A].association_id
    [outcome] = failover.stop([Placement("web-a", WEB_A)], ec2, deadline(), mine_a)
    assert outcome.changed
    assert outcome.error is None
    assert ec2.calls == ["DescribeAddresses", "DisassociateAddress"]
    assert not ec2.addresses[WEB_A].associated
    assert association is not None


def test_stop_elsewhere_or_unassociated_makes_no_call(ec2):
    ec2.addresses[WEB_A] = Address(WEB_A, "203.0.113.10")
    outcomes = failover.stop(
        [Placement("web-a", WEB_A), Placement("web-b", WEB_B)], ec2, deadline(), mine_a
    )
    assert [o.changed for o in outcomes] == [False, False]
    assert ec2.calls == ["DescribeAddresses"]
    assert ec2.addresses[WEB_B].associated


def test_stop_after_a_race_counts_as_success(ec2):
    ec2.fail = {}

    original = ec2.disassociate_address

    def moved_meanwhile(association_id: str) -> bool:
        ec2.put(WEB_A, B_PRIMARY)  # the peer took it between our describe and our call
        return bool(original(association_id))

    ec2.disassociate_address = moved_meanwhile
    [outcome] = failover.stop([Placement("web-a", WEB_A)], ec2, deadline(), mine_a)
    assert outcome.error is None
    assert not outcome.changed
    assert ec2.addresses[WEB_A].network_interface_id == B_PRIMARY.eni_id


def test_status_is_exact(ec2):
    answers = failover.status(
        [Placement("web-a", WEB_A, A_PRIMARY), Placement("web-a2", WEB_A, A_SECOND)], ec2
    )
    assert [running for _, running, _ in answers] == [True, False]
    assert ec2.calls == ["DescribeAddresses"]


def test_aws_error_propagates_typed(ec2):
    ec2.fail["AssociateAddress"] = errors.AwsError("AssociateAddress failed", code="InternalError")
    [outcome] = failover.start([Placement("web-b", WEB_B, A_SECOND)], ec2, deadline(), no_sleep)
    assert isinstance(outcome.error, errors.AwsError)
    assert ec2.addresses[WEB_B].network_interface_id == B_PRIMARY.eni_id  # untouched, not lost
