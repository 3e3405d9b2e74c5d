"""``eipha show [--json]``: every EIP, where it is now and where it belongs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from eipha.cli.common import node, timeout_option

if TYPE_CHECKING:
    from eipha.config import Config
    from eipha.ec2 import Eni
    from eipha.model import Address

COLUMNS = ("EIP", "PUBLIC IP", "NOW ON", "ENI", "PRIVATE IP", "BELONGS ON", "STATE")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@timeout_option
@click.pass_context
def show(ctx: click.Context, as_json: bool, timeout: float | None) -> int:
    """Every configured EIP: public IP, where it is now (node, ENI, private IP) and where it
    belongs (its home node and binding IP). Without a config, every EIP in the region.

    Reads the EC2 API only (one DescribeAddresses, plus one DescribeNetworkInterfaces when
    the config names the nodes' instances); runs from any host with credentials. Exit 0.
    """
    this = node(ctx, timeout)
    config = this.config
    allocation_ids = sorted(e.allocation_id for e in config.eips.values())
    addresses = this.ec2.describe_addresses(allocation_ids)
    instances = sorted(n.instance_id for n in config.nodes.values() if n.instance_id)
    enis = this.ec2.describe_network_interfaces(instance_ids=instances) if instances else []
    rows = [_row(a, config, enis) for a in addresses]
    rows.sort(key=lambda r: str(r["eip"]))
    click.echo(
        json.dumps({"region": this.region, "eips": rows}, indent=2) if as_json else _table(rows)
    )
    return 0


def _node_of(
    eni_id: str | None, instance_id: str | None, config: Config, enis: Sequence[Eni]
) -> str | None:
    """The configured node that owns this ENI or instance, if any."""
    owner = next((e.instance_id for e in enis if e.eni_id == eni_id), None) or instance_id
    return next((n.name for n in config.nodes.values() if owner and n.instance_id == owner), None)


def _belongs(name: str | None, config: Config, enis: Sequence[Eni]) -> dict[str, Any]:
    from eipha.binding import private_ip_for
    from eipha.errors import NotConfigured

    spec = config.eips.get(name) if name else None
    if spec is None:
        return {"node": None, "eni": None, "private_ip": None}
    node = config.nodes.get(spec.home)
    eni = next(
        (e for e in enis if node and e.instance_id == node.instance_id and e.device_index == 0),
        None,
    )
    if eni is None:
        return {"node": spec.home, "eni": None, "private_ip": spec.private_ips.get(spec.home)}
    rules = config.eip_rules()
    try:
        ip: str | None = private_ip_for(
            spec.name, spec.home, rules, eni.primary_ip, eni.secondary_ips
        )
    except NotConfigured:
        ip = None
    return {"node": spec.home, "eni": eni.eni_id, "private_ip": ip}


def _row(address: Address, config: Config, enis: Sequence[Eni]) -> dict[str, Any]:
    spec = config.eip_by_allocation(address.allocation_id)
    name = spec.name if spec else None
    home = _belongs(name, config, enis)
    node = _node_of(address.network_interface_id, address.instance_id, config, enis)
    if not address.associated:
        state = "unassociated"
    elif home["node"] is None:
        state = "associated"
    elif node == home["node"] and home.get("private_ip") in (None, address.private_ip):
        state = "home"
    else:
        state = "away"
    return {
        "eip": name or address.allocation_id,
        "allocation_id": address.allocation_id,
        "public_ip": address.public_ip,
        "now": {
            "node": node,
            "instance_id": address.instance_id,
            "eni": address.network_interface_id,
            "private_ip": address.private_ip,
            "association_id": address.association_id,
        },
        "belongs": home,
        "state": state,
    }


def _cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    now, home = row["now"], row["belongs"]
    belongs = " ".join(str(v) for v in (home.get("node"), home.get("private_ip")) if v) or "-"
    return (
        row["eip"],
        row["public_ip"],
        now["node"] or now["instance_id"] or "-",
        now["eni"] or "-",
        now["private_ip"] or "-",
        belongs,
        row["state"],
    )


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    cells = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(str(c[i]).ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells
    )
