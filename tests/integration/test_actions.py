"""start / stop / status against a real moto server and IMDSv2 doubles, eipha as a subprocess.

Each test checks what EC2 ends up holding and the exact API calls eipha made (the request
log of the simulated region), against the documented budget: status 1, stop ≤ 2, start ≤ 3.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import Lab

DESCRIBE, ASSOCIATE, DISASSOCIATE = "DescribeAddresses", "AssociateAddress", "DisassociateAddress"


def on(lab: Lab, eip: str) -> tuple[str | None, str | None]:
    address = lab.where(eip)
    return address.get("NetworkInterfaceId"), address.get("PrivateIpAddress")


def test_start_onto_the_primary(lab: Lab):
    result = lab.run("lb-a", "start", "web-a")
    assert result.code == 0, result.err
    assert on(lab, "web-a") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.11")
    assert result.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert "web-a" in result.err
    assert "associated" in result.err


def test_start_onto_the_secondary(lab: Lab):
    result = lab.run("lb-a", "start", "web-b")
    assert result.code == 0, result.err
    assert on(lab, "web-b") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.12")


def test_start_when_already_there_makes_no_associate_call(lab: Lab):
    association = lab.associate("web-a", "lb-a")
    result = lab.run("lb-a", "start", "web-a")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE]
    assert lab.where("web-a")["AssociationId"] == association


def test_takeover_of_an_eip_held_by_the_other_node(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.associate("web-b", "lb-b")
    result = lab.run("lb-a", "start", "web-b")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-b") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.12")
    assert on(lab, "web-a") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.11")  # untouched
    params = lab.region.calls(ASSOCIATE)[-1].params
    assert params["AllowReassociation"] == "true"
    assert params["PrivateIpAddress"] == "10.0.0.12"
    assert "InstanceId" not in params
    # the peer now sees web-b as not running, and failback is one call again
    assert lab.run("lb-b", "status", "web-b").out == "not running\n"
    back = lab.run("lb-b", "start", "web-b")
    assert back.code == 0
    assert back.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-b") == (lab.world.nodes["lb-b"].eni_id, "10.0.0.21")


def test_stop_when_here_uses_the_association_just_read(lab: Lab):
    association = lab.associate("web-a", "lb-a")
    result = lab.run("lb-a", "stop", "web-a")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE, DISASSOCIATE]
    assert lab.region.calls(DISASSOCIATE)[-1].params["AssociationId"] == association
    assert "AssociationId" not in lab.where("web-a")


def test_stop_on_a_secondary_ip_of_this_node(lab: Lab):
    lab.associate("web-b", "lb-a", "10.0.0.12")
    result = lab.run("lb-a", "stop", "web-b")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE, DISASSOCIATE]


def test_stop_when_elsewhere_makes_no_disassociate_call(lab: Lab):
    lab.associate("web-a", "lb-b", "10.0.0.22")
    result = lab.run("lb-a", "stop", "web-a")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE]
    assert on(lab, "web-a") == (lab.world.nodes["lb-b"].eni_id, "10.0.0.22")


def test_stop_when_unassociated(lab: Lab):
    result = lab.run("lb-a", "stop", "web-a", "web-b")
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE]


def test_status_is_an_exact_match(lab: Lab):
    # web-b belongs on lb-a's secondary; on lb-a's primary it is "not running" there
    lab.associate("web-b", "lb-a", "10.0.0.11")
    result = lab.run("lb-a", "status", "web-b")
    assert (result.code, result.out) == (3, "not running\n")
    assert result.calls == [DESCRIBE]
    lab.associate("web-b", "lb-a", "10.0.0.12")
    result = lab.run("lb-a", "status", "web-b")
    assert (result.code, result.out) == (0, "running\n")


def test_status_of_several_eips(lab: Lab):
    lab.associate("web-a", "lb-a")
    result = lab.run("lb-a", "status", "web-a", "web-b")
    assert result.code == 3
    assert result.out == "web-a: running\nweb-b: not running\n"
    assert result.calls == [DESCRIBE]


def test_several_eips_in_one_start_share_one_describe(lab: Lab):
    result = lab.run("lb-a", "start", "web-a", "web-b")
    assert result.code == 0, result.err
    assert result.calls[0] == DESCRIBE
    assert result.calls.count(ASSOCIATE) == 2
    assert on(lab, "web-a")[1] == "10.0.0.11"
    assert on(lab, "web-b")[1] == "10.0.0.12"


@pytest.mark.parametrize("how", ["allocation id", "public ip"])
def test_eip_named_by_allocation_id_or_public_ip(lab: Lab, how: str):
    eip = lab.world.eips["web-b"]
    token = eip.allocation_id if how == "allocation id" else eip.public_ip
    result = lab.run("lb-a", "start", token)
    assert result.code == 0, result.err
    # the config entry is found either way, so the binding rule applies (secondary)
    assert on(lab, "web-b") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.12")
    status = lab.run("lb-a", "status", token)
    assert status.out == "running\n"
    assert status.calls == ([DESCRIBE] if how == "allocation id" else [DESCRIBE, DESCRIBE])


def test_without_config_private_ip_says_where(lab: Lab):
    alloc = lab.alloc("web-b")
    result = lab.run("lb-a", "start", "--private-ip", "secondary", alloc, config=None)
    assert result.code == 0, result.err
    assert on(lab, "web-b") == (lab.world.nodes["lb-a"].eni_id, "10.0.0.12")
    status = lab.run("lb-a", "status", "--private-ip", "10.0.0.12", alloc, config=None)
    assert status.out == "running\n"
    missing = lab.run("lb-a", "start", alloc, config=None)
    assert missing.code == 6
    assert "--private-ip" in missing.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("eipha: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_eip_name(lab: Lab):
    result = lab.run("lb-a", "start", "web-z")
    assert result.code == 6
    assert "unknown EIP 'web-z'" in one_error_line(result.err)
    assert result.calls == []


def test_allocation_id_ec2_does_not_know(lab: Lab):
    result = lab.run("lb-a", "start", "--private-ip", "primary", "eipalloc-0123456789abcdef0")
    assert result.code == 6
    assert "InvalidAllocationID.NotFound" in one_error_line(result.err)
    status = lab.run("lb-a", "status", "--private-ip", "primary", "eipalloc-0123456789abcdef0")
    assert (status.code, status.out) == (6, "not running\n")


def test_binding_ip_absent_from_the_eni(lab: Lab):
    config = lab.config("lb-a")
    text = config.read_text().replace(
        "home: lb-b", "home: lb-b\n    private_ips: {lb-a: 10.0.0.99}"
    )
    config.write_text(text)
    result = lab.run("lb-a", "start", "web-b", config=config)
    assert result.code == 6
    assert "10.0.0.99" in one_error_line(result.err)
    assert ASSOCIATE not in result.calls


def test_throttling_is_retried(lab: Lab):
    lab.region.inject(ASSOCIATE, "RequestLimitExceeded", times=2)
    lab.region.inject(DESCRIBE, "RequestLimitExceeded", times=1)
    result = lab.run("lb-a", "start", "web-a")
    assert result.code == 0, result.err
    assert result.calls.count(ASSOCIATE) == 3
    assert on(lab, "web-a")[1] == "10.0.0.11"


@pytest.mark.parametrize(
    ("code", "exit_code"), [("UnauthorizedOperation", 4), ("InvalidParameterValue", 6)]
)
def test_a_permanent_error_is_reported_with_its_code(lab: Lab, code: str, exit_code: int):
    lab.associate("web-b", "lb-b")
    lab.region.inject(ASSOCIATE, code)
    result = lab.run("lb-a", "start", "web-b")
    assert result.code == exit_code
    assert code in one_error_line(result.err)
    assert result.calls.count(ASSOCIATE) == 1  # permanent: not retried
    assert on(lab, "web-b") == (lab.world.nodes["lb-b"].eni_id, "10.0.0.21")  # not lost


def test_persistent_outage_fails_within_the_deadline(lab: Lab):
    lab.region.inject(None, "InternalError", times=None)
    result = lab.run("lb-a", "start", "--timeout", "3", "web-a")
    assert result.code == 1
    assert "InternalError" in one_error_line(result.err)
    status = lab.run("lb-a", "status", "--timeout", "3", "web-a")
    assert (status.code, status.out) == (4, "not running\n")


CLOSED = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"}


def test_imds_down_is_unknown_for_status(lab: Lab):
    result = lab.run("lb-a", "status", "web-a", env=CLOSED)
    assert (result.code, result.out) == (4, "not running\n")
    assert "metadata" in one_error_line(result.err).lower()
    assert result.calls == []
    start = lab.run("lb-a", "start", "web-a", env=CLOSED)
    assert start.code == 1
    assert start.calls == []


def test_imds_errors_are_unknown_not_empty(lab: Lab):
    lab.imds["lb-a"].fail_next(50, 500)
    result = lab.run("lb-a", "status", "web-a")
    assert (result.code, result.out) == (4, "not running\n")
    assert "500" in one_error_line(result.err)


def test_imdsv1_only_is_refused(lab: Lab):
    lab.imds["lb-a"].imdsv1_only = True
    result = lab.run("lb-a", "start", "web-a")
    assert result.code == 1
    assert "IMDSv2" in one_error_line(result.err)
    assert result.calls == []


def test_invalid_config_is_one_line_exit_6(lab: Lab):
    config = lab.tmp / "bad.yaml"
    config.write_text("eips: {web-a: {allocation_id: eipalloc-xyz, home: lb-a}}\ntimout: 3\n")
    result = lab.run("lb-a", "start", "web-a", config=config)
    assert result.code == 6
    line = one_error_line(result.err)
    assert "eipalloc-xyz" in line
    assert "1 more" in line
    assert result.calls == []
