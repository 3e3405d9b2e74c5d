"""The cross-field rules: what the schema cannot say about one value alone (unique
ids, names that must refer to configured nodes or EIPs, the monitor's timing, one EIP per
node's primary IP). Each rule appends ``path: message`` problems and skips what the schema
already reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from eipha.config import checks, schema
from eipha.config.checks import Check
from eipha.config.messages import join, not_one_of, show


def _section(data: Mapping[Any, Any], key: str) -> dict[Any, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _entries(section: Mapping[Any, Any]) -> Iterator[tuple[str, dict[Any, Any]]]:
    """(name, mapping) for the well-formed entries of a name -> mapping section."""
    for name, value in section.items():
        if isinstance(name, str) and isinstance(value, dict):
            yield name, value


def _unique(section: Mapping[Any, Any], path: str, key: str, check: Check, out: list[str]) -> None:
    owner = "node" if path == "nodes" else "EIP"
    seen: dict[str, str] = {}
    for name, spec in _entries(section):
        value = spec.get(key)
        if not (isinstance(value, str) and checks.valid(check, value)):
            continue
        if value in seen:
            where = join(join(path, name), key)
            out.append(f"{where}: {show(value)} is already used by {owner} {seen[value]!r}")
        else:
            seen[value] = name


def _rule_unique_ids(data: Mapping[Any, Any], out: list[str]) -> None:
    nodes = _section(data, "nodes")
    _unique(nodes, "nodes", "instance_id", checks.instance_id, out)
    _unique(nodes, "nodes", "address", checks.ipv4, out)
    _unique(_section(data, "eips"), "eips", "allocation_id", checks.allocation_id, out)


def _rule_node_name(data: Mapping[Any, Any], out: list[str]) -> None:
    nodes = _section(data, "nodes")
    name = data.get("node_name")
    if nodes and checks.is_name(name) and name not in nodes:
        out.append(f"node_name: {not_one_of(name, nodes, 'nodes')}")


def _rule_eip_nodes(data: Mapping[Any, Any], out: list[str]) -> None:
    """When ``nodes:`` is given, homes and ``private_ips`` keys name nodes exactly."""
    nodes = _section(data, "nodes")
    if not nodes:
        return
    for name, spec in _entries(_section(data, "eips")):
        path = join("eips", name)
        home = spec.get("home")
        if checks.is_name(home) and home not in nodes:
            out.append(f"{path}.home: {not_one_of(home, nodes, 'nodes')}")
        for node in _section(spec, "private_ips"):
            if checks.is_name(node) and node not in nodes:
                where = join(f"{path}.private_ips", node)
                out.append(f"{where}: {not_one_of(node, nodes, 'nodes')}")


def _rule_private_ips(data: Mapping[Any, Any], out: list[str]) -> None:
    """One private IP of a node carries one EIP at most."""
    seen: dict[tuple[str, str], str] = {}
    for name, spec in _entries(_section(data, "eips")):
        for node, ip in _section(spec, "private_ips").items():
            if not (isinstance(node, str) and checks.valid(checks.ipv4, ip)):
                continue
            if (node, ip) in seen:
                where = join(join(join("eips", name), "private_ips"), node)
                out.append(
                    f"{where}: {show(ip)} is already given to EIP {seen[node, ip]!r} "
                    f"on node {node!r}"
                )
            else:
                seen[node, ip] = name


def _rule_keepalived(data: Mapping[Any, Any], out: list[str]) -> None:
    eips = _section(data, "eips")
    instances = _section(_section(data, "keepalived"), "instances")
    if not eips:
        return
    for instance, names in instances.items():
        if not isinstance(names, list):
            continue
        for index, name in enumerate(names):
            if checks.is_name(name) and name not in eips:
                where = f"{join('keepalived.instances', instance)}[{index}]"
                out.append(f"{where}: {not_one_of(name, eips, 'EIPs')}")


def _rule_monitor(data: Mapping[Any, Any], out: list[str]) -> None:
    monitor = data.get("monitor")
    if not isinstance(monitor, dict):
        return
    _monitor_nodes(data, out)
    _monitor_timing(monitor, out)
    _monitor_health_check(monitor.get("health_check"), out)
    metrics = monitor.get("metrics")
    if isinstance(metrics, dict) and not metrics:
        out.append("monitor.metrics: give a textfile, a listen address, or both")


def _monitor_nodes(data: Mapping[Any, Any], out: list[str]) -> None:
    """Peers are the other entries of ``nodes:``; each needs an ``address``."""
    if "nodes" not in data:
        out.append("nodes: required by monitor (at least 2 nodes, each with an address)")
        return
    nodes = _section(data, "nodes")
    if isinstance(data["nodes"], dict) and len(nodes) < 2:
        out.append(f"nodes: the peer monitor needs at least 2 nodes, got {len(nodes)}")
    for name, spec in _entries(nodes):
        if "address" not in spec:
            out.append(f"{join(join('nodes', name), 'address')}: required by the peer monitor")


def _monitor_timing(monitor: Mapping[Any, Any], out: list[str]) -> None:
    interval, dead, init = (
        schema.value_of(schema.MONITOR, monitor, k) for k in ("interval", "dead_after", "init_dead")
    )
    if not all(checks.valid(checks.interval, v) for v in (interval, dead, init)):
        return
    if dead < 3 * interval:
        default = "" if "dead_after" in monitor else " (the default)"
        out.append(
            f"monitor.dead_after: must be at least 3 x interval ({3 * interval:g}), "
            f"got {dead:g}{default}"
        )
    if init < dead:
        default = "" if "init_dead" in monitor else " (the default)"
        out.append(
            f"monitor.init_dead: must be at least dead_after ({dead:g}), got {init:g}{default}"
        )


def _monitor_health_check(check: object, out: list[str]) -> None:
    if not isinstance(check, dict):
        return
    given = [key for key in ("command", "url") if key in check]
    if len(given) == 2:
        out.append("monitor.health_check: give either command or url, not both")
    elif not given:
        out.append("monitor.health_check: needs a command or a url")


def _rule_one_primary(data: Mapping[Any, Any], out: list[str]) -> None:
    """Binding rule 2 gives every EIP whose home is N N's primary IP: at most one may use it."""
    on_primary: dict[str, str] = {}
    for name, spec in _entries(_section(data, "eips")):
        home = spec.get("home")
        if not checks.is_name(home) or home in _section(spec, "private_ips"):
            continue
        if home in on_primary:
            where = join("eips", name)
            out.append(
                f"{join(where, 'home')}: EIP {on_primary[home]!r} already takes "
                f"{home}'s primary IP; give this one {join(join(where, 'private_ips'), home)}"
            )
        else:
            on_primary[home] = name


# every rule runs, in this order (the order the problems are listed in)
RULES: tuple[Callable[[Mapping[Any, Any], list[str]], None], ...] = (
    _rule_unique_ids,
    _rule_node_name,
    _rule_eip_nodes,
    _rule_private_ips,
    _rule_one_primary,
    _rule_keepalived,
    _rule_monitor,
)
