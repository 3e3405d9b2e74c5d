"""The config file: strict parsing, every problem at once, and where the file comes from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from eipha import config
from eipha.config import Config, EipSpec, HealthCheck, MonitorSpec, NodeSpec, locate
from eipha.errors import ConfigError, NotConfigured

A1 = "eipalloc-0123456789abcdef0"
A2 = "eipalloc-0fedcba9876543210"

# the configuration reference's example, with the monitor section.
FULL = f"""\
region: eu-west-1            # optional; default: IMDS placement/region
node_name: lb-a
interface: eth0
timeout: 20
nodes:
  lb-a: {{instance_id: i-0aaaaaaaaaaaaaaaa, address: 10.0.0.11}}
  lb-b: {{instance_id: i-0bbbbbbbbbbbbbbbb, address: 10.0.0.21}}
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b, private_ips: {{lb-a: 10.0.0.12}}}}
monitor:
  port: 7694
  key_file: /etc/eipha/monitor.key
  interval: 1.0
  dead_after: 5.0
  init_dead: 15.0
  quorum: [10.0.0.1]
  health_check: {{command: "systemctl is-active --quiet haproxy", interval: 2, fall: 2, rise: 3}}
  auto_failback: true
  min_hold: 10.0
keepalived:
  instances: {{VI_WEB: [web-a, web-b]}}
"""

NODES = """\
nodes:
  lb-a: {instance_id: i-0aaaaaaaaaaaaaaaa, address: 10.0.0.11}
  lb-b: {instance_id: i-0bbbbbbbbbbbbbbbb, address: 10.0.0.21}
"""
EIPS = f"""\
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
"""
TWO_EIPS = f"""\
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b}}
"""
MONITOR = "monitor:\n  key_file: /etc/eipha/monitor.key\n"


def eip(body: str, name: str = "web-a") -> str:
    """An eips section with one EIP whose flow mapping is ``body``."""
    return f"eips:\n  {name}: {{{body}}}\n"


def entry(name: str, body: str) -> str:
    """One more ``name: {body}`` line under a section opened by :func:`eip` or ``nodes:``."""
    return f"  {name}: {{{body}}}\n"


def monitor(extra: str) -> str:
    return NODES + EIPS + MONITOR + "".join(f"  {line}\n" for line in extra.splitlines())


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text, "f.yaml")
    return list(caught.value.problems)


# --------------------------------------------------------------------------- good files


def test_full_example_parses_to_the_expected_values() -> None:
    parsed = config.parse_text(FULL, "/etc/eipha/eipha.yaml")
    assert parsed == Config(
        path="/etc/eipha/eipha.yaml",
        region="eu-west-1",
        node_name="lb-a",
        interface="eth0",
        timeout=20.0,
        nodes={
            "lb-a": NodeSpec("lb-a", "i-0aaaaaaaaaaaaaaaa", "10.0.0.11"),
            "lb-b": NodeSpec("lb-b", "i-0bbbbbbbbbbbbbbbb", "10.0.0.21"),
        },
        eips={
            "web-a": EipSpec("web-a", A1, "lb-a", {}),
            "web-b": EipSpec("web-b", A2, "lb-b", {"lb-a": "10.0.0.12"}),
        },
        monitor=MonitorSpec(
            port=7694,
            key_file="/etc/eipha/monitor.key",
            interval=1.0,
            dead_after=5.0,
            init_dead=15.0,
            quorum=("10.0.0.1",),
            health_check=HealthCheck(
                command="systemctl is-active --quiet haproxy",
                url=None,
                interval=2.0,
                fall=2,
                rise=3,
            ),
            auto_failback=True,
            min_hold=10.0,
            release_on_exit=False,
        ),
        keepalived_instances={"VI_WEB": ("web-a", "web-b")},
    )


def test_minimal_config_gets_the_defaults() -> None:
    parsed = config.parse_text(EIPS)
    assert parsed == dataclasses.replace(
        config.EMPTY, eips={"web-a": EipSpec("web-a", A1, "lb-a", {})}
    )
    assert parsed.path is None
    assert isinstance(parsed.timeout, float)


@pytest.mark.parametrize(
    "region",
    ["eu-west-1", "us-gov-west-1", "cn-northwest-1", "ap-southeast-5", "eusc-de-east-1"],
)
def test_every_kind_of_region_name_is_accepted(region: str) -> None:
    assert config.parse_text(f"region: {region}\n" + EIPS).region == region


def test_minimal_monitor_gets_the_defaults() -> None:
    parsed = config.parse_text(NODES + EIPS + MONITOR)
    assert parsed.monitor == MonitorSpec(
        port=7694,
        key_file="/etc/eipha/monitor.key",
        interval=1.0,
        dead_after=5.0,
        init_dead=15.0,
        quorum=(),
        health_check=None,
        auto_failback=True,
        min_hold=10.0,
        release_on_exit=False,
    )


def test_health_check_by_url_gets_its_defaults() -> None:
    parsed = config.parse_text(monitor("health_check: {url: 'http://127.0.0.1:8404/healthz'}"))
    assert parsed.monitor is not None
    assert parsed.monitor.health_check == HealthCheck(
        command=None, url="http://127.0.0.1:8404/healthz", interval=2.0, fall=2, rise=3
    )


def test_quorum_takes_addresses_for_icmp_and_address_port_for_tcp() -> None:
    parsed = config.parse_text(monitor("quorum: [10.0.0.1, '10.0.0.2:443', 10.0.0.3:65535]"))
    assert parsed.monitor is not None
    assert parsed.monitor.quorum == ("10.0.0.1", "10.0.0.2:443", "10.0.0.3:65535")


def test_seconds_accept_int_and_float_and_are_stored_as_float() -> None:
    parsed = config.parse_text("timeout: 7\n" + monitor("interval: 2\ndead_after: 6.5"))
    assert parsed.monitor is not None
    assert (parsed.timeout, parsed.monitor.interval, parsed.monitor.dead_after) == (7.0, 2.0, 6.5)
    assert all(type(v) is float for v in (parsed.timeout, parsed.monitor.interval))


def test_keys_are_names_as_written() -> None:
    text = "nodes: {1: {}, on: {}}\n" + eip(f"allocation_id: {A1}, home: 'on'")
    assert list(config.parse_text(text).nodes) == ["1", "on"]


def test_home_need_not_be_a_node_when_no_nodes_are_given() -> None:
    assert config.parse_text(eip(f"allocation_id: {A1}, home: lb-z.example.com")).nodes == {}


def test_anchors_and_aliases_within_bounds_are_fine() -> None:
    text = NODES + TWO_EIPS + "keepalived:\n  instances: {A: &both [web-a, web-b], B: *both}\n"
    assert config.parse_text(text).keepalived_instances == {
        "A": ("web-a", "web-b"),
        "B": ("web-a", "web-b"),
    }


def test_config_is_frozen() -> None:
    parsed = config.parse_text(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.timeout = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        parsed.eips["web-c"] = parsed.eips["web-a"]  # type: ignore[index]


def test_eip_by_allocation() -> None:
    parsed = config.parse_text(FULL)
    assert parsed.eip_by_allocation(A2) == parsed.eips["web-b"]
    assert parsed.eip_by_allocation("eipalloc-00000000") is None


def test_empty_is_no_config() -> None:
    assert config.EMPTY.path is None
    assert config.EMPTY.eips == {}
    assert config.EMPTY.timeout == 20.0
    assert config.EMPTY.eip_by_allocation(A1) is None


# --------------------------------------------------------------------------- bad files

BIG_INT = "1" * 5000
BOMB = "\n".join(
    ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
)

BAD = [
    # unknown keys, with a suggestion
    pytest.param(
        "timout: 20\n" + EIPS,
        "timout: unknown key 'timout' (did you mean 'timeout'?)",
        id="unknown-top",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, hom: lb-a"),
        "eips.web-a.hom: unknown key 'hom' (did you mean 'home'?)",
        id="unknown-nested",
    ),
    pytest.param(monitor("key: c2VjcmV0"), "monitor.key: unknown key 'key'", id="secret-in-file"),
    pytest.param(
        monitor("health_check: {command: x, rice: 3}"),
        "monitor.health_check.rice: unknown key 'rice' (did you mean 'rise'?)",
        id="unknown-deep",
    ),
    pytest.param("zzz: 1\n" + EIPS, "zzz: unknown key 'zzz'\n", id="unknown-no-suggestion"),
    # duplicate keys, more than one document, empty, not a mapping
    pytest.param(
        "timeout: 5\ntimeout: 6\n" + EIPS,
        "timeout: duplicate key 'timeout' at line 2 (first at line 1)",
        id="duplicate-top",
    ),
    pytest.param(
        EIPS + f"  web-a: {{allocation_id: {A2}, home: lb-b}}\n",
        "eips.web-a: duplicate key 'web-a' at line 3 (first at line 2)",
        id="duplicate-nested",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a, home: lb-b"),
        "eips.web-a.home: duplicate key 'home' at line 2",
        id="duplicate-flow",
    ),
    pytest.param(
        EIPS + "---\n" + EIPS,
        "f.yaml: more than one YAML document (line 3 starts another)",
        id="two-documents",
    ),
    pytest.param("", "f.yaml: is empty; expected a mapping with at least 'eips'", id="empty"),
    pytest.param("# nothing\n\n", "f.yaml: is empty", id="comments-only"),
    pytest.param("---\n", "f.yaml: is empty", id="empty-document"),
    pytest.param(
        "- eips\n- nodes\n", "f.yaml: must be a mapping of settings, got a list", id="list-at-top"
    ),
    pytest.param(
        "hello\n", "f.yaml: must be a mapping of settings, got 'hello'", id="scalar-at-top"
    ),
    # numbers are numbers, in range
    pytest.param(
        "timeout: '20'\n" + EIPS,
        "timeout: must be a number of seconds, got '20'",
        id="string-number",
    ),
    pytest.param(
        "timeout: true\n" + EIPS, "timeout: must be a number of seconds, got true", id="bool-number"
    ),
    pytest.param(
        "timeout: 0\n" + EIPS, "timeout: must be > 0 and <= 3600, got 0", id="zero-timeout"
    ),
    pytest.param(
        "timeout: -1.5\n" + EIPS,
        "timeout: must be > 0 and <= 3600, got -1.5",
        id="negative-timeout",
    ),
    pytest.param(
        "timeout: 3601\n" + EIPS, "timeout: must be > 0 and <= 3600, got 3601", id="huge-timeout"
    ),
    pytest.param(
        "timeout: 1.0e+999\n" + EIPS,
        "timeout: must be > 0 and <= 3600, got inf",
        id="infinite-timeout",
    ),
    pytest.param(
        "timeout: .nan\n" + EIPS, "timeout: must be > 0 and <= 3600, got nan", id="nan-timeout"
    ),
    pytest.param(
        f"timeout: {BIG_INT}\n" + EIPS, "timeout: cannot read '111", id="5000-digit-timeout"
    ),
    pytest.param(
        monitor("port: 0"), "monitor.port: must be >= 1 and <= 65535, got 0", id="port-zero"
    ),
    pytest.param(
        monitor("port: 7694.0"), "monitor.port: must be an integer, got 7694.0", id="port-float"
    ),
    pytest.param(
        monitor("min_hold: -1"),
        "monitor.min_hold: must be >= 0 and <= 86400, got -1",
        id="negative-hold",
    ),
    pytest.param(
        monitor("interval: 0"),
        "monitor.interval: must be > 0 and <= 86400, got 0",
        id="zero-interval",
    ),
    pytest.param(
        monitor("health_check: {command: x, fall: 0}"),
        "monitor.health_check.fall: must be >= 1 and <= 1000, got 0",
        id="fall-zero",
    ),
    pytest.param(
        monitor("health_check: {command: x, rise: 1.5}"),
        "monitor.health_check.rise: must be an integer, got 1.5",
        id="rise-float",
    ),
    pytest.param(
        monitor("auto_failback: 'yes'"),
        "monitor.auto_failback: must be true or false, got 'yes'",
        id="bool-as-string",
    ),
    # strings, names, regions, interfaces
    pytest.param(
        "region: EU-west-1\n" + EIPS,
        "region: 'EU-west-1' is not an AWS region name (like 'eu-west-1')",
        id="bad-region",
    ),
    pytest.param("region:\n" + EIPS, "region: must be a string, got null", id="null-region"),
    pytest.param(
        "interface: eth0123456789abcd\n" + EIPS,
        "interface: 'eth0123456789abcd' is not an interface name",
        id="long-interface",
    ),
    pytest.param("node_name: ''\n" + EIPS, "node_name: must not be empty", id="empty-node-name"),
    pytest.param(
        "nodes: {lb a: {}}\n" + EIPS,
        "nodes['lb a']: 'lb a' is not a valid name",
        id="name-with-space",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a", name="'web::a'"),
        "eips['web::a']: 'web::a' is not a valid name",
        id="name-with-colons",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: 5"),
        "eips.web-a.home: must be a string, got 5",
        id="home-number",
    ),
    # AWS ids and addresses
    pytest.param(
        eip("allocation_id: eipalloc-xyz, home: lb-a"),
        "eips.web-a.allocation_id: 'eipalloc-xyz' is not an allocation id",
        id="bad-allocation-id",
    ),
    pytest.param(
        eip("allocation_id: eipalloc-123456789, home: lb-a"),
        "'eipalloc-123456789' is not an allocation id",
        id="allocation-id-9-digits",
    ),
    pytest.param(
        eip("home: lb-a"), "eips.web-a.allocation_id: missing", id="missing-allocation-id"
    ),
    pytest.param(eip(f"allocation_id: {A1}"), "eips.web-a.home: missing", id="missing-home"),
    pytest.param(
        "nodes: {lb-a: {instance_id: i-123}}\n" + EIPS,
        "nodes.lb-a.instance_id: 'i-123' is not an instance id",
        id="bad-instance-id",
    ),
    pytest.param(
        "nodes: {lb-a: {instance_id: i-0AAAAAAAAAAAAAAAA}}\n" + EIPS,
        "'i-0AAAAAAAAAAAAAAAA' is not an instance id",
        id="uppercase-instance-id",
    ),
    pytest.param(
        "nodes: {lb-a: {address: 'fd00::1'}}\n" + EIPS,
        "nodes.lb-a.address: 'fd00::1' is IPv6; use IPv4",
        id="ipv6-address",
    ),
    pytest.param(
        "nodes: {lb-a: {address: 10.0.0}}\n" + EIPS,
        "nodes.lb-a.address: '10.0.0' is not an IPv4 address",
        id="short-address",
    ),
    pytest.param(
        "nodes: {lb-a: {address: 10}}\n" + EIPS,
        "nodes.lb-a.address: must be an IPv4 address, got 10",
        id="number-address",
    ),
    # nodes, homes and private IPs
    pytest.param(
        NODES + eip(f"allocation_id: {A1}, home: lb-c"),
        "eips.web-a.home: 'lb-c' is not one of the nodes (lb-a, lb-b)",
        id="home-not-a-node",
    ),
    pytest.param(
        NODES + eip(f"allocation_id: {A1}, home: LB-A"),
        "eips.web-a.home: 'LB-A' is not one of the nodes (lb-a, lb-b)",
        id="home-case-differs",
    ),
    pytest.param(
        NODES + eip(f"allocation_id: {A1}, home: lb-a, private_ips: {{lb-c: 10.0.0.5}}"),
        "eips.web-a.private_ips.lb-c: 'lb-c' is not one of the nodes (lb-a, lb-b)",
        id="private-ip-unknown-node",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a, private_ips: {{lb-b: 10.0.0.256}}"),
        "eips.web-a.private_ips.lb-b: '10.0.0.256' is not an IPv4 address",
        id="private-ip-not-ipv4",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a, private_ips: [10.0.0.5]"),
        "eips.web-a.private_ips: must be a mapping, got a list",
        id="private-ips-list",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a, private_ips: {{lb-b: 10.0.0.22}}")
        + entry("web-b", f"allocation_id: {A2}, home: lb-a, private_ips: {{lb-b: 10.0.0.22}}"),
        "eips.web-b.private_ips.lb-b: '10.0.0.22' is already given to EIP 'web-a' on node 'lb-b'",
        id="same-private-ip-twice",
    ),
    pytest.param(
        eip(f"allocation_id: {A1}, home: lb-a")
        + entry("web-b", f"allocation_id: {A1}, home: lb-b"),
        f"eips.web-b.allocation_id: '{A1}' is already used by EIP 'web-a'",
        id="duplicate-allocation-id",
    ),
    pytest.param(
        "nodes:\n"
        + entry("lb-a", "instance_id: i-0aaaaaaaaaaaaaaaa")
        + entry("lb-b", "instance_id: i-0aaaaaaaaaaaaaaaa")
        + EIPS,
        "nodes.lb-b.instance_id: 'i-0aaaaaaaaaaaaaaaa' is already used by node 'lb-a'",
        id="duplicate-instance-id",
    ),
    pytest.param(
        "nodes:\n  lb-a: {address: 10.0.0.11}\n  lb-b: {address: 10.0.0.11}\n" + EIPS,
        "nodes.lb-b.address: '10.0.0.11' is already used by node 'lb-a'",
        id="duplicate-address",
    ),
    pytest.param(
        "nodes: [lb-a, lb-b]\n" + EIPS, "nodes: must be a mapping, got a list", id="nodes-list"
    ),
    pytest.param(
        "node_name: lb-c\n" + NODES + EIPS,
        "node_name: 'lb-c' is not one of the nodes (lb-a, lb-b)",
        id="node-name-not-a-node",
    ),
    # eips
    pytest.param(NODES, "eips: missing; it must hold at least one EIP", id="eips-missing"),
    pytest.param("eips: {}\n", "eips: must hold at least one EIP", id="eips-empty"),
    pytest.param("eips:\n  web-a:\n", "eips.web-a: must be a mapping, got null", id="eip-null"),
    # keepalived
    pytest.param(
        NODES + TWO_EIPS + "keepalived:\n  instances: {VI_WEB: [web-a, web-c]}\n",
        "keepalived.instances.VI_WEB[1]: 'web-c' is not one of the EIPs (web-a, web-b)",
        id="keepalived-unknown-eip",
    ),
    pytest.param(
        TWO_EIPS + "keepalived:\n  instances: {VI_WEB: []}\n",
        "keepalived.instances.VI_WEB: must name at least one EIP",
        id="keepalived-empty-list",
    ),
    pytest.param(
        TWO_EIPS + "keepalived: {}\n", "keepalived.instances: missing", id="keepalived-no-instances"
    ),
    pytest.param(
        TWO_EIPS + "keepalived:\n  instances: {VI_WEB: web-a}\n",
        "keepalived.instances.VI_WEB: must be a list, got 'web-a'",
        id="keepalived-not-a-list",
    ),
    # monitor
    pytest.param(
        monitor("interval: 1\ndead_after: 2"),
        "monitor.dead_after: must be at least 3 x interval (3), got 2",
        id="dead-after-too-short",
    ),
    pytest.param(
        monitor("interval: 2"),
        "monitor.dead_after: must be at least 3 x interval (6), got 5 (the default)",
        id="dead-after-default-too-short",
    ),
    pytest.param(
        monitor("dead_after: 5\ninit_dead: 4"),
        "monitor.init_dead: must be at least dead_after (5), got 4",
        id="init-dead-too-short",
    ),
    pytest.param(
        monitor("health_check: {command: x, url: 'http://h/'}"),
        "monitor.health_check: give either command or url, not both",
        id="health-check-both",
    ),
    pytest.param(
        monitor("health_check: {interval: 2}"),
        "monitor.health_check: needs a command or a url",
        id="health-check-neither",
    ),
    pytest.param(
        monitor("health_check: {url: 'ftp://h/x'}"),
        "monitor.health_check.url: 'ftp://h/x' is not an http:// or https:// URL",
        id="health-check-ftp",
    ),
    pytest.param(
        monitor("health_check: {url: 'http://'}"),
        "monitor.health_check.url: 'http://' is not an http:// or https:// URL",
        id="health-check-no-host",
    ),
    pytest.param(
        monitor("quorum: 10.0.0.1"),
        "monitor.quorum: must be a list, got '10.0.0.1'",
        id="quorum-not-a-list",
    ),
    pytest.param(
        monitor("quorum: [10.0.0.1, '::1']"),
        "monitor.quorum[1]: '::1' is IPv6; use IPv4",
        id="quorum-ipv6",
    ),
    pytest.param(
        monitor("quorum: ['10.0.0.1:0']"),
        "monitor.quorum[0]: '10.0.0.1:0': the port must be 1 to 65535",
        id="quorum-port-zero",
    ),
    pytest.param(
        monitor("quorum: ['10.0.0.1:65536']"),
        "monitor.quorum[0]: '10.0.0.1:65536': the port must be 1 to 65535",
        id="quorum-port-too-big",
    ),
    pytest.param(
        monitor("quorum: ['10.0.0:80']"),
        "monitor.quorum[0]: '10.0.0:80' is not IPv4:PORT ('10.0.0' is not an IPv4 address)",
        id="quorum-port-bad-address",
    ),
    pytest.param(
        monitor("quorum: [10.0.0.1, 'gateway:80']"),
        "monitor.quorum[1]: 'gateway:80' is not an IPv4 address or IPv4:PORT",
        id="quorum-name-and-port",
    ),
    pytest.param(
        monitor("quorum: ['[::1]:80']"),
        "monitor.quorum[0]: '[::1]:80' is not an IPv4 address or IPv4:PORT",
        id="quorum-ipv6-and-port",
    ),
    pytest.param(
        monitor("quorum: ['10.0.0.1:http']"),
        "monitor.quorum[0]: '10.0.0.1:http' is not an IPv4 address or IPv4:PORT",
        id="quorum-port-name",
    ),
    pytest.param(
        NODES + EIPS + "monitor: {interval: 1}\n",
        "monitor.key_file: missing",
        id="monitor-no-key-file",
    ),
    pytest.param(
        NODES + EIPS + "monitor: {key_file: monitor.key}\n",
        "monitor.key_file: 'monitor.key' is not an absolute path",
        id="key-file-relative",
    ),
    pytest.param(
        EIPS + MONITOR,
        "nodes: required by monitor (at least 2 nodes, each with an address)",
        id="monitor-without-nodes",
    ),
    pytest.param(
        "nodes: {lb-a: {address: 10.0.0.11}}\n" + EIPS + MONITOR,
        "nodes: the peer monitor needs at least 2 nodes, got 1",
        id="monitor-one-node",
    ),
    pytest.param(
        "nodes: {lb-a: {address: 10.0.0.11}, lb-b: {}}\n" + EIPS + MONITOR,
        "nodes.lb-b.address: required by the peer monitor",
        id="monitor-node-without-address",
    ),
    pytest.param(EIPS + "monitor:\n", "monitor: must be a mapping, got null", id="monitor-null"),
    # YAML itself
    pytest.param("eips: [\n", "f.yaml: YAML error at line 2 column 1:", id="yaml-syntax"),
    pytest.param(
        "timeout: 5\n  bad: indent\n", "f.yaml: YAML error at line 2 column", id="yaml-indent"
    ),
    pytest.param(
        "timeout: \x00\n",
        "f.yaml: YAML error at line 1 column 10: unacceptable character #x0000",
        id="nul-character",
    ),
    pytest.param(
        "base: &b {home: lb-a}\n" + eip(f"<<: *b, allocation_id: {A1}"),
        "eips.web-a: merge keys ('<<') are not supported",
        id="merge-key",
    ),
    pytest.param(
        "timeout: !seconds 20\n" + EIPS,
        "timeout: cannot read '20': could not determine a constructor for the tag '!seconds'",
        id="custom-tag",
    ),
    pytest.param(
        "timeout: !!python/object/apply:os.system ['true']\n" + EIPS,
        "timeout: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'",
        id="python-tag",
    ),
    pytest.param(
        "timeout: 2024-13-45\n" + EIPS,
        "timeout: cannot read '2024-13-45': month must be in 1..12",
        id="bad-date",
    ),
    pytest.param(
        "? [a, b]\n: 1\n" + EIPS,
        "f.yaml: keys must be plain names, not a list or mapping (line 1)",
        id="complex-key",
    ),
    pytest.param(
        "a: *nowhere\n",
        "f.yaml: YAML error at line 1 column 4: found undefined alias",
        id="undefined-alias",
    ),
    pytest.param(
        BOMB + "\n" + EIPS,
        "f.yaml: more than 100000 values (after expanding aliases)",
        id="alias-bomb",
    ),
    pytest.param(
        "a: &a [*a]\n" + EIPS,
        "f.yaml: nested deeper than 64 levels (a recursive alias?)",
        id="recursive-alias",
    ),
    pytest.param(
        "a: " + "[" * 100 + "]" * 100 + "\n",
        "f.yaml: nested deeper than 64 levels (line 1)",
        id="deep-nesting",
    ),
    pytest.param(
        "a: [" + "1," * 100_001 + "]\n", "f.yaml: more than 100000 values", id="too-many-values"
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_reports_the_problem(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(expected in problem + "\n" for problem in problems), problems


def test_at_least_forty_bad_cases() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            b"\xff\xfe\x00junk\x80\x81", "not UTF-8 text (bad byte at offset 0)", id="binary-junk"
        ),
        pytest.param(
            b"timeout: 5\n\x00\x01\x02",
            "YAML error at line 2 column 1: unacceptable character #x0000",
            id="nul-bytes",
        ),
        pytest.param(
            b"# padding\n" * 120_000,
            "larger than 1 MiB; a config file is a few KiB",
            id="over-1-mib",
        ),
    ],
)
def test_bad_file_reports_one_problem(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "eipha.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        config.parse_file(str(path))
    assert caught.value.problems == (f"{path}: {expected}",)
    assert str(caught.value) == f"invalid config {path} (1 problem)"


def test_text_over_1_mib_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse_text("#" * (config.MAX_BYTES + 1))
    assert caught.value.problems == ("config: larger than 1 MiB; a config file is a few KiB",)


# --------------------------------------------------------------------------- every problem at once


def test_every_problem_is_reported_at_once() -> None:
    text = "timeout: '20'\nregion: mars\n" + NODES + eip(f"allocation_id: {A1}, home: lb-c")
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text, "f.yaml")
    assert caught.value.problems == (
        "timeout: must be a number of seconds, got '20'",
        "region: 'mars' is not an AWS region name (like 'eu-west-1')",
        "eips.web-a.home: 'lb-c' is not one of the nodes (lb-a, lb-b)",
    )
    assert str(caught.value) == "invalid config f.yaml (3 problems)"


def test_at_most_fifty_problems_then_a_count() -> None:
    text = EIPS + "".join(f"unknown{i}: 1\n" for i in range(60))
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text, "f.yaml")
    problems = caught.value.problems
    assert len(problems) == 51
    assert problems[0] == "unknown0: unknown key 'unknown0'"
    assert problems[49] == "unknown49: unknown key 'unknown49'"
    assert problems[50] == "... and 10 more problems"
    assert str(caught.value) == "invalid config f.yaml (60 problems)"


def test_validate_is_pure_and_returns_every_problem() -> None:
    data = {"eips": {"web-a": {"allocation_id": "eipalloc-xyz"}}, 7: "x"}
    assert config.validate(data) == [
        "eips.web-a.allocation_id: 'eipalloc-xyz' is not an allocation id",
        "eips.web-a.home: missing (the node this EIP belongs on)",
        "config: keys must be strings, got 7",
    ]
    assert config.validate(yaml.safe_load(FULL)) == []
    assert config.validate([1]) == ["config: must be a mapping of settings, got a list"]


def test_a_duplicate_key_does_not_hide_other_problems() -> None:
    text = "timeout: 5\ntimeout: 6\nregion: x\n" + EIPS
    assert problems_of(text) == [
        "timeout: duplicate key 'timeout' at line 2 (first at line 1)",
        "region: 'x' is not an AWS region name (like 'eu-west-1')",
    ]


# --------------------------------------------------------------------------- finding the file


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, {}, (config.DEFAULT_PATH, False)),
        (None, {"EIPHA_CONFIG": ""}, (config.DEFAULT_PATH, False)),
        (None, {"EIPHA_CONFIG": "/e.yaml"}, ("/e.yaml", True)),
        ("/c.yaml", {"EIPHA_CONFIG": "/e.yaml"}, ("/c.yaml", True)),
        ("/c.yaml", {}, ("/c.yaml", True)),
    ],
)
def test_resolve_path(
    explicit: str | None, env: dict[str, str], expected: tuple[str, bool]
) -> None:
    assert config.resolve_path(explicit, env) == expected


@pytest.fixture
def default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "etc" / "eipha.yaml"
    monkeypatch.setattr(locate, "DEFAULT_PATH", str(path))
    return path


def test_missing_default_file_means_no_config(default_path: Path) -> None:
    """No config, and where eipha looked (for the errors that need a config to work)."""
    loaded = config.load(None, {})
    assert loaded == dataclasses.replace(config.EMPTY, looked_at=str(default_path))
    assert config.not_loaded(loaded) == (
        f"no config loaded: looked at {default_path}; set --config or EIPHA_CONFIG"
    )
    assert config.not_loaded(config.EMPTY) is None  # a config made in memory looked nowhere


def test_present_default_file_is_read(default_path: Path) -> None:
    default_path.parent.mkdir()
    default_path.write_text(EIPS)
    parsed = config.load(None, {})
    assert parsed.path == str(default_path)
    assert list(parsed.eips) == ["web-a"]


def test_invalid_default_file_is_an_error(default_path: Path) -> None:
    default_path.parent.mkdir()
    default_path.write_text("timeout: 0\n" + EIPS)
    with pytest.raises(ConfigError, match="invalid config"):
        config.load(None, {})


def test_explicit_missing_file_is_not_configured(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(NotConfigured) as caught:
        config.load(str(path), {})
    assert not isinstance(caught.value, ConfigError)
    assert str(caught.value) == f"config file {path} not found"


def test_missing_file_named_by_environment_is_not_configured(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(NotConfigured, match="not found"):
        config.load(None, {"EIPHA_CONFIG": str(path)})


def test_environment_is_used_when_nothing_explicit(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(EIPS)
    assert config.load(None, {"EIPHA_CONFIG": str(path)}).path == str(path)


def test_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(EIPS)
    monkeypatch.setenv("EIPHA_CONFIG", str(path))
    assert config.load().path == str(path)


def test_explicit_beats_environment(tmp_path: Path) -> None:
    explicit, env = tmp_path / "explicit.yaml", tmp_path / "env.yaml"
    explicit.write_text(EIPS)
    assert config.load(str(explicit), {"EIPHA_CONFIG": str(env)}).path == str(explicit)


def test_unreadable_file_names_path_and_reason(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured) as caught:
        config.load(str(tmp_path), {})
    assert str(caught.value) == f"cannot read config file {tmp_path} (Is a directory)"


def test_parse_file_of_missing_file_is_not_configured(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="not found"):
        config.parse_file(str(tmp_path / "nope.yaml"))


# --------------------------------------------------------------------------- fuzz

FRAGMENTS = [
    *("eips", "nodes", "monitor", "keepalived", "instances", "timeout", "home", "web-a", "lb-a"),
    *(": ", ":", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ", "!x ", "---\n"),
    *("'", '"', "? ", "<<: ", "# c", "1", "-1", "0x1f", "1.5e3", ".inf", "true", "~", "10.0.0.1"),
    *(A1, "i-0aaaaaaaaaaaaaaaa", "|\n", ">-\n", "%YAML 1.1\n", "\t", "\x00", "\ufeff"),
]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["lb-a", "web-a", A1, "10.0.0.1", "/k", "http://h/"])
)
KEYS = st.sampled_from(
    [
        *("eips", "nodes", "monitor", "keepalived", "instances", "home", "allocation_id"),
        *("lb-a", "web-a", "private_ips", "health_check", "quorum", "interval", "dead_after"),
    ]
) | st.text(max_size=10)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


def _parses_or_config_error(text: str) -> None:
    try:
        parsed = config.parse_text(text, "f.yaml")
    except ConfigError as error:
        problems = error.problems
    else:
        assert isinstance(parsed, Config)
        return
    assert problems
    assert all(problems)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text())
def test_fuzz_random_text(text: str) -> None:
    _parses_or_config_error(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_fuzz_yaml_like_text(text: str) -> None:
    _parses_or_config_error(text)


@settings(max_examples=200, deadline=None, database=None)
@given(DATA)
def test_fuzz_validate_random_data(data: object) -> None:
    problems = config.validate(data)
    assert all(isinstance(p, str) for p in problems)


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(KEYS, DATA, max_size=6))
def test_fuzz_random_data_as_yaml(data: dict[str, object]) -> None:
    _parses_or_config_error(yaml.safe_dump(data))


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(["timeout", "nodes", "eips", "monitor", "keepalived"]), DATA)
def test_fuzz_one_section_of_a_good_config(section: str, value: object) -> None:
    data = yaml.safe_load(FULL)
    data[section] = value
    _parses_or_config_error(yaml.safe_dump(data))


def test_two_eips_may_not_share_their_homes_primary_ip():
    text = (
        "eips:\n"
        "  web-a: {allocation_id: eipalloc-0123456789abcdef0, home: lb-a}\n"
        "  web-c: {allocation_id: eipalloc-0123456789abcdef1, home: lb-a}\n"
        "  web-d: {allocation_id: eipalloc-0123456789abcdef2, home: lb-a,\n"
        "          private_ips: {lb-a: 10.0.0.14}}\n"
    )
    with pytest.raises(ConfigError) as error:
        config.parse_text(text)
    assert error.value.problems == (
        "eips.web-c.home: EIP 'web-a' already takes lb-a's primary IP; "
        "give this one eips.web-c.private_ips.lb-a",
    )


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [
        ("{}", "monitor.metrics: give a textfile, a listen address, or both"),
        ("{listen: 9694}", "monitor.metrics.listen: must be IPv4:PORT to listen on, got 9694"),
        ("{textfile: metrics.prom}", "monitor.metrics.textfile: 'metrics.prom' is not an absolute"),
        ("{port: 1}", "monitor.metrics.port: unknown key 'port'"),
    ],
)
def test_monitor_metrics_problems(metrics, problem):
    text = (
        "nodes: {a: {address: 10.0.0.1}, b: {address: 10.0.0.2}}\n"
        "eips: {w: {allocation_id: eipalloc-0123456789abcdef0, home: a}}\n"
        f"monitor: {{key_file: /k, metrics: {metrics}}}\n"
    )
    with pytest.raises(ConfigError) as error:
        config.parse_text(text)
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


def test_monitor_metrics_values():
    text = (
        "nodes: {a: {address: 10.0.0.1}, b: {address: 10.0.0.2}}\n"
        "eips: {w: {allocation_id: eipalloc-0123456789abcdef0, home: a}}\n"
        "monitor: {key_file: /k, metrics: {textfile: /var/lib/m/eipha.prom,"
        " listen: '127.0.0.1:9694'}}\n"
    )
    spec = config.parse_text(text).monitor
    assert spec is not None
    assert (spec.metrics_textfile, spec.metrics_listen) == (
        "/var/lib/m/eipha.prom",
        "127.0.0.1:9694",
    )
