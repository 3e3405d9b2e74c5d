"""The eipha role's inventory filter: both forms of eipha_home_eips, and every inventory whose
EIPs cannot all be bound is refused with a line naming the host and the variable.

The filter is what the role's first assert runs before anything is written; the converges in
test_converge.py show the role stopping on it, these tests show what it decides."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from tests.ansible.staging import ANSIBLE

PLUGIN = ANSIBLE / "roles" / "eipha" / "filter_plugins" / "eipha_pair.py"
A_ID, B_ID, C_ID = "eipalloc-0123456789abcdef0", "eipalloc-0fedcba9876543210", "eipalloc-0aaaaaaaa"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eipha_pair", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pair = load().eipha_pair
carrying = load().eipha_interface_carrying


def hostvars(a_eips: Any, b_eips: Any, **more: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {
        "lb-a": {
            "eipha_instance_id": "i-0aaaaaaaaaaaaaaaa",
            "eipha_address": "10.0.0.11",
            "eipha_home_eips": a_eips,
        },
        "lb-b": {
            "eipha_instance_id": "i-0bbbbbbbbbbbbbbbb",
            "eipha_address": "10.0.0.21",
            "eipha_home_eips": b_eips,
        },
    }
    out.update(more)
    return out


def plan(a_eips: Any, b_eips: Any, **more: dict[str, Any]) -> dict[str, Any]:
    facts = hostvars(a_eips, b_eips, **more)
    result: dict[str, Any] = pair(list(facts), facts)
    return result


def test_the_short_form_is_an_allocation_id_per_name():
    result = plan({"web-a": A_ID}, {"web-b": B_ID})
    assert result["problems"] == []
    assert result["eips"] == [
        {"name": "web-a", "home": "lb-a", "allocation_id": A_ID, "private_ips": {}},
        {"name": "web-b", "home": "lb-b", "allocation_id": B_ID, "private_ips": {}},
    ]
    assert [(n["name"], n["address"]) for n in result["nodes"]] == [
        ("lb-a", "10.0.0.11"),
        ("lb-b", "10.0.0.21"),
    ]


def test_two_home_eips_on_one_node_with_the_long_form():
    second = {"allocation_id": C_ID, "private_ips": {"lb-a": "10.0.0.13", "lb-b": "10.0.0.23"}}
    result = plan({"web-a": A_ID, "web-c": second}, {"web-b": B_ID})
    assert result["problems"] == []
    assert [e["name"] for e in result["eips"]] == ["web-a", "web-b", "web-c"]
    assert result["eips"][2] == {
        "name": "web-c",
        "home": "lb-a",
        "allocation_id": C_ID,
        "private_ips": {"lb-a": "10.0.0.13", "lb-b": "10.0.0.23"},
    }


def test_node_names_come_from_eipha_node_name():
    facts = hostvars({"web-a": A_ID}, {"web-b": {"allocation_id": B_ID}})
    facts["lb-a"]["eipha_node_name"] = "ip-10-0-0-11"
    result = pair(list(facts), facts)
    assert result["problems"] == []
    assert [e["home"] for e in result["eips"]] == ["ip-10-0-0-11", "lb-b"]


@pytest.mark.parametrize(
    ("a_eips", "b_eips", "problem"),
    [
        (
            {"web-a": A_ID, "web-c": C_ID},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-c: web-c and web-a would both be bound to 10.0.0.11 on "
            "lb-a; give it private_ips: {lb-a: <another private IP of lb-a>}",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ips": {"lb-c": "10.0.0.31"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a.private_ips.lb-c: 'lb-c' is not a node of the group "
            "(lb-a, lb-b)",
        ),
        (
            {"web-a": [A_ID]},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a: give an allocation id (eipalloc-...) or "
            "{allocation_id: eipalloc-..., private_ips: {NODE: IP}}, not ['eipalloc-",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ip": {"lb-b": "10.0.0.22"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a: unknown key 'private_ip' (the long form has "
            "allocation_id, private_ips)",
        ),
        (
            {"web-a": {"private_ips": {"lb-b": "10.0.0.22"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a.allocation_id: required (eipalloc-...)",
        ),
        (
            [A_ID],
            {"web-b": B_ID},
            "lb-a: eipha_home_eips must map EIP names to allocation ids, not ['eipalloc-",
        ),
        (
            {"web-a": A_ID},
            {"web-a": B_ID},
            "lb-b: eipha_home_eips.web-a: web-a is already a home EIP of lb-a; an EIP has one home",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ips": {"lb-b": "10.0.0.22"}}},
            {"web-b": B_ID, "web-d": {"allocation_id": C_ID, "private_ips": {"lb-b": "10.0.0.22"}}},
            "lb-b: eipha_home_eips.web-d.private_ips.lb-b: web-d and web-a would both be bound "
            "to 10.0.0.22 on lb-b; one private IP carries one EIP",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ips": {"lb-b": "10.0.0.11"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a.private_ips.lb-b: 10.0.0.11 is lb-a's primary IP, "
            "not one of lb-b's own",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ips": {"lb-b": "10.0.0.21"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a.private_ips.lb-b: web-a and web-b would both be bound "
            "to 10.0.0.21 on lb-b; one private IP carries one EIP",
        ),
        (
            {"web-a": {"allocation_id": A_ID, "private_ips": {"lb-b": "10.0.0.300"}}},
            {"web-b": B_ID},
            "lb-a: eipha_home_eips.web-a.private_ips.lb-b: '10.0.0.300' is not an IPv4 address",
        ),
        (
            {},
            None,
            "no host lists eipha_home_eips: give each load balancer the EIPs whose home it is",
        ),
    ],
    ids=[
        "two-on-one-primary",
        "not-a-node",
        "a-list",
        "unknown-key",
        "no-allocation-id",
        "not-a-mapping",
        "two-homes",
        "same-secondary-twice",
        "another-nodes-primary",
        "the-peers-primary",
        "not-ipv4",
        "no-eips",
    ],
)
def test_an_inventory_whose_eips_cannot_all_be_bound_is_refused(a_eips, b_eips, problem):
    problems = plan(a_eips, b_eips)["problems"]
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


IP_JSON = [
    {"ifindex": 1, "ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"}]},
    {
        "ifindex": 2,
        "ifname": "ens5",
        "addr_info": [
            {"family": "inet", "local": "10.0.0.11", "prefixlen": 24},
            {"family": "inet", "local": "10.0.0.12", "prefixlen": 24, "secondary": True},
        ],
    },
    {"ifindex": 3, "ifname": "ens6", "addr_info": []},
]


@pytest.mark.parametrize(
    ("address", "interface"),
    [("10.0.0.11", "ens5"), ("10.0.0.12", "ens5"), ("10.0.0.21", ""), ("not-an-ip", "")],
)
def test_the_interface_is_the_one_carrying_the_address(address: str, interface: str):
    assert carrying(IP_JSON, address) == interface
