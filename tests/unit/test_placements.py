"""From names to placements: config names, allocation ids, public IPs; bindings checked."""

from __future__ import annotations

import pytest

from eipha.config import parse_text
from eipha.errors import NotConfigured, UsageError
from eipha.model import Address, Interface, NodeIdentity
from eipha.placements import placements, resolve_public_ips, select, select_all

CONFIG = parse_text(
    "nodes:\n"
    "  lb-a: {instance_id: i-0aaaaaaaaaaaaaaaa}\n"
    "  lb-b: {instance_id: i-0bbbbbbbbbbbbbbbb}\n"
    "eips:\n"
    "  web-a: {allocation_id: eipalloc-0000000000000000a, home: lb-a}\n"
    "  web-b: {allocation_id: eipalloc-0000000000000000b, home: lb-b}\n",
    "/etc/eipha/eipha.yaml",
)
LB_A = NodeIdentity(
    "lb-a",
    "eu-west-1",
    Interface("eni-0aaaaaaaaaaaaaaaa", "0a:00:00:00:00:0a", "10.0.0.11", ("10.0.0.12",)),
)


def test_a_token_is_a_name_an_allocation_id_or_a_public_ip():
    assert select("web-a", CONFIG).allocation_id == "eipalloc-0000000000000000a"
    by_id = select("eipalloc-0000000000000000b", CONFIG)
    assert (by_id.label, by_id.spec is not None) == ("web-b", True)
    assert select("203.0.113.7", CONFIG).public_ip == "203.0.113.7"


@pytest.mark.parametrize("token", ["web-z", "eipalloc-xyz", "203.0.113", "::1", ""])
def test_unknown_tokens_are_not_configured(token):
    with pytest.raises(NotConfigured, match="unknown EIP"):
        select(token, CONFIG)


def test_no_eip_at_all_is_a_usage_error():
    with pytest.raises(UsageError):
        select_all([], CONFIG)


def test_the_same_eip_named_twice_is_one_target():
    selectors = select_all(["web-a", "eipalloc-0000000000000000a"], CONFIG)
    assert len(selectors) == 1


def test_public_ips_resolve_with_one_describe_and_find_the_config_entry():
    calls = []

    def describe(ips):
        calls.append(list(ips))
        return [Address("eipalloc-0000000000000000b", "203.0.113.7")]

    [resolved] = resolve_public_ips([select("203.0.113.7", CONFIG)], CONFIG, describe)
    assert (resolved.label, resolved.allocation_id) == ("web-b", "eipalloc-0000000000000000b")
    assert calls == [["203.0.113.7"]]


def test_bindings_follow_the_rule_on_this_node():
    wanted = placements(select_all(["web-a", "web-b"], CONFIG), CONFIG, LB_A, None)
    assert [str(t.binding) for t in wanted] == [
        "eni-0aaaaaaaaaaaaaaaa 10.0.0.11",
        "eni-0aaaaaaaaaaaaaaaa 10.0.0.12",
    ]


def test_two_eips_onto_one_private_ip_are_refused():
    with pytest.raises(NotConfigured, match="would both go on"):
        placements(select_all(["web-a", "web-b"], CONFIG), CONFIG, LB_A, "primary")


def test_binding_ip_must_be_on_the_eni():
    with pytest.raises(NotConfigured, match="not on eni-0aaaaaaaaaaaaaaaa"):
        placements(select_all(["web-a"], CONFIG), CONFIG, LB_A, "10.0.0.99")
