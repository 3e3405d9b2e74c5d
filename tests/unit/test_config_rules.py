"""Config.eip_rules: what the binding rule reads, taken from a parsed config."""

from __future__ import annotations

from eipha.binding import EipRule, private_ip_for
from eipha.config import parse_text

A1 = "eipalloc-0123456789abcdef0"
A2 = "eipalloc-0fedcba9876543210"
A3 = "eipalloc-0aaaaaaaaaaaaaaa0"

TWO_NODES = f"""\
nodes:
  lb-a: {{instance_id: i-0aaaaaaaaaaaaaaaa}}
  lb-b: {{instance_id: i-0bbbbbbbbbbbbbbbb}}
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b}}
  api-b: {{allocation_id: {A3}, home: lb-b, private_ips: {{lb-a: 10.0.0.50, lb-b: 10.0.0.23}}}}
"""
LB_A = ("10.0.0.11", ("10.0.0.13", "10.0.0.12"))
LB_B = ("10.0.0.21", ("10.0.0.22",))


def test_one_rule_per_eip_with_home_and_explicit_private_ips() -> None:
    rules = parse_text(TWO_NODES).eip_rules()
    assert rules == {
        "web-a": EipRule("lb-a", {}),
        "web-b": EipRule("lb-b", {}),
        "api-b": EipRule("lb-b", {"lb-a": "10.0.0.50", "lb-b": "10.0.0.23"}),
    }


def test_rules_place_each_eip_as_the_binding_rule_says() -> None:
    rules = parse_text(TWO_NODES).eip_rules()
    placed = {
        (eip, node): private_ip_for(eip, node, rules, *addresses)
        for eip in rules
        for node, addresses in (("lb-a", LB_A), ("lb-b", LB_B))
    }
    assert placed == {
        ("web-a", "lb-a"): "10.0.0.11",  # home: primary
        ("web-a", "lb-b"): "10.0.0.22",  # foreign: first secondary
        ("web-b", "lb-a"): "10.0.0.12",  # the lowest secondary, api-b has its own
        ("web-b", "lb-b"): "10.0.0.21",
        ("api-b", "lb-a"): "10.0.0.50",  # explicit private_ips
        ("api-b", "lb-b"): "10.0.0.23",
    }
