"""``eipha start|stop|status EIP…``: put EIPs on this node, take them off, ask where they are."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import click

from eipha.cli.common import (
    private_ip_option,
    report,
    runtime,
    timeout_option,
    verbosity_options,
)
from eipha.errors import EiphaError
from eipha.exitcodes import STATUS, Exit, lookup

if TYPE_CHECKING:
    from eipha.failover import Outcome, Target
    from eipha.model import Address
    from eipha.targets import Selector
    from eipha.wiring import Runtime

log = logging.getLogger("eipha")
T = TypeVar("T")

EIPS = click.argument("eips", nargs=-1, required=True, metavar="EIP...")


def _resolved(rt: Runtime, eips: Sequence[str]) -> list[Selector]:
    from eipha import targets

    selectors = targets.select_all(eips, rt.config)
    return targets.resolve_public_ips(
        selectors, rt.config, lambda ips: rt.ec2.describe_addresses(public_ips=ips)
    )


def _bounded(rt: Runtime, doing: str, work: Callable[[], T]) -> T:
    """The whole action, IMDS and API calls included, under the deadline's hard bound."""
    from eipha.failover import GRACE, bounded

    return bounded(work, rt.deadline, doing, grace=GRACE * 1.5)


@click.command()
@EIPS
@private_ip_option
@timeout_option
@verbosity_options
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
    from eipha import binding, failover, locking, targets

    option = binding.parse_private_ip_option(private_ip) if private_ip else None
    rt = runtime(ctx, timeout)

    def work() -> list[Outcome]:
        wanted = targets.targets(_resolved(rt, eips), rt.config, rt.identity(), option)
        with locking.locked([t.allocation_id for t in wanted], rt.deadline):
            return failover.start(wanted, rt.ec2, rt.deadline)

    return report(_bounded(rt, "start", work), rt.deadline.started)


@click.command()
@EIPS
@timeout_option
@verbosity_options
@click.pass_context
def stop(ctx: click.Context, eips: tuple[str, ...], timeout: float | None) -> int:
    """Disassociate each EIP, but only if it is on this node (idempotent).

    One DescribeAddresses; for an EIP on one of this node's ENIs, one DisassociateAddress by
    the AssociationId just read, so a stale stop can never remove a peer's newer association.
    Exit 0 when none of the EIPs is here any more (also if it was elsewhere or unassociated).
    """
    from eipha import failover, locking, targets

    rt = runtime(ctx, timeout)

    def work() -> list[Outcome]:
        wanted = targets.targets(_resolved(rt, eips), rt.config, None, None)
        node = rt.identity(all_enis=True)
        with locking.locked([t.allocation_id for t in wanted], rt.deadline):
            return failover.stop(wanted, rt.ec2, rt.deadline, node.holds)

    return report(_bounded(rt, "stop", work), rt.deadline.started)


@click.command()
@EIPS
@private_ip_option
@timeout_option
@verbosity_options
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
    from eipha import binding, failover, targets

    option = binding.parse_private_ip_option(private_ip) if private_ip else None
    rt = runtime(ctx, timeout)

    def work() -> list[tuple[Target, bool, Address]]:
        wanted = targets.targets(_resolved(rt, eips), rt.config, rt.identity(), option)
        return failover.status(wanted, rt.ec2, rt.deadline)

    answers = _bounded(rt, "status", work)
    for target, _running, address in answers:
        log.debug("%s: %s; wanted on %s", target.label, address.where(), target.binding)
    return [(target.label, running) for target, running, _ in answers]


def _print(answers: Sequence[tuple[str, bool]]) -> None:
    words = {True: "running", False: "not running"}
    if len(answers) == 1:
        click.echo(words[answers[0][1]])
        return
    for label, running in answers:
        click.echo(f"{label}: {words[running]}")
