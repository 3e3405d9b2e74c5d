"""Heartbeat v1 (eipha heartbeat): argument order, status text as Heartbeat itself reads it,
and LSB exit codes, against an in-memory EC2."""

from __future__ import annotations

import subprocess

import pytest

from eipha import errors
from eipha.agents import heartbeat
from tests.unit.test_agents_common import (
    A_PRIMARY,
    A_SECOND,
    B_PRIMARY,
    CONFIG,
    WEB_A,
    WEB_B,
    World,
)

# Heartbeat's ResourceManager (we_own_resource in heartbeat 3.0.6), verbatim: the command's
# stdout is all it looks at.
WE_OWN_RESOURCE = r"""
case `cat "$1"` in
  *[Nn][Oo][Tt]\ *[Rr]unning*)	exit 3;;
  *[Rr]unning*|*OK*)			exit 0;;
  *)					exit 3;;
esac
"""
OWNED, NOT_OWNED = 0, 3


def heartbeat_sees(text: str, tmp_path) -> int:
    out = tmp_path / "status.out"
    out.write_text(text)
    result = subprocess.run(["sh", "-c", WE_OWN_RESOURCE, "sh", str(out)], check=False, timeout=30)
    return result.returncode


def run(world: World, *args: str) -> tuple[int, str]:
    lines: list[str] = []
    code = heartbeat.run(args, world.setup, lines.append)
    return code, "".join(f"{line}\n" for line in lines)


@pytest.fixture
def world() -> World:
    return World()


# --------------------------------------------------------------------------- the harness


@pytest.mark.parametrize(
    ("text", "sees"),
    [
        ("running\n", OWNED),
        ("not running\n", NOT_OWNED),
        ("", NOT_OWNED),
        ("not-running\n", OWNED),  # the trap: it contains "running"
        ("BROKEN\n", OWNED),
    ],
)
def test_the_harness_reads_like_heartbeat(text: str, sees: int, tmp_path):
    assert heartbeat_sees(text, tmp_path) == sees


# --------------------------------------------------------------------------- status


def test_status_running(world: World, tmp_path):
    world.ec2.put(WEB_A, A_PRIMARY)
    code, out = run(world, "web-a", "status")
    assert (code, out) == (0, "running\n")
    assert heartbeat_sees(out, tmp_path) == OWNED


def test_status_not_running_here_is_not_running(world: World, tmp_path):
    world.ec2.put(WEB_B, B_PRIMARY)  # on the peer
    code, out = run(world, "web-b", "status")
    assert (code, out) == (3, "not running\n")
    assert heartbeat_sees(out, tmp_path) == NOT_OWNED


def test_status_on_the_wrong_private_ip_is_not_running(world: World, tmp_path):
    world.ec2.put(WEB_A, A_SECOND)  # this node, but not web-a's binding
    code, out = run(world, "web-a", "status")
    assert (code, out) == (3, "not running\n")
    assert heartbeat_sees(out, tmp_path) == NOT_OWNED


@pytest.mark.parametrize(
    ("break_it", "code"),
    [("imds", 4), ("api", 4), ("permission", 4), ("unknown eip", 6), ("bad config", 6)],
)
def test_status_unknown_or_not_configured_prints_not_running(
    world: World, tmp_path, break_it: str, code: int
):
    world.ec2.put(WEB_A, A_PRIMARY)
    eip = "web-a"
    if break_it == "imds":
        world.node = None
    elif break_it == "api":
        world.ec2.fail["DescribeAddresses"] = errors.AwsError("DescribeAddresses failed", "500")
    elif break_it == "permission":
        world.ec2.fail["DescribeAddresses"] = errors.AwsPermissionDenied("no", code="Unauth")
    elif break_it == "unknown eip":
        eip = "web-z"
    else:
        world.text = "eips: {}\nbogus: 1\n"
    got, out = run(world, eip, "status")
    assert (got, out) == (code, "not running\n")
    assert heartbeat_sees(out, tmp_path) == NOT_OWNED


def test_status_with_a_bad_argument_still_prints_not_running(world: World):
    assert run(world, "web-a", "nowhere", "status") == (2, "not running\n")


# --------------------------------------------------------------------------- start, stop


def test_start_then_stop(world: World):
    assert run(world, "web-b", "start") == (0, "")
    assert world.where(WEB_B) == A_SECOND
    assert run(world, "web-b", "stop") == (0, "")
    assert world.where(WEB_B) is None


def test_binding_argument_places_an_eip_the_config_does_not_have(world: World):
    world.text = CONFIG.replace(f"  web-a: {{allocation_id: {WEB_A}, home: lb-a}}\n", "")
    assert run(world, WEB_A, "secondary", "start") == (0, "")
    assert world.where(WEB_A) == A_SECOND
    assert run(world, WEB_A, "10.0.0.12", "status") == (0, "running\n")
    assert run(world, WEB_A, "primary", "status") == (3, "not running\n")


def test_binding_argument_must_agree_with_the_configs_rule(world: World):
    """haresources "eipha::web-a::secondary" on web-a's home node, whose rule says its
    primary IP: not configured (6), nothing moved; one that restates the rule is fine."""
    assert run(world, "web-a", "secondary", "start") == (6, "")
    assert world.where(WEB_A) is None
    assert run(world, "web-a", "secondary", "status") == (6, "not running\n")
    assert run(world, "web-b", "secondary", "start") == (0, "")
    assert world.where(WEB_B) == A_SECOND
    assert run(world, "web-b", "10.0.0.12", "status") == (0, "running\n")


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (errors.AwsError("AssociateAddress failed", "500"), 1),
        (errors.AwsPermissionDenied("no", code="UnauthorizedOperation"), 4),
        (errors.AwsNotConfigured("bad", code="InvalidParameterValue"), 6),
    ],
)
def test_start_failure_is_an_lsb_code(world: World, fault: errors.EiphaError, code: int):
    world.ec2.fail["AssociateAddress"] = fault
    assert run(world, "web-a", "start") == (code, "")


def test_start_when_imds_is_down_is_generic_failure(world: World):
    world.node = None
    assert run(world, "web-a", "start") == (1, "")


def test_stop_fails_only_when_provably_still_here(world: World):
    world.ec2.put(WEB_A, A_PRIMARY)
    world.ec2.fail["DisassociateAddress"] = errors.AwsError("DisassociateAddress failed", "500")
    assert run(world, "web-a", "stop") == (1, "")
    world.ec2.fail["DescribeAddresses"] = errors.AwsError("DescribeAddresses failed", "500")
    assert run(world, "web-a", "stop") == (0, "")


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("args", "call"),
    [
        (["web-a", "start"], heartbeat.Call("web-a", None, "start")),
        (["web-a", "secondary", "stop"], heartbeat.Call("web-a", "secondary", "stop")),
        (
            ["eipalloc-0000000a", "10.0.0.12", "status"],
            heartbeat.Call(WEB_A, "10.0.0.12", "status"),
        ),
    ],
)
def test_parse(args: list[str], call: heartbeat.Call):
    assert heartbeat.parse(args) == call


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["start"],
        ["web-a"],
        ["web-a", "restart"],
        ["web-a", "b", "c", "start"],
        ["web-a", "x", "start"],
    ],
)
def test_usage_errors_exit_2_with_nothing_on_stdout(world: World, args: list[str], capsys):
    assert run(world, *args) == (2, "")
    assert world.ec2.calls == []
    assert world.built == []


def test_usage_text_goes_to_stderr(capsys):
    from eipha.cli import main

    assert main(["heartbeat", "web-a", "bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert heartbeat.USAGE in captured.err
