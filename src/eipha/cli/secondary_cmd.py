"""``eipha secondary-ips``: put the ENI's secondary private IPs on the OS interface."""

from __future__ import annotations

import click

from eipha.cli.common import node, timeout_option
from eipha.errors import PermissionDenied


@click.command(name="secondary-ips")
@click.option(
    "--interface",
    "-i",
    metavar="IF",
    help="Only this interface [default: every interface whose MAC the metadata knows].",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also remove addresses in the ENI's subnet that the ENI no longer has.",
)
@click.option("--dry-run", "-n", is_flag=True, help="Show the plan, change nothing (no root).")
@click.option(
    "--force",
    is_flag=True,
    help="Manage addresses even where amazon-ec2-net-utils/systemd-networkd does.",
)
@timeout_option
@click.pass_context
def secondary_ips(
    ctx: click.Context,
    interface: str | None,
    prune: bool,
    dry_run: bool,
    force: bool,
    timeout: float | None,
) -> int:
    """Make the OS interface carry the ENI's secondary private IPs (as /32).

    Reads local-ipv4s with IMDSv2, subtracts the primary, and adds the missing addresses with
    netlink. Idempotent. Without --prune, addresses the ENI no longer has are reported and
    kept; --prune removes those inside the ENI's subnet, never the primary, never anything
    outside the subnet, never after an IMDS error. Steps aside (exit 0) where
    amazon-ec2-net-utils or systemd-networkd manages the interface, unless --force.

    Exit 0 in sync, 1 IMDS or netlink failure (nothing changed on an IMDS failure),
    4 not root, 6 unknown interface.
    """
    from eipha import secondary_ips as sec
    from eipha.netlink import open_netlink

    if not dry_run and not sec.can_change_addresses():
        raise PermissionDenied(
            "changing addresses needs root (CAP_NET_ADMIN)",
            "run as root, or see the plan with --dry-run",
        )
    this = node(ctx, timeout)
    targets, notes = sec.discover(
        this.imds, interface or this.config.interface or None, this.adapters.primary_ip_of
    )
    with open_netlink() as port:
        result = sec.sync(targets, port, prune=prune, dry_run=dry_run, force=force)
    for line in notes + result.lines:
        click.echo(line)
    return 0
