"""What a cluster manager is told: a start's first failure, whether every EIP runs here, and
the stop rule.

A stop succeeds unless the EIP is *provably* still on this node, because a failed stop makes
Heartbeat reboot the node and Pacemaker fence it: anything that keeps us from finding out
(no config, IMDS or the API unreachable, the deadline) counts as "not provably here".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from eipha.agents.setup import seconds
from eipha.errors import EiphaError
from eipha.failover import Outcome
from eipha.node import Node

log = logging.getLogger("eipha")


def settle(outcomes: Sequence[Outcome]) -> EiphaError | None:
    """Log one line per EIP; the first failure, if any."""
    first: EiphaError | None = None
    for outcome in outcomes:
        if outcome.error is not None:
            log.error("%s", outcome.error)
            first = first or outcome.error
        else:
            log.info("%s", outcome.message)
    return first


def started(
    node: Node, eips: Sequence[str], private_ip: str | None = None, cap: float | None = None
) -> EiphaError | None:
    """Put the EIPs on this node; the first failure, if any (raises for a failure before
    any EIP was tried: config, IMDS, the first DescribeAddresses). A ``private_ip`` the
    manager gives must agree with the config's binding rule for an EIP the config has.
    ``cap``: the manager's own operation timeout, if it has one (:func:`seconds`)."""
    return settle(node.start(eips, private_ip, agree=True, seconds=seconds(node.config, cap)))


def running(
    node: Node, eips: Sequence[str], private_ip: str | None = None, cap: float | None = None
) -> bool:
    """Is every EIP on this node's binding? Raises when that cannot be learned (or a
    ``private_ip`` contradicts the config, as for :func:`started`)."""
    answers = node.status(eips, private_ip, agree=True, seconds=seconds(node.config, cap))
    for a in answers:
        state = "running" if a.running else "not running"
        log.debug(
            "%s: %s; %s; wanted on %s", a.target.label, state, a.address.where(), a.target.binding
        )
    return all(a.running for a in answers)


def stopped(
    make: Callable[[], Node], eips: Sequence[str], cap: float | None = None
) -> EiphaError | None:
    """Take the EIPs off this node. None (success) unless one is provably still here; then
    the error that says so. When a DisassociateAddress fails, one more DescribeAddresses,
    within the same deadline, decides."""
    try:
        node = make()
        released = node.release(eips, seconds=seconds(node.config, cap))
    except EiphaError as exc:
        log.error("%s; nothing proves %s is on this node, so the stop succeeds", exc, _and(eips))
        return None
    error = settle(released.outcomes)
    if error is None:
        return None
    labels = _and([o.target.label for o in released.outcomes if o.error is not None])
    if released.still_here is None:
        log.error(
            "cannot tell whether %s is still on this node (%s); the stop succeeds",
            labels,
            released.unknown,
        )
        return None
    if not released.still_here:
        log.info("%s: not on this node any more; the stop succeeds", labels)
        return None
    return EiphaError(f"stop failed: {_and(released.still_here)} still on this node", str(error))


def _and(names: Sequence[str]) -> str:
    return ", ".join(names) or "nothing"
