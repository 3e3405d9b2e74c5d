"""start, stop and status for this node, from EIP names to outcomes.

The one code path behind ``eipha start|stop|status``, the cluster-manager front ends, drills
and the simulated region: resolve the names, learn who this node is, lock, then hand over to
:mod:`eipha.failover`. Callers put the whole call under the deadline's hard bound
(:func:`bounded`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from eipha import failover, locking, targets
from eipha.failover import Outcome, Placement
from eipha.model import Address, NodeIdentity
from eipha.wiring import Runtime

T = TypeVar("T")
Events = failover.Events
OVERRUN = failover.GRACE * 1.5
"""How far past its deadline :func:`bounded` lets an action run before giving up on it."""


def bounded(rt: Runtime, doing: str, work: Callable[[], T]) -> T:
    """The whole action, IMDS and API calls included, under the deadline's hard bound."""
    return failover.bounded(work, rt.deadline, doing, grace=OVERRUN)


def resolve(rt: Runtime, eips: Sequence[str], region: str | None = None) -> list[targets.Selector]:
    """Names, allocation ids and public IPs to selectors with allocation ids (``region``:
    the one the API is asked in, for the error when it does not know a public IP)."""
    selectors = targets.select_all(eips, rt.config)
    return targets.resolve_public_ips(
        selectors, rt.config, lambda ips: rt.ec2.describe_addresses(public_ips=ips), region
    )


def prepare(
    rt: Runtime, eips: Sequence[str], *, all_enis: bool = False
) -> tuple[list[targets.Selector], NodeIdentity]:
    """Check the names (no I/O), then learn who this node is from IMDS while the EC2 client
    is built in another thread; then resolve public IPs, if any were given."""
    targets.select_all(eips, rt.config)  # an unknown name fails before any I/O
    rt.prefetch_client()
    node = rt.identity(all_enis=all_enis)
    return resolve(rt, eips, node.region), node


def start(
    rt: Runtime,
    eips: Sequence[str],
    private_ip: str | None = None,
    events: Events | None = None,
    *,
    agree: bool = False,
) -> list[Outcome]:
    """``private_ip`` overrides the binding rule; with ``agree`` it may only restate it for
    an EIP the config has (:func:`eipha.targets.binding_for`)."""
    selectors, node = prepare(rt, eips)
    wanted = targets.targets(selectors, rt.config, node, private_ip, agree=agree)
    with locking.locked([t.allocation_id for t in wanted], rt.deadline):
        return failover.start(wanted, rt.ec2, rt.deadline, events=events)


def stop(rt: Runtime, eips: Sequence[str]) -> list[Outcome]:
    selectors, node = prepare(rt, eips, all_enis=True)
    wanted = targets.targets(selectors, rt.config, None, None)
    with locking.locked([t.allocation_id for t in wanted], rt.deadline):
        return failover.stop(wanted, rt.ec2, rt.deadline, node.holds)


def status(
    rt: Runtime, eips: Sequence[str], private_ip: str | None = None, *, agree: bool = False
) -> list[tuple[Placement, bool, Address]]:
    selectors, node = prepare(rt, eips)
    wanted = targets.targets(selectors, rt.config, node, private_ip, agree=agree)
    return failover.status(wanted, rt.ec2, rt.deadline)
