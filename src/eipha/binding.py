"""The binding rule (docs/how-it-works.md): which private IP of a node receives an EIP.

Pure functions of the configuration and the node's addresses; no I/O.

1. ``eips.E.private_ips.N`` from the config, if given;
2. N's primary private IP, if N is E's ``home``;
3. otherwise N's k-th secondary private IP, k = E's position in name order among the EIPs
   whose home is not N and that have no explicit ``private_ips.N``; secondaries are taken in
   ascending address order (k = 1 is the lowest).

Without a config, ``--private-ip primary|secondary|A.B.C.D`` says it directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eipha.errors import NotConfigured, UsageError
from eipha.model import sort_ips


@dataclass(frozen=True)
class EipRule:
    """The part of an EIP's configuration the binding rule reads."""

    home: str
    private_ips: Mapping[str, str] = field(default_factory=dict)


def private_ip_for(
    eip: str,
    node: str,
    rules: Mapping[str, EipRule],
    primary: str,
    secondaries: Sequence[str],
) -> str:
    """The private IP of ``node`` that receives ``eip`` (rules 1–3 above)."""
    rule = rules[eip]
    if node in rule.private_ips:
        return rule.private_ips[node]
    if rule.home == node:
        return primary
    foreign = sorted(
        name for name, r in rules.items() if r.home != node and node not in r.private_ips
    )
    k = foreign.index(eip) + 1
    ordered = sort_ips(ip for ip in secondaries if ip != primary)
    if k > len(ordered):
        raise NotConfigured(
            f"no secondary private IP for {eip} on {node}",
            f"it needs secondary #{k} but the ENI has {len(ordered)}; "
            "assign another secondary private IP to the ENI or set "
            f"eips.{eip}.private_ips.{node}",
        )
    return ordered[k - 1]


def parse_private_ip_option(value: str) -> str:
    """Validate ``--private-ip``: ``primary``, ``secondary`` or an IPv4 address."""
    if value in ("primary", "secondary"):
        return value
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise UsageError(
            f"--private-ip {value!r} is not valid", "use primary, secondary or an IPv4 address"
        ) from None


def private_ip_from_option(option: str, primary: str, secondaries: Sequence[str]) -> str:
    """Resolve a validated ``--private-ip`` against the node's addresses."""
    if option == "primary":
        return primary
    if option == "secondary":
        ordered = sort_ips(ip for ip in secondaries if ip != primary)
        if not ordered:
            raise NotConfigured(
                "--private-ip secondary: the ENI has no secondary private IP",
                "assign one to the ENI first",
            )
        return ordered[0]
    return option
