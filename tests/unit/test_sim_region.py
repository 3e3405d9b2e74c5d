"""The simulated region over HTTP: eipha's moto extension (one EIP per private IP), the request
log, fault injection and the two-node world. Loopback only, fake credentials (see conftest)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from eipha.sim import moto_ext
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_client


@pytest.fixture(scope="module")
def region() -> Iterator[SimulatedRegion]:
    sim = SimulatedRegion()
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def world(region: SimulatedRegion) -> World:
    region.reset()
    region.latency = 0.0
    return build_pair(region, eips=3)


@pytest.fixture
def ec2(region: SimulatedRegion) -> Iterator[Any]:
    client = ec2_client(region)
    yield client
    client.close()


def address(ec2: Any, allocation_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    return found


def associate(ec2: Any, allocation_id: str, eni_id: str, private_ip: str | None = None) -> str:
    kwargs: dict[str, Any] = {
        "AllocationId": allocation_id,
        "NetworkInterfaceId": eni_id,
        "AllowReassociation": True,
    }
    if private_ip is not None:
        kwargs["PrivateIpAddress"] = private_ip
    association_id: str = ec2.associate_address(**kwargs)["AssociationId"]
    return association_id


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# --- the moto extension ------------------------------------------------------------------


def test_install_is_idempotent_and_documented() -> None:
    moto_ext.install()
    moto_ext.install()
    assert moto_ext.is_installed()
    doc = moto_ext.__doc__ or ""
    for phrase in ("PrivateIpAddress", "InvalidParameterValue", "at most one EIP", "5.2"):
        assert phrase in doc


def test_install_refuses_another_moto_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_ext, "_installed", False)
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(RuntimeError, match=r"moto 5\.2\.x only, found moto 5\.3\.0"):
        moto_ext.install()


def test_associate_to_a_secondary_ip_is_recorded(world: World, ec2: Any) -> None:
    lb_a, web_b = world.nodes["lb-a"], world.eips["web-b"]
    association_id = associate(ec2, web_b.allocation_id, lb_a.eni_id, "10.0.0.12")
    got = address(ec2, web_b.allocation_id)
    assert got["PrivateIpAddress"] == "10.0.0.12"
    assert got["NetworkInterfaceId"] == lb_a.eni_id
    assert got["AssociationId"] == association_id
    assert got["InstanceId"] == lb_a.instance_id


def test_two_eips_on_one_eni_both_stay(world: World, ec2: Any) -> None:
    lb_a = world.nodes["lb-a"]
    web_a, web_b = world.eips["web-a"], world.eips["web-b"]
    associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.0.0.11")
    associate(ec2, web_b.allocation_id, lb_a.eni_id, "10.0.0.12")
    assert address(ec2, web_a.allocation_id)["PrivateIpAddress"] == "10.0.0.11"
    assert address(ec2, web_b.allocation_id)["PrivateIpAddress"] == "10.0.0.12"

    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[lb_a.eni_id])["NetworkInterfaces"][0]
    assert eni["Association"]["PublicIp"] == web_a.public_ip
    per_ip = {
        item["PrivateIpAddress"]: item["Association"]["PublicIp"]
        for item in eni["PrivateIpAddresses"]
    }
    assert per_ip == {"10.0.0.11": web_a.public_ip, "10.0.0.12": web_b.public_ip}


def test_second_eip_on_an_occupied_private_ip_evicts_the_first(world: World, ec2: Any) -> None:
    lb_a = world.nodes["lb-a"]
    web_a, eip_3 = world.eips["web-a"], world.eips["eip-3"]
    associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.0.0.12")
    associate(ec2, eip_3.allocation_id, lb_a.eni_id, "10.0.0.12")
    evicted = address(ec2, web_a.allocation_id)
    assert "AssociationId" not in evicted
    assert "PrivateIpAddress" not in evicted
    assert address(ec2, eip_3.allocation_id)["PrivateIpAddress"] == "10.0.0.12"


def test_private_ip_not_on_the_eni_is_invalid(world: World, ec2: Any) -> None:
    lb_a, web_a = world.nodes["lb-a"], world.eips["web-a"]
    with pytest.raises(ClientError) as info:
        associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.0.0.22")  # lb-b's secondary
    assert error_code(info) == "InvalidParameterValue"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = info.value.response["Error"]["Message"]
    assert "10.0.0.22" in message
    assert lb_a.eni_id in message
    assert "AssociationId" not in address(ec2, web_a.allocation_id)


def test_without_private_ip_the_primary_is_used(world: World, ec2: Any) -> None:
    lb_b, web_b = world.nodes["lb-b"], world.eips["web-b"]
    associate(ec2, web_b.allocation_id, lb_b.eni_id)
    assert address(ec2, web_b.allocation_id)["PrivateIpAddress"] == "10.0.0.21"
    ec2.associate_address(
        AllocationId=world.eips["web-a"].allocation_id,
        InstanceId=world.nodes["lb-a"].instance_id,
        AllowReassociation=True,
    )
    got = address(ec2, world.eips["web-a"].allocation_id)
    assert (got["NetworkInterfaceId"], got["PrivateIpAddress"]) == (
        world.nodes["lb-a"].eni_id,
        "10.0.0.11",
    )


def test_reassociation_moves_the_eip_with_a_new_association_id(world: World, ec2: Any) -> None:
    lb_a, lb_b, web_b = world.nodes["lb-a"], world.nodes["lb-b"], world.eips["web-b"]
    first = associate(ec2, web_b.allocation_id, lb_b.eni_id)
    with pytest.raises(ClientError) as info:
        ec2.associate_address(
            AllocationId=web_b.allocation_id,
            NetworkInterfaceId=lb_a.eni_id,
            PrivateIpAddress="10.0.0.12",
            AllowReassociation=False,
        )
    assert error_code(info) == "Resource.AlreadyAssociated"

    second = associate(ec2, web_b.allocation_id, lb_a.eni_id, "10.0.0.12")
    assert second != first
    got = address(ec2, web_b.allocation_id)
    assert (got["NetworkInterfaceId"], got["PrivateIpAddress"], got["AssociationId"]) == (
        lb_a.eni_id,
        "10.0.0.12",
        second,
    )
    eni_b = ec2.describe_network_interfaces(NetworkInterfaceIds=[lb_b.eni_id])["NetworkInterfaces"][
        0
    ]
    assert "Association" not in eni_b  # lb-b's primary no longer shows web-b


def test_disassociate_clears_and_a_stale_id_is_not_found(world: World, ec2: Any) -> None:
    lb_a, web_a = world.nodes["lb-a"], world.eips["web-a"]
    association_id = associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.0.0.12")
    ec2.disassociate_address(AssociationId=association_id)
    got = address(ec2, web_a.allocation_id)
    for key in ("AssociationId", "NetworkInterfaceId", "PrivateIpAddress", "InstanceId"):
        assert key not in got
    with pytest.raises(ClientError) as info:
        ec2.disassociate_address(AssociationId=association_id)
    assert error_code(info) == "InvalidAssociationID.NotFound"


def test_private_ip_filter_matches_a_secondary(world: World, ec2: Any) -> None:
    lb_a = world.nodes["lb-a"]
    associate(ec2, world.eips["web-a"].allocation_id, lb_a.eni_id)
    associate(ec2, world.eips["web-b"].allocation_id, lb_a.eni_id, "10.0.0.12")
    found = ec2.describe_addresses(
        Filters=[{"Name": "private-ip-address", "Values": ["10.0.0.12"]}]
    )["Addresses"]
    assert [a["AllocationId"] for a in found] == [world.eips["web-b"].allocation_id]


def test_unassigning_a_secondary_ip_disassociates_its_eip(world: World, ec2: Any) -> None:
    lb_a, web_b = world.nodes["lb-a"], world.eips["web-b"]
    associate(ec2, web_b.allocation_id, lb_a.eni_id, "10.0.0.12")
    ec2.unassign_private_ip_addresses(
        NetworkInterfaceId=lb_a.eni_id, PrivateIpAddresses=["10.0.0.12"]
    )
    assert "AssociationId" not in address(ec2, web_b.allocation_id)


# --- request log and faults ----------------------------------------------------------------


def test_log_records_actions_in_order_with_status(
    region: SimulatedRegion, world: World, ec2: Any
) -> None:
    since = region.mark()
    lb_a, web_a = world.nodes["lb-a"], world.eips["web-a"]
    ec2.describe_addresses(AllocationIds=[web_a.allocation_id])
    associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.0.0.12")
    with pytest.raises(ClientError):
        associate(ec2, web_a.allocation_id, lb_a.eni_id, "10.9.9.9")
    calls = region.calls(since=since)
    assert region.actions(since) == ["DescribeAddresses", "AssociateAddress", "AssociateAddress"]
    assert [c.status for c in calls] == [200, 200, 400]
    assert calls[1].params["PrivateIpAddress"] == "10.0.0.12"
    assert calls[1].params["AllocationId"] == web_a.allocation_id
    assert all(c.client == "testing" and c.started <= c.ended for c in calls)
    assert region.count("AssociateAddress", since) == 2
    assert region.count("AssociateAddress", region.mark()) == 0


def test_injected_throttling_is_retried_by_botocore(region: SimulatedRegion, world: World) -> None:
    retrying = ec2_client(region, config=Config(retries={"mode": "standard", "max_attempts": 5}))
    try:
        since = region.mark()
        region.inject("DescribeAddresses", "RequestLimitExceeded", 503, times=2)
        found = retrying.describe_addresses(AllocationIds=[world.eips["web-a"].allocation_id])
    finally:
        retrying.close()
    assert found["Addresses"][0]["AllocationId"] == world.eips["web-a"].allocation_id
    calls = region.calls("DescribeAddresses", since)
    assert [(c.status, c.injected) for c in calls] == [(503, True), (503, True), (200, False)]


def test_injected_unauthorized_surfaces_as_client_error(
    region: SimulatedRegion, world: World, ec2: Any
) -> None:
    region.inject("AssociateAddress", "UnauthorizedOperation", 403)
    since = region.mark()
    with pytest.raises(ClientError) as info:
        associate(ec2, world.eips["web-a"].allocation_id, world.nodes["lb-a"].eni_id)
    assert error_code(info) == "UnauthorizedOperation"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert [(c.action, c.status) for c in region.calls(since=since)] == [("AssociateAddress", 403)]
    associate(ec2, world.eips["web-a"].allocation_id, world.nodes["lb-a"].eni_id)  # used up


def test_fault_for_another_action_and_clear_faults(
    region: SimulatedRegion, world: World, ec2: Any
) -> None:
    region.inject("DisassociateAddress", "InternalError", times=None)
    ec2.describe_addresses()  # not matched
    region.clear_faults()
    associate(ec2, world.eips["web-a"].allocation_id, world.nodes["lb-a"].eni_id)
    assert region.requests[-1].status == 200


def test_latency_is_added_to_every_answer(region: SimulatedRegion, world: World, ec2: Any) -> None:
    region.latency = 0.05
    try:
        started = time.monotonic()
        ec2.describe_addresses()
        elapsed = time.monotonic() - started
    finally:
        region.latency = 0.0
    assert elapsed >= 0.05
    assert region.requests[-1].ended - region.requests[-1].started >= 0.05


def test_only_loopback_binds() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatedRegion(host="0.0.0.0")


# --- the world ----------------------------------------------------------------------------


def test_build_pair_gives_the_documented_addresses(world: World, ec2: Any) -> None:
    expected = {
        "lb-a": ("10.0.0.11", ("10.0.0.12",), "0a:00:00:00:00:0a"),
        "lb-b": ("10.0.0.21", ("10.0.0.22",), "0a:00:00:00:00:0b"),
    }
    for name, (primary, secondaries, mac) in expected.items():
        node = world.nodes[name]
        assert (node.primary_ip, node.secondary_ips, node.mac) == (primary, secondaries, mac)
        assert node.subnet_cidr == "10.0.0.0/24"
        assert node.device_number == 0
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[node.eni_id])[
            "NetworkInterfaces"
        ][0]
        assert eni["Attachment"]["InstanceId"] == node.instance_id
        assert eni["Attachment"]["DeviceIndex"] == 0
        assert eni["MacAddress"] == mac
        assert eni["AvailabilityZone"] == "eu-west-1a"
        flags = {item["PrivateIpAddress"]: item["Primary"] for item in eni["PrivateIpAddresses"]}
        assert flags == {primary: True, **dict.fromkeys(secondaries, False)}

    assert {(e.name, e.home) for e in world.eips.values()} == {
        ("web-a", "lb-a"),
        ("web-b", "lb-b"),
        ("eip-3", "lb-a"),
    }
    tags = {
        a["AllocationId"]: {t["Key"]: t["Value"] for t in a.get("Tags", [])}
        for a in ec2.describe_addresses()["Addresses"]
    }
    for eip in world.eips.values():
        assert tags[eip.allocation_id] == {"Name": eip.name}
        assert "AssociationId" not in address(ec2, eip.allocation_id)
