"""``eipha start|stop|status EIP…``: put EIPs on this node, take them off, ask where they are."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import click

from eipha.cli.common import node, private_ip_option, report, timeout_option
from eipha.errors import EiphaError
from eipha.exitcodes import STATUS, Exit, lookup

log = logging.getLogger("eipha")

EIPS = click.argument("eips", nargs=-1, required=True, metavar="EIP...")


@click.command()
@EIPS
@private_ip_option
@timeout_option
@click.pass_context
def start(
    ctx: click.Context, eips: tuple[str, ...], private_ip: str | None, timeout: float | None
) -> int:
    """Put each EIP on this node's binding (idempotent).

    One DescribeAddresses for all EIPs; for each EIP not already on its binding, one
    AssociateAddress onto this node's ENI and private IP (reassociating it from wherever it
    is, with no gap), then read back until EC2 shows it there. If another node associates it
    after us, start fails and says where it is: eipha does not fight.

    EIP is a config name, an allocation id (eipalloc-...) or a public IP.
    Exit 0 when every EIP is here (also if it already was).
    """
    from eipha import binding

    option = binding.parse_private_ip_option(private_ip) if private_ip is not None else None
    began = time.monotonic()
    outcomes = node(ctx).start(eips, option, seconds=timeout)
    return report(outcomes, began)


@click.command()
@EIPS
@timeout_option
@click.pass_context
def stop(ctx: click.Context, eips: tuple[str, ...], timeout: float | None) -> int:
    """Disassociate each EIP, but only if it is on this node (idempotent).

    One DescribeAddresses; for an EIP on one of this node's ENIs, one DisassociateAddress by
    the AssociationId just read, so a stale stop can never remove a peer's newer association.
    Exit 0 when none of the EIPs is here any more (also if it was elsewhere or unassociated).
    """
    began = time.monotonic()
    outcomes = node(ctx).stop(eips, seconds=timeout)
    return report(outcomes, began)


@click.command()
@EIPS
@private_ip_option
@timeout_option
@click.pass_context
def status(
    ctx: click.Context, eips: tuple[str, ...], private_ip: str | None, timeout: float | None
) -> int:
    """Is each EIP on this node's binding? (one DescribeAddresses)

    \b
    One EIP: prints exactly "running" or "not running".
    Several: one "NAME: running" / "NAME: not running" line each.
    Exit 0 all here, 3 any not here, 4 unknown (AWS or IMDS unreachable;
    stdout still says "not running"), 6 not configured.
    """
    try:
        answers = _status(ctx, eips, private_ip, timeout)
    except EiphaError as exc:
        log.error("%s", exc)
        _print([(label, False) for label in eips])
        return int(lookup(STATUS, exc))
    _print(answers)
    return int(Exit.OK if all(running for _, running in answers) else Exit.NOT_RUNNING)


def _status(
    ctx: click.Context, eips: Sequence[str], private_ip: str | None, timeout: float | None
) -> list[tuple[str, bool]]:
    from eipha import binding

    option = binding.parse_private_ip_option(private_ip) if private_ip is not None else None
    answers = node(ctx).status(eips, option, seconds=timeout)
    for a in answers:
        log.debug("%s: %s; wanted on %s", a.target.label, a.address.where(), a.target.binding)
    return [(a.target.label, a.running) for a in answers]


def _print(answers: Sequence[tuple[str, bool]]) -> None:
    words = {True: "running", False: "not running"}
    if len(answers) == 1:
        click.echo(words[answers[0][1]])
        return
    for label, running in answers:
        click.echo(f"{label}: {words[running]}")
