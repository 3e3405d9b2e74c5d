"""Filters of the eipha role: the pair as the inventory describes it, checked before anything
is written, and the interface that carries a node's address.

``groups[eipha_cluster_group] | eipha_pair(hostvars)`` reads each host's
``eipha_node_name``, ``eipha_address``, ``eipha_instance_id`` and ``eipha_home_eips`` and
returns ``{"nodes": [...], "eips": [...], "problems": [...]}``. ``eipha_home_eips`` maps an
EIP name to its allocation id (short form) or to ``{allocation_id: ..., private_ips: {NODE:
IP}}`` (long form, as eipha.yaml's ``eips.NAME.private_ips``). The problems are the
inventories whose EIPs cannot all be bound (eipha's binding rule: ``private_ips.N`` if given;
else N's primary IP if N is the home; else one of N's secondary IPs), each one line naming
the host and the variable. ``eipha config check`` still validates the rendered file.

``ip_json | eipha_interface_carrying(address)`` takes the output of ``ip -j -4 addr show``
and returns the name of the interface that carries ``address``, or "".

Standard library only; importing this module only defines things.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

LONG_FORM_KEYS = ("allocation_id", "private_ips")


def _ipv4(value: object) -> str | None:
    """``value`` as a dotted IPv4 address, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def _form(host: str, name: str, value: object, problems: list[str]) -> dict[str, Any] | None:
    """One ``eipha_home_eips`` entry, short or long form, as ``{allocation_id, private_ips}``."""
    where = f"{host}: eipha_home_eips.{name}"
    if isinstance(value, str):
        return {"allocation_id": value, "private_ips": {}}
    if not isinstance(value, Mapping):
        problems.append(
            f"{where}: give an allocation id (eipalloc-...) or "
            f"{{allocation_id: eipalloc-..., private_ips: {{NODE: IP}}}}, not {value!r}"
        )
        return None
    unknown = sorted(str(k) for k in value if k not in LONG_FORM_KEYS)
    if unknown:
        problems.append(
            f"{where}: unknown key {unknown[0]!r} (the long form has {', '.join(LONG_FORM_KEYS)})"
        )
    allocation_id = value.get("allocation_id")
    if not isinstance(allocation_id, str) or not allocation_id:
        problems.append(f"{where}.allocation_id: required (eipalloc-...)")
    private_ips = value.get("private_ips", {})
    if not isinstance(private_ips, Mapping):
        problems.append(
            f"{where}.private_ips: map node names to IPv4 addresses, not {private_ips!r}"
        )
        private_ips = {}
    if unknown or not isinstance(allocation_id, str) or not allocation_id:
        return None
    return {"allocation_id": allocation_id, "private_ips": dict(private_ips)}


def _nodes(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = []
    for host in hosts:
        facts = hostvars[host]
        nodes.append(
            {
                "host": host,
                "name": str(facts.get("eipha_node_name", host)),
                "address": facts.get("eipha_address"),
                "instance_id": facts.get("eipha_instance_id"),
                "home_eips": facts.get("eipha_home_eips", {}),
            }
        )
    return nodes


def _eips(nodes: list[dict[str, Any]], problems: list[str]) -> list[dict[str, Any]]:
    """Every host's home EIPs, normalised, with the problems of their shape and names."""
    names = [node["name"] for node in nodes]
    homes: dict[str, str] = {}
    eips = []
    for node in nodes:
        host, home_eips = node["host"], node["home_eips"]
        if home_eips is None:
            continue
        if not isinstance(home_eips, Mapping):
            problems.append(
                f"{host}: eipha_home_eips must map EIP names to allocation ids, not {home_eips!r}"
            )
            continue
        for name in sorted(home_eips, key=str):
            if name in homes:
                problems.append(
                    f"{host}: eipha_home_eips.{name}: {name} is already a home EIP of "
                    f"{homes[name]}; an EIP has one home"
                )
                continue
            homes[name] = node["name"]
            spec = _form(host, str(name), home_eips[name], problems)
            if spec is None:
                continue
            for target, ip in spec["private_ips"].items():
                where = f"{host}: eipha_home_eips.{name}.private_ips.{target}"
                if target not in names:
                    problems.append(
                        f"{where}: {target!r} is not a node of the group ({', '.join(names)})"
                    )
                if _ipv4(ip) is None:
                    problems.append(f"{where}: {ip!r} is not an IPv4 address")
            eips.append({"name": str(name), "home": node["name"], **spec})
    if not eips and not problems:
        problems.append(
            "no host lists eipha_home_eips: give each load balancer the EIPs whose home it is"
        )
    return sorted(eips, key=lambda eip: eip["name"])


def _bindings(nodes: list[dict[str, Any]], eips: list[dict[str, Any]], problems: list[str]) -> None:
    """One private IP of a node carries at most one EIP, and only the node's own IPs."""
    primaries = {node["name"]: _ipv4(node["address"]) for node in nodes}
    owner = {ip: name for name, ip in primaries.items() if ip is not None}
    hosts = {node["name"]: node["host"] for node in nodes}
    for node in nodes:
        name, primary = node["name"], primaries[node["name"]]
        taken: dict[str, str] = {}  # private IP -> the EIP bound to it on this node
        # the home EIPs without private_ips.NODE take the primary IP (rule 2) ...
        for eip in eips:
            if eip["home"] != name or name in eip["private_ips"] or primary is None:
                continue
            if primary in taken:
                problems.append(
                    f"{node['host']}: eipha_home_eips.{eip['name']}: {eip['name']} and "
                    f"{taken[primary]} would both be bound to {primary} on {name}; give it "
                    f"private_ips: {{{name}: <another private IP of {name}>}}"
                )
            else:
                taken[primary] = eip["name"]
        # ... private_ips.NODE names one of the node's own IPs (rule 1) ...
        for eip in eips:
            ip = _ipv4(eip["private_ips"].get(name))
            if ip is None:
                continue  # not given here (rule 3: a secondary IP of its own), or reported
            where = f"{hosts[eip['home']]}: eipha_home_eips.{eip['name']}.private_ips.{name}"
            if ip in owner and owner[ip] != name:
                problems.append(
                    f"{where}: {ip} is {owner[ip]}'s primary IP, not one of {name}'s own"
                )
            elif ip in taken:
                problems.append(
                    f"{where}: {eip['name']} and {taken[ip]} would both be bound to {ip} on "
                    f"{name}; one private IP carries one EIP"
                )
            else:
                taken[ip] = eip["name"]
        # ... and the rest take distinct secondary IPs, in name order (rule 3).


def eipha_pair(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """The nodes and EIPs of the pair, and every reason they cannot all be bound."""
    problems: list[str] = []
    nodes = _nodes(hosts, hostvars)
    eips = _eips(nodes, problems)
    _bindings(nodes, eips, problems)
    for node in nodes:
        del node["home_eips"]
    return {"nodes": nodes, "eips": eips, "problems": problems}


def eipha_interface_carrying(links: Iterable[Mapping[str, Any]], address: str) -> str:
    """The interface of ``ip -j -4 addr show`` output that carries ``address``, or ""."""
    wanted = _ipv4(address)
    for link in links:
        for addr in link.get("addr_info", []):
            if wanted is not None and addr.get("local") == wanted:
                return str(link.get("ifname", ""))
    return ""


class FilterModule:
    """The filters above, for Ansible."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"eipha_pair": eipha_pair, "eipha_interface_carrying": eipha_interface_carrying}
