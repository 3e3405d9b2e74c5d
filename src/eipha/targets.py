"""From what the user typed to :class:`~eipha.failover.Target`: names, ids, public IPs.

An EIP may be named by its config name, its allocation id or its public IPv4 address
(DESIGN §2). Allocation ids and config names need no API call; public IPs are resolved with
one DescribeAddresses (the only case where naming costs a call).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eipha.binding import EipRule, private_ip_for, private_ip_from_option
from eipha.config import ALLOCATION_ID, Config, EipSpec
from eipha.errors import NotConfigured, UsageError
from eipha.failover import Target
from eipha.model import Address, Binding, NodeIdentity


@dataclass(frozen=True)
class Selector:
    """One EIP as named on the command line, before and after resolution."""

    token: str
    label: str
    allocation_id: str | None = None
    public_ip: str | None = None
    spec: EipSpec | None = None


def _is_ipv4(token: str) -> bool:
    try:
        ipaddress.IPv4Address(token)
    except ValueError:
        return False
    return True


def select(token: str, config: Config) -> Selector:
    """Classify one token: config name, allocation id or public IP."""
    if token in config.eips:
        named = config.eips[token]
        return Selector(token, token, named.allocation_id, spec=named)
    if ALLOCATION_ID.fullmatch(token):
        spec = config.eip_by_allocation(token)
        return Selector(token, spec.name if spec is not None else token, token, spec=spec)
    if _is_ipv4(token):
        return Selector(token, token, public_ip=token)
    where = f"a name in {config.path}, " if config.path else ""
    raise NotConfigured(
        f"unknown EIP {token!r}",
        f"not {where}an allocation id (eipalloc-…) or a public IPv4 address",
    )


def select_all(tokens: Sequence[str], config: Config) -> list[Selector]:
    if not tokens:
        raise UsageError("no EIP given", "name at least one EIP")
    selectors = [select(token, config) for token in tokens]
    seen: set[str] = set()
    unique = []
    for s in selectors:
        key = s.allocation_id or s.public_ip or s.token
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique


def resolve_public_ips(
    selectors: Sequence[Selector],
    config: Config,
    describe: Callable[[Sequence[str]], list[Address]],
) -> list[Selector]:
    """Give every selector named by public IP its allocation id (one DescribeAddresses)."""
    wanted = [s.public_ip for s in selectors if s.public_ip and not s.allocation_id]
    if not wanted:
        return list(selectors)
    by_ip = {a.public_ip: a for a in describe(wanted)}
    resolved = []
    for s in selectors:
        if s.public_ip and not s.allocation_id:
            address = by_ip.get(s.public_ip)
            if address is None or not address.allocation_id:
                raise NotConfigured(f"EC2 does not know the EIP {s.public_ip}", "check the region")
            spec = config.eip_by_allocation(address.allocation_id)
            s = Selector(
                s.token, spec.name if spec else s.token, address.allocation_id, s.public_ip, spec
            )
        resolved.append(s)
    return resolved


def _rules(config: Config) -> dict[str, EipRule]:
    return {name: EipRule(e.home, dict(e.private_ips)) for name, e in config.eips.items()}


def binding_for(
    selector: Selector, config: Config, node: NodeIdentity, private_ip: str | None
) -> Binding:
    """Where this EIP belongs on this node (DESIGN §1), checked against the ENI."""
    iface = node.interface
    if private_ip is not None:
        ip = private_ip_from_option(private_ip, iface.primary_ip, iface.secondary_ips)
    elif selector.spec is not None:
        ip = private_ip_for(
            selector.spec.name,
            node.node_name,
            _rules(config),
            iface.primary_ip,
            iface.secondary_ips,
        )
    else:
        raise NotConfigured(
            f"{selector.label} is not in the config",
            "name a configured EIP, or say where it goes with --private-ip primary|secondary|IP",
        )
    if ip not in iface.private_ips:
        raise NotConfigured(
            f"binding IP {ip} for {selector.label} is not on {iface.eni_id}",
            f"the ENI has {', '.join(iface.private_ips)}; assign {ip} to it first",
        )
    return Binding(iface.eni_id, ip)


def targets(
    selectors: Sequence[Selector],
    config: Config,
    node: NodeIdentity | None,
    private_ip: str | None,
) -> list[Target]:
    """Targets with bindings (``node`` given: start, status) or without (stop)."""
    result: list[Target] = []
    for s in selectors:
        assert s.allocation_id is not None, "resolve_public_ips first"
        binding = binding_for(s, config, node, private_ip) if node is not None else None
        clash = next((t for t in result if binding and t.binding == binding), None)
        if clash is not None:
            raise NotConfigured(
                f"{clash.label} and {s.label} would both go on {binding}",
                "one private IP carries one EIP; name one of them at a time, or give each "
                "its own private IP",
            )
        result.append(Target(s.label, s.allocation_id, binding))
    return result
