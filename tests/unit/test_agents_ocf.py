"""Pacemaker (eipha ocf): meta-data from the one parameter table, the docs' copy of it,
OCF codes and exit reasons per action, and the deadline Pacemaker's timeout leaves."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eipha import errors
from eipha.agents import ocf
from eipha.exitcodes import Ocf
from tests.unit.test_agents_common import A_PRIMARY, A_SECOND, WEB_A, WEB_B, World

DTD = Path("/usr/share/resource-agents/ra-api-1.dtd")
NETWORK_ACTIONS = ("start", "stop", "monitor", "status")


@pytest.fixture
def world() -> World:
    return World()


def run(world: World, action: str, capsys, **env: str) -> tuple[int, str, list[str]]:
    """(code, stdout, exit reasons)."""
    lines: list[str] = []
    code = ocf.run(action, env, world.setup, lines.append)
    err = capsys.readouterr().err
    prefix = env.get("OCF_EXIT_REASON_PREFIX", ocf.REASON_PREFIX)
    reasons = [line[len(prefix) :] for line in err.splitlines() if line.startswith(prefix)]
    return code, "".join(lines), reasons


# --------------------------------------------------------------------------- meta-data


def test_meta_data_is_well_formed_with_every_parameter_and_action():
    text = ocf.meta_data()
    assert text.startswith('<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">')
    root = ET.fromstring(text)
    assert root.tag == "resource-agent"
    assert root.get("name") == "eipha"
    assert [child.tag for child in root] == [
        "version",
        "longdesc",
        "shortdesc",
        "parameters",
        "actions",
    ]
    parameters = {p.get("name"): p for p in root.iter("parameter")}
    assert list(parameters) == [p.name for p in ocf.PARAMETERS]
    for spec in ocf.PARAMETERS:
        element = parameters[spec.name]
        assert element.get("required") == ("1" if spec.required else "0")
        assert element.get("unique") == ("1" if spec.unique else "0")
        assert element.findtext("longdesc") == spec.longdesc
        assert element.findtext("shortdesc") == spec.shortdesc
        content = element.find("content")
        assert content is not None
        assert content.get("type") == spec.type
        assert content.get("default") == spec.default
    actions = {a.get("name"): a for a in root.iter("action")}
    assert set(actions) == {"start", "stop", "monitor", "status", "validate-all", "meta-data"}
    assert set(actions) == {a.name for a in ocf.ACTIONS}


def test_eip_is_required_and_unique():
    [eip] = [p for p in ocf.PARAMETERS if p.name == "eip"]
    assert eip.required
    assert eip.unique


def test_action_timeouts_have_the_s_suffix_and_outlast_the_default_deadline():
    root = ET.fromstring(ocf.meta_data())
    for action in root.iter("action"):
        for key in ("timeout", "interval"):
            value = action.get(key)
            if value is not None:
                assert value.endswith("s"), (action.get("name"), key, value)
                assert value[:-1].isdigit()
        if action.get("name") in NETWORK_ACTIONS:
            assert int(action.get("timeout", "0s")[:-1]) > 20
    [monitor] = [a for a in root.iter("action") if a.get("name") == "monitor"]
    assert (monitor.get("interval"), monitor.get("timeout")) == ("20s", "30s")


def test_meta_data_is_valid_against_ra_api_1_dtd():
    # scripts/test.sh installs libxml2-utils (xmllint) and resource-agents (the DTD)
    assert shutil.which("xmllint") is not None, "xmllint is missing"
    assert DTD.exists(), f"{DTD} is missing"
    result = subprocess.run(
        ["xmllint", "--noout", "--dtdvalid", str(DTD), "-"],
        input=ocf.meta_data(),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_markdown_escapes_pipes(monkeypatch):
    monkeypatch.setattr(ocf, "PARAMETERS", (ocf.Parameter("x", "X", "a | b"),))
    assert "| `x` | no |  | a \\| b |" in ocf.parameters_markdown()


def test_meta_data_action_needs_no_config(world: World, capsys):
    world.text = "not: [valid"
    code, out, reasons = run(world, "meta-data", capsys)
    assert code == 0
    assert out == ocf.meta_data()
    assert reasons == []
    assert world.built == []


# --------------------------------------------------------------------------- actions


def test_lifecycle(world: World, capsys):
    assert run(world, "monitor", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.NOT_RUNNING
    assert run(world, "start", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert world.where(WEB_A) == A_PRIMARY
    assert run(world, "start", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert run(world, "monitor", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert run(world, "status", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert run(world, "stop", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert world.where(WEB_A) is None
    assert run(world, "stop", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.SUCCESS
    assert run(world, "monitor", capsys, OCF_RESKEY_eip="web-a")[0] == Ocf.NOT_RUNNING


def test_private_ip_parameter_that_restates_the_rule(world: World, capsys):
    env = {"OCF_RESKEY_eip": "web-b", "OCF_RESKEY_private_ip": "secondary"}
    assert run(world, "start", capsys, **env)[0] == 0
    assert world.where(WEB_B) == A_SECOND
    assert run(world, "monitor", capsys, **env)[0] == Ocf.SUCCESS
    assert run(world, "monitor", capsys, OCF_RESKEY_eip="web-b")[0] == Ocf.SUCCESS


@pytest.mark.parametrize("action", ["validate-all", "start", "monitor"])
def test_private_ip_parameter_that_contradicts_the_rule(world: World, capsys, action: str):
    """web-a's home is lb-a, so its rule here is the primary IP: "secondary" is a mistake
    in the resource, not an override (a person has --private-ip for that)."""
    env = {"OCF_RESKEY_eip": "web-a", "OCF_RESKEY_private_ip": "secondary"}
    code, _, [reason] = run(world, action, capsys, **env)
    assert code == Ocf.ERR_CONFIGURED
    assert reason.startswith(
        "web-a: the private IP given (secondary) contradicts /etc/eipha/eipha.yaml (its "
        "binding rule puts web-a on the primary IP of lb-a, as lb-a is its home; "
    )
    assert "AssociateAddress" not in world.ec2.calls
    assert world.where(WEB_A) is None


def test_a_contradicting_address_is_found_once_the_node_is_known(world: World, capsys):
    """An address can only be told from the rule's choice with the node's ENI: validate-all
    (no network) lets it pass, start and monitor refuse it, naming both IPs."""
    env = {"OCF_RESKEY_eip": "web-b", "OCF_RESKEY_private_ip": "10.0.0.11"}
    assert run(world, "validate-all", capsys, **env)[0] == Ocf.SUCCESS
    for action in ("start", "monitor"):
        code, _, [reason] = run(world, action, capsys, **env)
        assert code == Ocf.ERR_CONFIGURED
        assert reason.startswith(
            "web-b: the private IP given (10.0.0.11) contradicts "
            "/etc/eipha/eipha.yaml (its binding rule puts web-b on 10.0.0.12, a secondary IP "
            "of lb-a, as its home is lb-b; give none, so that the config decides, or set "
            "eips.web-b.private_ips.lb-a there)"
        )
    assert "AssociateAddress" not in world.ec2.calls
    assert world.where(WEB_B) is None


@pytest.mark.parametrize(
    ("env", "code", "reason"),
    [
        ({"OCF_RESKEY_eip": "web-a"}, 0, None),
        ({}, 6, "parameter eip is not set"),
        ({"OCF_RESKEY_eip": ""}, 6, "parameter eip is not set"),
        ({"OCF_RESKEY_eip": "web-z"}, 6, "unknown EIP 'web-z'"),
        ({"OCF_RESKEY_eip": "203.0.113.10"}, 0, None),  # which EIP it is: at start
        ({"OCF_RESKEY_eip": "eipalloc-0000000c"}, 6, "eipalloc-0000000c is not in /etc/eipha"),
        ({"OCF_RESKEY_eip": "eipalloc-0000000c", "OCF_RESKEY_private_ip": "secondary"}, 0, None),
        (
            {"OCF_RESKEY_eip": "web-a", "OCF_RESKEY_private_ip": "left"},
            6,
            "parameter private_ip='left'",
        ),
    ],
)
def test_validate_all(world: World, capsys, env: dict[str, str], code: int, reason: str | None):
    got, _, reasons = run(world, "validate-all", capsys, **env)
    assert got == code
    if reason is None:
        assert reasons == []
    else:
        [line] = reasons
        assert line.startswith(reason)
    assert world.ec2.calls == []  # never any network
    assert world.built == []


def test_a_public_ip_needs_a_config_or_private_ip(world: World, capsys):
    from eipha.config import EMPTY

    none = dataclasses.replace(EMPTY, looked_at="/etc/eipha/eipha.yaml")  # as load() says it
    world.load = lambda path: none  # type: ignore[method-assign]
    env = {"OCF_RESKEY_eip": "203.0.113.10"}
    code, _, [reason] = run(world, "validate-all", capsys, **env)
    assert code == 6
    assert reason == (
        "203.0.113.10 is not in any config (no config loaded: looked at "
        "/etc/eipha/eipha.yaml; set the config parameter or EIPHA_CONFIG, or say where it "
        "goes with private_ip)"
    )
    assert run(world, "validate-all", capsys, OCF_RESKEY_private_ip="primary", **env)[0] == 0


def test_a_public_ip_is_resolved_at_start(world: World, capsys):
    assert run(world, "start", capsys, OCF_RESKEY_eip="203.0.113.10")[0] == 0
    assert world.where(WEB_A) == A_PRIMARY
    assert world.ec2.calls[0] == "DescribeAddresses"  # by public IP, then the start's own


def test_a_broken_config_is_not_configured(world: World, capsys):
    world.text = "eips: {}\n"
    for action in ("validate-all", "start", "monitor"):
        code, _, [reason] = run(world, action, capsys, OCF_RESKEY_eip="web-a")
        assert code == Ocf.ERR_CONFIGURED
        assert "invalid config" in reason
    assert run(world, "stop", capsys, OCF_RESKEY_eip="web-a")[:3:2] == (0, [])


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (errors.AwsError("AssociateAddress failed", "InternalError"), Ocf.ERR_GENERIC),
        (errors.AwsPermissionDenied("AssociateAddress", "UnauthorizedOperation"), Ocf.ERR_PERM),
        (errors.AwsNotConfigured("AssociateAddress", "InvalidParameterValue"), Ocf.ERR_CONFIGURED),
    ],
)
def test_start_failures_have_a_code_and_a_reason(world: World, capsys, fault, code):
    world.ec2.fail["AssociateAddress"] = fault
    got, _, [reason] = run(world, "start", capsys, OCF_RESKEY_eip="web-a")
    assert got == code
    assert reason == str(fault)


def test_monitor_unknown_is_generic_error_never_not_running(world: World, capsys):
    world.node = None
    code, _, [reason] = run(world, "monitor", capsys, OCF_RESKEY_eip="web-a")
    assert code == Ocf.ERR_GENERIC
    assert reason.startswith("IMDS did not answer")


def test_stop_fails_only_when_provably_still_here(world: World, capsys):
    world.ec2.put(WEB_A, A_PRIMARY)
    world.ec2.fail["DisassociateAddress"] = errors.AwsError("DisassociateAddress failed", "500")
    code, _, [reason] = run(world, "stop", capsys, OCF_RESKEY_eip="web-a")
    assert code == Ocf.ERR_GENERIC
    assert reason.startswith("stop failed: web-a still on this node")
    world.node = None
    assert run(world, "stop", capsys, OCF_RESKEY_eip="web-a")[:3:2] == (0, [])


def test_stop_without_an_eip_succeeds(world: World, capsys):
    assert run(world, "stop", capsys)[:3:2] == (0, [])


@pytest.mark.parametrize(
    "action", ["notify", "promote", "demote", "migrate_to", "migrate_from", "reload", "recover"]
)
def test_other_actions_are_unimplemented(world: World, capsys, action: str):
    code, _, [reason] = run(world, action, capsys, OCF_RESKEY_eip="web-a")
    assert code == Ocf.ERR_UNIMPLEMENTED
    assert f"action {action!r} is not implemented" in reason
    assert world.built == []


def test_no_action_is_args_error(world: World, capsys):
    code, _, [reason] = run(world, "", capsys)
    assert code == Ocf.ERR_ARGS
    assert reason.startswith("no action given")


def test_usage(world: World, capsys):
    code, out, reasons = run(world, "usage", capsys)
    assert (code, reasons) == (0, [])
    assert out.startswith("usage: eipha ocf start|stop|monitor")


def test_exit_reason_prefix_and_one_line(world: World, capsys):
    world.ec2.fail["AssociateAddress"] = errors.AwsError("line one\nline two", "x")
    code, _, [reason] = run(
        world, "start", capsys, OCF_RESKEY_eip="web-a", OCF_EXIT_REASON_PREFIX="R:"
    )
    assert code == 1
    assert reason == "line one line two (x)"


# --------------------------------------------------------------------------- deadline


@pytest.mark.parametrize(
    ("timeout_ms", "seconds"),
    [(None, 5.0), ("30000", 5.0), ("4000", 1.5), ("1000", 1.0), ("junk", 5.0)],
)
def test_deadline_keeps_clear_of_pacemakers_timeout(world: World, capsys, timeout_ms, seconds):
    env = {"OCF_RESKEY_eip": "web-a"}
    if timeout_ms is not None:
        env["OCF_RESKEY_CRM_meta_timeout"] = timeout_ms
    assert run(world, "monitor", capsys, **env)[0] == Ocf.NOT_RUNNING
    # one node per call, one config load, and the deadline its action got (the config says 5 s)
    assert [a.deadlines for a in world.built] == [[seconds]]


# --------------------------------------------------------------------------- no boto


def heavy_modules_after(code: str) -> str:
    script = (
        "import sys\n"
        f"{code}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["ocf", "meta-data"],
        ["--help"],
        ["heartbeat", "--help"],
        ["keepalived", "--help"],
        ["keepalived", "notify", "--help"],
        ["keepalived", "fifo", "--help"],
        ["ocf", "--help"],
    ],
    ids=" ".join,
)
def test_cheap_paths_never_load_boto(args: list[str]):
    out = heavy_modules_after(
        f"from eipha.cli import main\nrc = main({args!r})\nassert rc == 0, rc"
    )
    assert "HEAVY []" in out
    if args == ["ocf", "meta-data"]:
        assert "<resource-agent" in out
