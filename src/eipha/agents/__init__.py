"""Front ends for cluster managers: Heartbeat v1, keepalived and Pacemaker (OCF).

Each turns its manager's calling convention into the one code path of :mod:`eipha.actions`
and the outcome into its dialect's exit code (:mod:`eipha.exitcodes`). What they share lives
here: how they get a config and a runtime (:class:`Setup`, built by the command line), and
the stop rule every manager needs — a stop succeeds unless the EIP is *provably* still on
this node, because a failed stop makes Heartbeat reboot the node and Pacemaker fence it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eipha import actions, failover
from eipha.config import Config
from eipha.errors import EiphaError
from eipha.failover import Outcome, Placement
from eipha.wiring import Runtime

log = logging.getLogger("eipha")

Loader = Callable[[str | None], Config]
"""The config in effect; a path given by the cluster manager (OCF ``config``) wins."""
Builder = Callable[[Config, float], Runtime]
"""A runtime for one action with a deadline of so many seconds."""


@dataclass(frozen=True)
class Setup:
    """What a front end gets from the command line: how to load the config and build a
    runtime. Tests give it fakes."""

    load: Loader
    build: Builder

    def runtime(self, path: str | None = None, cap: float | None = None) -> Runtime:
        """Load the config and build a runtime whose deadline is the config's ``timeout``, or
        ``cap`` seconds if that is shorter (a cluster manager's own operation timeout)."""
        config = self.load(path)
        seconds = config.timeout if cap is None else min(config.timeout, cap)
        return self.build(config, seconds)


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


def start(rt: Runtime, eips: Sequence[str], private_ip: str | None = None) -> EiphaError | None:
    """Put the EIPs on this node; the first failure, if any (raises for a failure before
    any EIP was tried: config, IMDS, the first DescribeAddresses). A ``private_ip`` the
    manager gives must agree with the config's binding rule for an EIP the config has."""
    return settle(
        actions.bounded(rt, "start", lambda: actions.start(rt, eips, private_ip, agree=True))
    )


def running(rt: Runtime, eips: Sequence[str], private_ip: str | None = None) -> bool:
    """Is every EIP on this node's binding? Raises when that cannot be learned (or a
    ``private_ip`` contradicts the config, as for :func:`start`)."""
    answers = actions.bounded(
        rt, "status", lambda: actions.status(rt, eips, private_ip, agree=True)
    )
    for target, here, address in answers:
        state = "running" if here else "not running"
        log.debug("%s: %s; %s; wanted on %s", target.label, state, address.where(), target.binding)
    return all(here for _, here, _ in answers)


def stop(make: Callable[[], Runtime], eips: Sequence[str]) -> EiphaError | None:
    """Take the EIPs off this node. None (success) unless one is provably still here; then
    the error that says so.

    Anything that keeps us from finding out — no config, IMDS or the API unreachable, the
    deadline — counts as "not provably here": logged, and the stop succeeds. When a
    DisassociateAddress fails, one more DescribeAddresses decides.
    """
    try:
        rt = make()
        outcomes = actions.bounded(rt, "stop", lambda: actions.stop(rt, eips))
    except EiphaError as exc:
        log.error("%s; nothing proves %s is on this node, so the stop succeeds", exc, _and(eips))
        return None
    error = settle(outcomes)
    if error is None:
        return None
    failed = [o.target for o in outcomes if o.error is not None]
    return _still_here(rt, failed, error)


def _still_here(rt: Runtime, failed: Sequence[Placement], error: EiphaError) -> EiphaError | None:
    labels = _and([t.label for t in failed])
    try:
        here = actions.bounded(rt, "re-reading after a failed stop", lambda: holds(rt, failed))
    except EiphaError as exc:
        log.error(
            "cannot tell whether %s is still on this node (%s); the stop succeeds", labels, exc
        )
        return None
    if not here:
        log.info("%s: not on this node any more; the stop succeeds", labels)
        return None
    return EiphaError(f"stop failed: {_and(here)} still on this node", str(error))


def holds(rt: Runtime, wanted: Sequence[Placement]) -> list[str]:
    """The labels of the targets that are on one of this node's ENIs right now."""
    addresses = failover.describe(rt.ec2, wanted)
    node = rt.identity(all_enis=True)
    return [t.label for t in wanted if node.holds(addresses[t.allocation_id])]


def _and(names: Sequence[str]) -> str:
    return ", ".join(names) or "nothing"
