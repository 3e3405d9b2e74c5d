"""From what the user typed to :class:`~eipha.failover.Placement` values: each EIP and
where it belongs on this node.

An EIP may be named by its config name, its allocation id or its public IPv4 address.
Allocation ids and config names need no API call; public IPs are resolved with
one DescribeAddresses (the only case where naming costs a call).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from eipha.binding import private_ip_for, private_ip_from_option
from eipha.config import ALLOCATION_ID, ENV_VAR, Config, EipSpec, not_loaded
from eipha.errors import NotConfigured, UsageError, region_hint
from eipha.failover import Placement
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
    raise _unknown(token, config)


OTHER_WAYS = "an allocation id (eipalloc-…) or a public IPv4 address"


def _unknown(token: str, config: Config) -> NotConfigured:
    """An EIP name the config does not have: the names it does, the close ones first."""
    nothing = not_loaded(config)
    if nothing is not None:
        return NotConfigured(f"unknown EIP {token!r}", f"{nothing}, or give {OTHER_WAYS}")
    close = _close(token, config.eips)
    guess = f"did you mean {' or '.join(repr(n) for n in close)}?; " if close else ""
    if config.path is None:
        return NotConfigured(
            f"unknown EIP {token!r}", f"{guess}not a configured name, {OTHER_WAYS}"
        )
    names = ", ".join(sorted(config.eips))  # a valid file has one at least
    return NotConfigured(
        f"unknown EIP {token!r}", f"{guess}{config.path} names {names}; or give {OTHER_WAYS}"
    )


def _close(token: str, names: Collection[str]) -> list[str]:
    """The names like ``token`` (difflib's idea of close), best first, ties by name."""
    import difflib  # only on the way to an error: not paid by every start and status

    if len(token) > 100:
        return []
    matches = difflib.get_close_matches(token, list(names), n=3)

    def score(name: str) -> tuple[float, str]:
        return -difflib.SequenceMatcher(None, token, name).ratio(), name

    return sorted(matches, key=score)


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
    region: str | None = None,
) -> list[Selector]:
    """Give every selector named by public IP its allocation id (one DescribeAddresses in
    ``region``, named when EC2 does not know one)."""
    wanted = [s.public_ip for s in selectors if s.public_ip and not s.allocation_id]
    if not wanted:
        return list(selectors)
    by_ip = {a.public_ip: a for a in describe(wanted)}
    resolved = []
    for s in selectors:
        if s.public_ip and not s.allocation_id:
            address = by_ip.get(s.public_ip)
            if address is None or not address.allocation_id:
                why = region_hint(region) if region else "check the region"
                raise NotConfigured(f"EC2 does not know the EIP {s.public_ip}", why)
            spec = config.eip_by_allocation(address.allocation_id)
            s = Selector(
                s.token, spec.name if spec else s.token, address.allocation_id, s.public_ip, spec
            )
        resolved.append(s)
    return resolved


def node_name(config: Config) -> str:
    """This node's name: the config's ``node_name``, else ``uname -n``."""
    return config.node_name or os.uname().nodename


def binding_for(
    selector: Selector,
    config: Config,
    node: NodeIdentity,
    private_ip: str | None,
    *,
    agree: bool = False,
) -> Binding:
    """Where this EIP belongs on this node (the binding rule of :mod:`eipha.binding`),
    checked against the ENI. ``private_ip`` overrides the rule; with ``agree`` (a cluster
    manager's resource) it may only restate the rule for an EIP the config has."""
    iface = node.interface
    spec = selector.spec
    if spec is not None and (private_ip is None or agree):
        rules = config.eip_rules()
        ip = private_ip_for(spec.name, node.node_name, rules, iface.primary_ip, iface.secondary_ips)
        if private_ip is not None:
            given = private_ip_from_option(private_ip, iface.primary_ip, iface.secondary_ips)
            if given != ip:
                shown = private_ip if given == private_ip else f"{private_ip}, {given}"
                raise _contradiction(spec, config, node.node_name, shown, ip)
    elif private_ip is not None:
        ip = private_ip_from_option(private_ip, iface.primary_ip, iface.secondary_ips)
    else:
        raise not_in_config(selector.label, config, "--private-ip primary|secondary|IP")
    if ip not in iface.private_ips:
        raise NotConfigured(
            f"binding IP {ip} for {selector.label} is not on {iface.eni_id}",
            f"the ENI has {', '.join(iface.private_ips)}; assign {ip} to it first",
        )
    return Binding(iface.eni_id, ip)


def not_in_config(
    label: str, config: Config, option: str, how: str = f"set --config or {ENV_VAR}"
) -> NotConfigured:
    """An EIP the config has no entry for, and no ``option`` to say where it goes (``how``:
    how to name a config, when none was loaded)."""
    where = f"say where it goes with {option}"
    nothing = not_loaded(config, how)
    if nothing is not None:
        return NotConfigured(f"{label} is not in any config", f"{nothing}, or {where}")
    return NotConfigured(
        f"{label} is not in {config.path or 'the config'}", f"name a configured EIP, or {where}"
    )


def check_private_ip(selector: Selector, config: Config, node: str, private_ip: str) -> None:
    """Raise :class:`NotConfigured` when ``private_ip`` (``primary``, ``secondary`` or an
    address) contradicts the config's binding rule for this EIP on ``node``, as far as that
    can be told without the node's addresses (:func:`binding_for` tells the rest)."""
    spec = selector.spec
    if spec is None:
        return
    explicit = spec.private_ips.get(node)
    if explicit is not None:
        wrong = private_ip not in ("primary", "secondary") and private_ip != explicit
    elif spec.home == node:
        wrong = private_ip == "secondary"
    else:
        wrong = private_ip == "primary"
    if wrong:
        raise _contradiction(spec, config, node, private_ip, None)


def _contradiction(
    spec: EipSpec, config: Config, node: str, given: str, rule_ip: str | None
) -> NotConfigured:
    explicit = spec.private_ips.get(node)
    if explicit is not None:
        rule = f"{explicit} (eips.{spec.name}.private_ips.{node})"
    else:
        home = spec.home == node
        kind = f"{'the primary' if home else 'a secondary'} IP of {node}"
        reason = f"{node} is its home" if home else f"its home is {spec.home}"
        rule = f"{rule_ip + ', ' if rule_ip else ''}{kind}, as {reason}"
    return NotConfigured(
        f"{spec.name}: the private IP given ({given}) contradicts {config.path or 'the config'}",
        f"its binding rule puts {spec.name} on {rule}; give none, so that the config "
        f"decides, or set eips.{spec.name}.private_ips.{node} there",
    )


def placements(
    selectors: Sequence[Selector],
    config: Config,
    node: NodeIdentity | None = None,
    private_ip: str | None = None,
    *,
    agree: bool = False,
) -> list[Placement]:
    """Placements with bindings on ``node`` (start, status), or without (stop)."""
    result: list[Placement] = []
    for s in selectors:
        assert s.allocation_id is not None, "resolve_public_ips first"
        binding = (
            binding_for(s, config, node, private_ip, agree=agree) if node is not None else None
        )
        clash = next((t for t in result if binding and t.binding == binding), None)
        if clash is not None:
            raise NotConfigured(
                f"{clash.label} and {s.label} would both go on {binding}",
                "one private IP carries one EIP; name one of them at a time, or give each "
                "its own private IP",
            )
        result.append(Placement(s.label, s.allocation_id, binding))
    return result
