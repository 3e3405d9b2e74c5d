"""Errors that say what to do next: an EIP name the config does not have (the close ones,
or that no config was loaded and where eipha looked), a private IP that contradicts the
binding rule, and metadata that nothing serves (not on EC2, or a wrong endpoint)."""

from __future__ import annotations

import dataclasses

import pytest

from eipha import placements
from eipha.config import EMPTY, parse_text
from eipha.errors import MetadataError, NotConfigured
from eipha.imds import HttpTransport, ImdsClient

PATH = "/srv/eipha/pair.yaml"
CONFIG = parse_text(
    "eips:\n"
    "  web-a: {allocation_id: eipalloc-0000000a, home: lb-a}\n"
    "  web-b: {allocation_id: eipalloc-0000000b, home: lb-b}\n"
    "  api: {allocation_id: eipalloc-0000000c, home: lb-b, private_ips: {lb-b: 10.0.0.29}}\n",
    PATH,
)
OTHER_WAYS = "or give an allocation id (eipalloc-…) or a public IPv4 address"


def unknown(token: str, config: object = CONFIG) -> str:
    with pytest.raises(NotConfigured) as info:
        placements.select(token, config)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize(
    ("token", "guess"),
    [
        ("web-c", "did you mean 'web-a' or 'web-b'?"),  # a tie: both, in name order
        ("wbe-a", "did you mean 'web-a' or 'web-b'?"),  # the closer one first
        ("ap", "did you mean 'api'?"),
    ],
)
def test_an_unknown_name_gets_the_close_ones(token: str, guess: str):
    assert unknown(token) == (
        f"unknown EIP {token!r} ({guess}; {PATH} names api, web-a, web-b; {OTHER_WAYS})"
    )


def test_a_name_like_none_of_them_gets_the_list():
    assert unknown("database") == (
        f"unknown EIP 'database' ({PATH} names api, web-a, web-b; {OTHER_WAYS})"
    )


def test_without_a_config_the_error_says_none_was_loaded_and_where_eipha_looked():
    none = dataclasses.replace(EMPTY, looked_at="/etc/eipha/eipha.yaml")
    assert unknown("web-a", none) == (
        "unknown EIP 'web-a' (no config loaded: looked at /etc/eipha/eipha.yaml; set --config "
        "or EIPHA_CONFIG, or give an allocation id (eipalloc-…) or a public IPv4 address)"
    )


def test_an_allocation_id_without_a_config_needs_a_private_ip():
    none = dataclasses.replace(EMPTY, looked_at="/etc/eipha/eipha.yaml")
    error = placements.not_in_config("eipalloc-0000000a", none, "--private-ip primary|secondary|IP")
    assert str(error) == (
        "eipalloc-0000000a is not in any config (no config loaded: looked at "
        "/etc/eipha/eipha.yaml; set --config or EIPHA_CONFIG, or say where it goes with "
        "--private-ip primary|secondary|IP)"
    )


# --------------------------------------------------------------------------- the binding rule


@pytest.mark.parametrize(
    ("eip", "node", "given", "rule"),
    [
        ("web-a", "lb-a", "secondary", "the primary IP of lb-a, as lb-a is its home"),
        ("web-b", "lb-a", "primary", "a secondary IP of lb-a, as its home is lb-b"),
        ("api", "lb-b", "10.0.0.21", "10.0.0.29 (eips.api.private_ips.lb-b)"),
    ],
)
def test_a_private_ip_that_contradicts_the_rule(eip: str, node: str, given: str, rule: str):
    with pytest.raises(NotConfigured) as info:
        placements.check_private_ip(placements.select(eip, CONFIG), CONFIG, node, given)
    assert str(info.value) == (
        f"{eip}: the private IP given ({given}) contradicts {PATH} (its binding rule puts "
        f"{eip} on {rule}; give none, so that the config decides, or set "
        f"eips.{eip}.private_ips.{node} there)"
    )


@pytest.mark.parametrize(
    ("eip", "node", "given"),
    [
        ("web-a", "lb-a", "primary"),
        ("web-b", "lb-a", "secondary"),
        ("api", "lb-b", "10.0.0.29"),
        # only the node's addresses can tell these (start and monitor check them)
        ("web-a", "lb-a", "10.0.0.12"),
        ("api", "lb-b", "primary"),
        # no config entry: the private IP is what says where it goes
        ("eipalloc-0000000d", "lb-a", "primary"),
    ],
)
def test_a_private_ip_that_agrees_or_cannot_be_told_yet(eip: str, node: str, given: str):
    placements.check_private_ip(placements.select(eip, CONFIG), CONFIG, node, given)


# --------------------------------------------------------------------------- metadata


def test_a_refused_metadata_connection_says_not_on_ec2_not_hop_limit():
    """Port 9 on loopback: refused at once, as off EC2 or at a wrong endpoint."""
    imds = ImdsClient(HttpTransport("http://127.0.0.1:9/"), attempts=2, backoff=0.01)
    with pytest.raises(MetadataError) as info:
        imds.instance_id()
    message = str(info.value)
    assert message.startswith("IMDS did not answer at http://127.0.0.1:9/ (")
    assert message.endswith("; not on EC2, or AWS_EC2_METADATA_SERVICE_ENDPOINT is wrong)")
    assert "refused" in message.lower()
    assert "hop limit" not in message
