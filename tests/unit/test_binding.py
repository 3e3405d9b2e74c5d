"""The binding rule (docs/how-it-works.md), as a table."""

from __future__ import annotations

import pytest

from eipha.binding import (
    EipRule,
    parse_private_ip_option,
    private_ip_for,
    private_ip_from_option,
)
from eipha.errors import NotConfigured, UsageError

PAIR = {"web-a": EipRule("lb-a"), "web-b": EipRule("lb-b")}
A = ("10.0.0.11", ("10.0.0.12",))
B = ("10.0.0.21", ("10.0.0.22",))
# four EIPs, two homes: each node's foreign EIPs take its secondaries in name order
FOUR = {
    "api-a": EipRule("lb-a"),
    "web-a": EipRule("lb-a"),
    "api-b": EipRule("lb-b"),
    "web-b": EipRule("lb-b"),
}
A3 = ("10.0.0.11", ("10.0.0.30", "10.0.0.9", "10.0.0.100"))  # given out of order


@pytest.mark.parametrize(
    ("rules", "eip", "node", "addresses", "expected"),
    [
        # rule 2: home -> primary
        (PAIR, "web-a", "lb-a", A, "10.0.0.11"),
        (PAIR, "web-b", "lb-b", B, "10.0.0.21"),
        # rule 3: foreign -> first secondary
        (PAIR, "web-b", "lb-a", A, "10.0.0.12"),
        (PAIR, "web-a", "lb-b", B, "10.0.0.22"),
        # rule 3 with several: sorted by name among foreign EIPs, secondaries ascending numerically
        (FOUR, "api-b", "lb-a", A3, "10.0.0.9"),
        (FOUR, "web-b", "lb-a", A3, "10.0.0.30"),
        (FOUR, "api-a", "lb-a", A3, "10.0.0.11"),
        # rule 1: explicit private_ips wins over home ...
        (
            {"web-a": EipRule("lb-a", {"lb-a": "10.0.0.12"}), "web-b": EipRule("lb-b")},
            "web-a",
            "lb-a",
            A,
            "10.0.0.12",
        ),
        # ... and over the secondary rule, and takes that EIP out of the secondary count
        (
            {"a": EipRule("lb-b", {"lb-a": "10.0.0.100"}), "b": EipRule("lb-b")},
            "b",
            "lb-a",
            A3,
            "10.0.0.9",
        ),
        (
            {"a": EipRule("lb-b", {"lb-a": "10.0.0.100"}), "b": EipRule("lb-b")},
            "a",
            "lb-a",
            A3,
            "10.0.0.100",
        ),
        # a node that is home of nothing (a third node) takes every EIP on secondaries
        (PAIR, "web-a", "lb-c", A3, "10.0.0.9"),
        (PAIR, "web-b", "lb-c", A3, "10.0.0.30"),
        # the primary listed among secondaries is never used as a secondary
        (PAIR, "web-b", "lb-a", ("10.0.0.11", ("10.0.0.11", "10.0.0.12")), "10.0.0.12"),
    ],
)
def test_binding_rule(rules, eip, node, addresses, expected):
    primary, secondaries = addresses
    assert private_ip_for(eip, node, rules, primary, secondaries) == expected


def test_not_enough_secondaries_names_the_fix():
    with pytest.raises(NotConfigured) as exc:
        private_ip_for("web-b", "lb-a", FOUR, "10.0.0.11", ("10.0.0.12",))
    assert "secondary #2" in str(exc.value)
    assert "eips.web-b.private_ips.lb-a" in str(exc.value)


def test_no_secondary_at_all():
    with pytest.raises(NotConfigured):
        private_ip_for("web-b", "lb-a", PAIR, "10.0.0.11", ())


@pytest.mark.parametrize(
    ("option", "expected"),
    [("primary", "10.0.0.11"), ("secondary", "10.0.0.9"), ("10.0.0.30", "10.0.0.30")],
)
def test_private_ip_option(option, expected):
    assert private_ip_from_option(parse_private_ip_option(option), *A3) == expected


@pytest.mark.parametrize("bad", ["", "second", "10.0.0", "::1", "10.0.0.256", "Primary"])
def test_private_ip_option_rejects(bad):
    with pytest.raises(UsageError):
        parse_private_ip_option(bad)


def test_secondary_option_without_secondaries():
    with pytest.raises(NotConfigured):
        private_ip_from_option("secondary", "10.0.0.11", ())
