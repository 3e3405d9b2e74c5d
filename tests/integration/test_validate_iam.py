"""`eipha validate` (DryRun IAM checks against the simulated region) and `eipha iam-policy`."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from eipha import ec2
from tests.integration.conftest import Lab

ACTIONS = (
    "DescribeAddresses",
    "DescribeNetworkInterfaces",
    "AssociateAddress",
    "DisassociateAddress",
)


def checklist(lab: Lab, *args: str, **kwargs) -> tuple[int, dict[str, dict[str, str]]]:
    result = lab.run("lb-a", "validate", "--json", *args, **kwargs)
    assert "Traceback" not in result.err
    return result.code, {c["check"]: c for c in json.loads(result.out)}


def test_validate_a_permitted_setup(lab: Lab):
    lab.associate("web-a", "lb-a")
    code, checks = checklist(lab)
    assert code == 0, checks
    for action in ACTIONS:
        assert checks[f"IAM ec2:{action}"]["status"] == "ok"
    assert checks["web-a: binding IP"]["detail"].startswith("10.0.0.11 (primary)")
    assert checks["web-b: binding IP"]["detail"].startswith("10.0.0.12 (secondary)")
    assert checks["IMDSv2"]["status"] == "ok"
    # DryRun calls change nothing
    assert lab.where("web-a")["PrivateIpAddress"] == "10.0.0.11"
    assert "AssociationId" not in lab.where("web-b")
    dry = [r for r in lab.region.requests if r.action in ACTIONS and r.params.get("DryRun")]
    assert {r.action for r in dry} == set(ACTIONS)


def test_validate_a_policy_less_setup(lab: Lab):
    for action in ACTIONS:
        lab.region.inject(action, "UnauthorizedOperation", times=None)
    code, checks = checklist(lab)
    assert code == 4
    for action in ACTIONS:
        check = checks[f"IAM ec2:{action}"]
        assert check["status"] == "fail"
        assert "UnauthorizedOperation" in check["detail"]


def test_validate_one_missing_permission(lab: Lab):
    lab.region.inject("DisassociateAddress", "UnauthorizedOperation", times=None)
    code, checks = checklist(lab)
    assert code == 4
    assert checks["IAM ec2:DisassociateAddress"]["status"] == "fail"
    assert checks["IAM ec2:AssociateAddress"]["status"] == "ok"


def test_validate_binding_ip_missing_from_the_eni(lab: Lab):
    eips: dict[str, dict[str, Any]] = {
        e.name: {"allocation_id": e.allocation_id, "home": e.home} for e in lab.world.eips.values()
    }
    eips["web-b"]["private_ips"] = {"lb-a": "10.0.0.99"}
    code, checks = checklist(lab, config=lab.config("lb-a", eips=eips))
    assert code == 6
    assert checks["web-b: binding IP"]["status"] == "fail"
    assert "10.0.0.99 is not assigned" in checks["web-b: binding IP"]["detail"]


def test_validate_with_imds_down(lab: Lab):
    code, checks = checklist(lab, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"})
    assert code == 1
    assert checks["IMDSv2"]["status"] == "fail"
    assert list(checks) == ["config", "IMDSv2"]


@pytest.mark.parametrize(
    ("mode", "status", "code", "detail"),
    [
        (0o600, "ok", 0, "32 bytes, owner-only"),
        (0o640, "fail", 4, "open to group or others (mode 0640)"),
    ],
)
def test_validate_checks_the_monitor_key_without_showing_it(
    lab: Lab, tmp_path: Path, mode: int, status: str, code: int, detail: str
):
    lab.associate("web-a", "lb-a")
    key = tmp_path / "monitor.key"
    secret = "k" * 32
    key.write_text(secret)
    key.chmod(mode)
    config = lab.config("lb-a", monitor={"key_file": str(key)})
    result = lab.run("lb-a", "validate", "--json", config=config)
    checks = {c["check"]: c for c in json.loads(result.out)}
    assert (checks["monitor key"]["status"], result.code) == (status, code), result.out
    assert detail in checks["monitor key"]["detail"]
    assert secret not in result.out + result.err


def test_validate_text_is_a_checklist(lab: Lab):
    result = lab.run("lb-a", "validate")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert all(re.match(r"^\[( {2}ok|warn|FAIL|skip)\] ", line) for line in lines), result.out


def policy(lab: Lab, **kwargs: Any) -> dict[str, Any]:
    result = lab.run("lb-a", "iam-policy", **kwargs)
    assert result.code == 0, result.err
    assert result.calls == []  # no network
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_iam_policy_names_exactly_the_actions_eipha_calls(lab: Lab):
    document = policy(lab)
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {f"ec2:{op}" for op in called_operations()}
    assert not any("Allocate" in a or "Release" in a for a in actions)


def test_iam_policy_limits_the_mutating_actions_to_the_configured_eips(lab: Lab):
    document = policy(lab, config=lab.config("lb-a", region="eu-west-1"))
    [move] = [s for s in document["Statement"] if "ec2:AssociateAddress" in s["Action"]]
    eips = sorted(r for r in move["Resource"] if ":elastic-ip/" in r)
    assert eips == sorted(
        f"arn:aws:ec2:eu-west-1:*:elastic-ip/{e.allocation_id}" for e in lab.world.eips.values()
    )
    [describe] = [s for s in document["Statement"] if "ec2:DescribeAddresses" in s["Action"]]
    assert describe["Resource"] == "*"
    # without a region in the config, any region
    [move] = [s for s in policy(lab)["Statement"] if "ec2:AssociateAddress" in s["Action"]]
    assert all(r.startswith("arn:aws:ec2:*:*:") for r in move["Resource"])


def called_operations() -> set[str]:
    """The EC2 operations the EC2 layer really calls, read from its source: every
    ``self.client.<operation>(`` call of the gateway in eipha/ec2.py."""
    tree = ast.parse(Path(ec2.__file__).read_text())
    names = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "client"
    }
    return {"".join(part.title() for part in name.split("_")) for name in names}


def test_the_operation_list_is_what_the_ec2_layer_calls():
    assert called_operations() == set(ec2.OPERATIONS)


@pytest.mark.parametrize(
    ("region_name", "partition"),
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")],
)
def test_iam_policy_partition_follows_the_region(lab: Lab, region_name: str, partition: str):
    document = policy(lab, config=lab.config("lb-a", region=region_name))
    [move] = [s for s in document["Statement"] if "ec2:AssociateAddress" in s["Action"]]
    assert all(r.startswith(f"arn:{partition}:ec2:{region_name}:*:") for r in move["Resource"])
