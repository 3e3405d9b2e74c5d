"""The core: start, stop and status as a plan computed from what EC2 reports, then applied.

This module never imports boto3, IMDS or netlink code: it talks to EC2 through the small
:class:`Ec2Port` protocol, so it runs against a real client (``eipha.wiring``) or a fake.

The EC2 semantics (docs/how-it-works.md):

* start = one batched DescribeAddresses; for each EIP not already on its binding, one
  AssociateAddress(AllowReassociation=True, PrivateIpAddress); then read back until the new
  AssociationId is visible on the binding. The AssociationId read before our call means "not
  visible yet"; any other means another node associated it after us: fail and say where.
* stop = one batched DescribeAddresses; DisassociateAddress(<the AssociationId just read>) only
  for an EIP on this node; NotFound means someone moved it meanwhile, which is success.
* status = one batched DescribeAddresses, exact match on ENI and private IP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from eipha import errors
from eipha.clock import Deadline, Sleep
from eipha.model import Address, Binding

log = logging.getLogger(__name__)

# Called as events(name, target) at the moments a drill times: "associate-sent",
# "associate-returned", "visible", "disassociate-sent", "disassociate-returned".
Events = Callable[[str, "Placement"], None]


def _no_events(name: str, target: Placement) -> None:
    pass


READ_BACK_FIRST = 0.05
READ_BACK_MAX = 1.0


class Ec2Port(Protocol):
    def describe_addresses(
        self, allocation_ids: Sequence[str] = (), public_ips: Sequence[str] = ()
    ) -> list[Address]: ...

    def associate_address(self, allocation_id: str, binding: Binding) -> str: ...

    def disassociate_address(self, association_id: str) -> bool: ...


@dataclass(frozen=True)
class Placement:
    """One EIP of this action: its label for people, its allocation id, and (for start and
    status) the binding it belongs on on this node."""

    label: str
    allocation_id: str
    binding: Binding | None = None


class Verb(Enum):
    NOTHING = "nothing"
    ASSOCIATE = "associate"
    DISASSOCIATE = "disassociate"


@dataclass(frozen=True)
class Step:
    target: Placement
    before: Address
    verb: Verb
    reason: str


@dataclass(frozen=True)
class Outcome:
    target: Placement
    changed: bool
    message: str
    after: Address | None = None
    error: errors.EiphaError | None = None


# -- reading ---------------------------------------------------------------------------------


def describe(ec2: Ec2Port, targets: Sequence[Placement]) -> dict[str, Address]:
    """One DescribeAddresses for every target, keyed by allocation id."""
    wanted = sorted({t.allocation_id for t in targets})
    found = {a.allocation_id: a for a in ec2.describe_addresses(allocation_ids=wanted)}
    missing = [a for a in wanted if a not in found]
    if missing:
        raise errors.NotConfigured(
            f"EC2 does not know {', '.join(missing)}", "check the allocation id and region"
        )
    return found


def is_running(target: Placement, address: Address) -> bool:
    """Is the EIP exactly on this node's binding for it?"""
    return target.binding is not None and address.associated and address.is_on(target.binding)


# -- planning (pure) -------------------------------------------------------------------------


def plan_start(targets: Sequence[Placement], addresses: Mapping[str, Address]) -> list[Step]:
    steps = []
    for target in targets:
        before = addresses[target.allocation_id]
        if is_running(target, before):
            steps.append(Step(target, before, Verb.NOTHING, f"already on {target.binding}"))
        else:
            steps.append(Step(target, before, Verb.ASSOCIATE, f"now {before.where()}"))
    return steps


def plan_stop(
    targets: Sequence[Placement], addresses: Mapping[str, Address], mine: Callable[[Address], bool]
) -> list[Step]:
    steps = []
    for target in targets:
        before = addresses[target.allocation_id]
        if before.associated and mine(before):
            steps.append(Step(target, before, Verb.DISASSOCIATE, f"on this node, {before.where()}"))
        elif before.associated:
            steps.append(Step(target, before, Verb.NOTHING, f"not here, on {before.where()}"))
        else:
            steps.append(Step(target, before, Verb.NOTHING, "not associated"))
    return steps


# -- applying --------------------------------------------------------------------------------


def read_back(
    ec2: Ec2Port,
    step: Step,
    association_id: str,
    deadline: Deadline,
    sleep: Sleep,
    events: Events = _no_events,
) -> Address:
    """Read DescribeAddresses until our association is visible on the binding."""
    target, before = step.target, step.before
    assert target.binding is not None
    delay = 0.0
    while True:
        if delay:
            sleep(min(delay, deadline.remaining()))
        found = ec2.describe_addresses(allocation_ids=[target.allocation_id])
        if len(found) != 1:
            raise errors.AwsError(
                f"DescribeAddresses for {target.label} answered {len(found)} addresses",
                "expected exactly one",
            )
        now = found[0]
        if now.association_id == association_id and now.is_on(target.binding):
            events("visible", target)
            return now
        if now.association_id != before.association_id:
            raise errors.RaceLost(
                f"{target.label}: another node associated it after our AssociateAddress",
                f"it is now on {now.where()}; not fighting back",
            )
        deadline.check(f"waiting for {target.label} to show on {target.binding}")
        delay = min(READ_BACK_MAX, max(READ_BACK_FIRST, delay * 2))


def apply_start(
    step: Step, ec2: Ec2Port, deadline: Deadline, sleep: Sleep, events: Events = _no_events
) -> Outcome:
    target = step.target
    if step.verb is Verb.NOTHING:
        return Outcome(target, False, f"{target.label}: {step.reason}; nothing to do", step.before)
    assert target.binding is not None
    deadline.check(f"starting {target.label}")
    began = time.monotonic()
    events("associate-sent", target)
    association_id = ec2.associate_address(target.allocation_id, target.binding)
    events("associate-returned", target)
    after = read_back(ec2, step, association_id, deadline, sleep, events)
    return Outcome(
        target,
        True,
        f"{target.label}: {after.public_ip} associated with {target.binding} "
        f"(was {step.before.where()}); visible after {time.monotonic() - began:.2f} s",
        after,
    )


def apply_stop(
    step: Step, ec2: Ec2Port, deadline: Deadline, events: Events = _no_events
) -> Outcome:
    target, before = step.target, step.before
    if step.verb is Verb.NOTHING:
        return Outcome(target, False, f"{target.label}: {step.reason}; nothing to do", before)
    assert before.association_id is not None
    deadline.check(f"stopping {target.label}")
    events("disassociate-sent", target)
    gone = ec2.disassociate_address(before.association_id)
    events("disassociate-returned", target)
    if gone:
        return Outcome(
            target,
            True,
            f"{target.label}: {before.public_ip} disassociated from "
            f"{before.network_interface_id} {before.private_ip}",
        )
    return Outcome(
        target,
        False,
        f"{target.label}: association {before.association_id} was "
        "already gone (moved by someone else meanwhile); nothing to do",
    )


class Progress:
    """What one action has done so far: its plan, then each step's outcome as it lands.

    The caller's one watchdog (:class:`eipha.node.Node`) reads it when the deadline passes:
    the steps that finished keep their outcomes, the others are reported as timed out.
    """

    def __init__(self) -> None:
        self.steps: list[Step] | None = None
        self._outcomes: dict[int, Outcome] = {}
        self._lock = threading.Lock()

    def planned(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def landed(self, index: int, outcome: Outcome) -> None:
        with self._lock:
            self._outcomes[index] = outcome

    def outcomes(self, deadline: Deadline) -> list[Outcome] | None:
        """Every step's outcome (timed out where none landed); None before the plan."""
        if self.steps is None:
            return None
        with self._lock:
            return [
                self._outcomes.get(i) or _timed_out(s, deadline) for i, s in enumerate(self.steps)
            ]


def _run_step(step: Step, work: Callable[[Step], Outcome]) -> Outcome:
    try:
        return work(step)
    except errors.EiphaError as exc:
        return Outcome(step.target, False, str(exc), error=exc)
    except Exception as exc:  # a bug must not lose the other EIPs' results
        log.exception("unexpected error while handling %s", step.target.label)
        return Outcome(step.target, False, repr(exc), error=errors.EiphaError(repr(exc)))


def apply(steps: Sequence[Step], work: Callable[[Step], Outcome], progress: Progress) -> None:
    """Apply every step; those that call the API run side by side (one thread each) when
    there are several, in this thread when there is one. No deadline here: the caller's
    watchdog bounds the whole action and reads ``progress``."""
    progress.planned(steps)
    calls = [(i, s) for i, s in enumerate(steps) if s.verb is not Verb.NOTHING]
    for index, step in enumerate(steps):
        if step.verb is Verb.NOTHING:
            progress.landed(index, _run_step(step, work))
    if len(calls) == 1:
        index, step = calls[0]
        progress.landed(index, _run_step(step, work))
        return
    threads = [
        threading.Thread(
            target=lambda i=i, s=s: progress.landed(i, _run_step(s, work)),
            daemon=True,
            name=f"eipha-{s.target.label}",
        )
        for i, s in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _all(progress: Progress, deadline: Deadline) -> list[Outcome]:
    outcomes = progress.outcomes(deadline)
    assert outcomes is not None, "apply plans first"
    return outcomes


def _timed_out(step: Step, deadline: Deadline) -> Outcome:
    exc = errors.DeadlineExceeded(
        f"{step.target.label}: EC2 did not answer in time",
        f"deadline of {deadline.seconds:g} s passed during {step.verb.value}, so it may or "
        f"may not have moved; it was on {step.before.where()}; check with eipha status",
    )
    return Outcome(step.target, False, str(exc), error=exc)


# -- actions ---------------------------------------------------------------------------------


def _log_plan(steps: Sequence[Step]) -> None:
    for step in steps:
        wanted = f" (wanted on {step.target.binding})" if step.target.binding else ""
        log.debug("plan: %s: %s; %s%s", step.target.label, step.verb.value, step.reason, wanted)


def start(
    targets: Sequence[Placement],
    ec2: Ec2Port,
    deadline: Deadline,
    sleep: Sleep = time.sleep,
    events: Events | None = None,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Put each EIP on its binding: one DescribeAddresses, then for each EIP not there one
    AssociateAddress and its read-back."""
    progress = progress or Progress()
    steps = plan_start(targets, describe(ec2, targets))
    _log_plan(steps)
    apply(steps, lambda s: apply_start(s, ec2, deadline, sleep, events or _no_events), progress)
    return _all(progress, deadline)


def stop(
    targets: Sequence[Placement],
    ec2: Ec2Port,
    deadline: Deadline,
    mine: Callable[[Address], bool],
    events: Events | None = None,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Take each EIP off this node: one DescribeAddresses, then one DisassociateAddress for
    each EIP that ``mine`` says is here."""
    progress = progress or Progress()
    steps = plan_stop(targets, describe(ec2, targets), mine)
    _log_plan(steps)
    apply(steps, lambda s: apply_stop(s, ec2, deadline, events or _no_events), progress)
    return _all(progress, deadline)


def status(targets: Sequence[Placement], ec2: Ec2Port) -> list[tuple[Placement, bool, Address]]:
    """Is each EIP exactly on its binding? One DescribeAddresses."""
    addresses = describe(ec2, targets)
    return [
        (t, is_running(t, addresses[t.allocation_id]), addresses[t.allocation_id]) for t in targets
    ]
