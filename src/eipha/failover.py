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
from typing import Protocol, TypeVar

from eipha import errors
from eipha.clock import Deadline, Sleep
from eipha.model import Address, Binding

log = logging.getLogger(__name__)
T = TypeVar("T")

# Called as events(name, target) at the moments a drill times: "associate-sent",
# "associate-returned", "visible", "disassociate-sent", "disassociate-returned".
Events = Callable[[str, "Placement"], None]


def _no_events(name: str, target: Placement) -> None:
    pass


READ_BACK_FIRST = 0.05
READ_BACK_MAX = 1.0
GRACE = 1.0  # how long past the deadline a stuck call may run before we give up on it


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


def run_concurrently(
    steps: Sequence[Step], work: Callable[[Step], Outcome], deadline: Deadline
) -> list[Outcome]:
    """Apply every step in its own daemon thread; give up on any still running a moment
    after the deadline (a hung socket must not hold a cluster manager hostage)."""
    results: dict[int, Outcome] = {}
    lock = threading.Lock()

    def run(index: int, step: Step) -> None:
        try:
            outcome = work(step)
        except errors.EiphaError as exc:
            outcome = Outcome(step.target, False, str(exc), error=exc)
        except Exception as exc:  # a bug must not lose the other EIPs' results
            log.exception("unexpected error while handling %s", step.target.label)
            outcome = Outcome(step.target, False, repr(exc), error=errors.EiphaError(repr(exc)))
        with lock:
            results[index] = outcome

    threads = [
        threading.Thread(target=run, args=(i, s), daemon=True, name=f"eipha-{s.target.label}")
        for i, s in enumerate(steps)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline.remaining() + GRACE / 2))
    with lock:
        return [results.get(i) or _timed_out(s, deadline) for i, s in enumerate(steps)]


def _timed_out(step: Step, deadline: Deadline) -> Outcome:
    exc = errors.DeadlineExceeded(
        f"{step.target.label}: EC2 did not answer in time",
        f"deadline of {deadline.seconds:g} s passed during {step.verb.value}, so it may or "
        f"may not have moved; it was on {step.before.where()}; check with eipha status",
    )
    return Outcome(step.target, False, str(exc), error=exc)


# -- actions ---------------------------------------------------------------------------------


def bounded(work: Callable[[], T], deadline: Deadline, doing: str, grace: float = GRACE) -> T:
    """Run ``work`` in a daemon thread and wait at most until the deadline plus a grace period.

    botocore's own timeouts and retries bound each call, but not the sum of them; this is the
    hard bound an action promises (at most 2 s past the deadline, as the exit-code docs promise).
    """
    box: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True, name=f"eipha-{doing}")
    thread.start()
    thread.join(max(0.0, deadline.remaining() + grace))
    if failure:
        raise failure[0]
    if not box:
        raise errors.DeadlineExceeded(
            f"{doing} did not finish",
            f"EC2 did not answer within the {deadline.seconds:g} s deadline",
        )
    return box[0]


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
) -> list[Outcome]:
    def work() -> list[Outcome]:
        steps = plan_start(targets, describe(ec2, targets))
        _log_plan(steps)
        return run_concurrently(
            steps, lambda s: apply_start(s, ec2, deadline, sleep, events or _no_events), deadline
        )

    return bounded(work, deadline, "start")


def stop(
    targets: Sequence[Placement],
    ec2: Ec2Port,
    deadline: Deadline,
    mine: Callable[[Address], bool],
    events: Events | None = None,
) -> list[Outcome]:
    def work() -> list[Outcome]:
        steps = plan_stop(targets, describe(ec2, targets), mine)
        _log_plan(steps)
        return run_concurrently(
            steps, lambda s: apply_stop(s, ec2, deadline, events or _no_events), deadline
        )

    return bounded(work, deadline, "stop")


def status(
    targets: Sequence[Placement], ec2: Ec2Port, deadline: Deadline
) -> list[tuple[Placement, bool, Address]]:
    def work() -> list[tuple[Placement, bool, Address]]:
        addresses = describe(ec2, targets)
        return [
            (t, is_running(t, addresses[t.allocation_id]), addresses[t.allocation_id])
            for t in targets
        ]

    return bounded(work, deadline, "status")
