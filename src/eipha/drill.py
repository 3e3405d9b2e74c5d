"""Failover drills: move an EIP to another node the way a takeover does, and time it.

A drill runs from any host with credentials and a config whose ``nodes:`` give instance ids.
It finds the target node's device-0 ENI with DescribeNetworkInterfaces, computes the binding
with the same rule as ``start`` on that node, refuses a binding IP that is missing or already
carries another EIP, and moves the EIP through :meth:`eipha.node.Node.place` — the plans of a
takeover: one AssociateAddress, then read-back. With a probe URL it also records what a
client saw. It never disassociates to move, so a failed step leaves the EIP associated, and
the report says where.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eipha import errors, locking
from eipha.binding import private_ip_for
from eipha.config import Config, EipSpec
from eipha.drill_probe import Gap, Prober, gap
from eipha.failover import Outcome, Placement
from eipha.model import Address, Binding
from eipha.node import Node
from eipha.ports import Ec2

SETTLE = 3.0  # seconds of probing after a move without any failure before we call it done
BASELINE = 0.5  # seconds of probing before the first move


@dataclass
class Timeline:
    """Events relative to the start of the drill."""

    t0: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str, str]] = field(default_factory=list)

    def add(self, phase: str, what: str, at: float | None = None) -> None:
        self.events.append(((at if at is not None else time.monotonic()) - self.t0, phase, what))
        self.events.sort(key=lambda e: e[0])

    def rel(self, at: float) -> float:
        return at - self.t0


@dataclass
class Leg:
    """One move of a drill: ``move`` to the target, or ``back`` to where it was."""

    phase: str
    before: Address
    to: Binding | None  # None: back to unassociated
    from_text: str  # where it was, for people: "lb-a eni-… 10.0.0.11"
    to_text: str  # where it goes, for people
    sent: float | None = None
    returned: float | None = None
    visible: float | None = None
    gap: Gap | None = None
    outcome: Outcome | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is not None and self.outcome.error is None


@dataclass
class Report:
    eip: str
    allocation_id: str
    public_ip: str
    target_node: str
    probe: str | None
    timeline: Timeline
    legs: list[Leg]
    where: str = ""
    error: errors.EiphaError | None = None
    finished: float = 0.0


def node_binding(gateway: Ec2, config: Config, spec: EipSpec, node: str) -> Binding:
    """Where ``spec`` belongs on ``node``: its device-0 ENI and the binding rule's IP."""
    instance = config.nodes[node].instance_id
    if instance is None:
        raise errors.NotConfigured(f"nodes.{node} has no instance_id", "a drill needs it")
    enis = [
        e
        for e in gateway.describe_network_interfaces(instance_ids=[instance])
        if e.device_index == 0
    ]
    if not enis:
        raise errors.NotConfigured(f"{node} ({instance}) has no device-0 network interface")
    eni = enis[0]
    try:
        ip = private_ip_for(spec.name, node, config.eip_rules(), eni.primary_ip, eni.secondary_ips)
    except errors.NotConfigured as exc:
        raise errors.NotConfigured(
            f"{node} has no free binding IP for {spec.name}", exc.why
        ) from None
    assigned = (eni.primary_ip, *eni.secondary_ips)
    if ip not in assigned:
        raise errors.NotConfigured(
            f"{node} has no free binding IP for {spec.name}",
            f"{ip} is not assigned to {eni.eni_id} ({', '.join(assigned)})",
        )
    return Binding(eni.eni_id, ip)


def check_free(gateway: Ec2, binding: Binding, allocation_id: str, node: str, label: str) -> None:
    """Refuse a binding IP that already carries another EIP: moving there would evict it."""
    on_eni = gateway.describe_addresses(filters={"network-interface-id": [binding.eni_id]})
    for other in on_eni:
        if other.private_ip == binding.private_ip and other.allocation_id != allocation_id:
            raise errors.NotConfigured(
                f"{node} has no free binding IP for {label}",
                f"{binding.private_ip} already carries {other.public_ip} "
                f"({other.allocation_id}); moving {label} there would take it away",
            )


def where(address: Address, config: Config) -> str:
    """Where an EIP is, with the node's name when it is one of ``nodes:``."""
    if not address.associated:
        return "unassociated"
    owner = address.instance_id
    name = next((n.name for n in config.nodes.values() if owner and n.instance_id == owner), None)
    return f"{name + ' ' if name else ''}{address.network_interface_id} {address.private_ip}"


class Drill:
    def __init__(
        self,
        node: Node,
        eip: str,
        to_node: str,
        probe: str | None = None,
        back: bool = False,
        settle: float = SETTLE,
    ) -> None:
        self.node = node
        self.config = node.config
        self.seconds = node.deadline.seconds  # each move gets the whole of it
        self.to_node = to_node
        self.probe_url = probe
        self.back = back
        self.settle = settle
        self.spec = self._spec(eip)

    def _spec(self, eip: str) -> EipSpec:
        spec = self.config.eips.get(eip) or self.config.eip_by_allocation(eip)
        if spec is None:
            raise errors.NotConfigured(f"unknown EIP {eip!r}", "a drill needs a configured EIP")
        if self.to_node not in self.config.nodes:
            known = ", ".join(self.config.nodes) or "none configured"
            raise errors.NotConfigured(f"--to {self.to_node!r} is not one of the nodes ({known})")
        return spec

    def run(self, on_event: Callable[[float, str, str], None] | None = None) -> Report:
        gateway = self.node.ec2
        binding = node_binding(gateway, self.config, self.spec, self.to_node)
        check_free(gateway, binding, self.spec.allocation_id, self.to_node, self.spec.name)
        (before,) = gateway.describe_addresses([self.spec.allocation_id])
        if before.associated and before.is_on(binding):
            raise errors.UsageError(
                f"{self.spec.name} is already on {self.to_node} ({binding})",
                "nothing to move; drill it to another node",
            )
        timeline = Timeline()
        report = Report(
            self.spec.name,
            self.spec.allocation_id,
            before.public_ip,
            self.to_node,
            self.probe_url,
            timeline,
            [],
        )
        prober = Prober(self.probe_url).start() if self.probe_url else None
        try:
            with locking.locked([self.spec.allocation_id], self.node.deadline):
                self._legs(report, before, binding, prober)
        except errors.EiphaError as exc:
            report.error = exc
        finally:
            if prober:
                prober.stop()
        (now,) = gateway.describe_addresses([self.spec.allocation_id])
        report.where = where(now, self.config)
        report.finished = timeline.rel(time.monotonic())
        return report

    def _legs(
        self, report: Report, before: Address, binding: Binding, prober: Prober | None
    ) -> None:
        if prober:
            time.sleep(BASELINE)
        move = Leg("move", before, binding, where(before, self.config), f"{self.to_node} {binding}")
        report.legs.append(move)
        self._move(move, report.timeline, prober)
        if not move.ok:
            return
        if self.back:
            (now,) = self.node.ec2.describe_addresses([self.spec.allocation_id])
            home = Binding(before.network_interface_id or "", before.private_ip or "")
            back = Leg(
                "back",
                now,
                home if before.associated else None,
                where(now, self.config),
                where(before, self.config),
            )
            report.legs.append(back)
            self._move(back, report.timeline, prober)

    def _move(self, leg: Leg, timeline: Timeline, prober: Prober | None) -> None:
        def event(name: str, target: Placement) -> None:
            now = time.monotonic()
            setattr(
                leg,
                {
                    "associate-sent": "sent",
                    "disassociate-sent": "sent",
                    "associate-returned": "returned",
                    "disassociate-returned": "returned",
                    "visible": "visible",
                }[name],
                now,
            )
            timeline.add(leg.phase, name, now)

        target = Placement(self.spec.name, self.spec.allocation_id, leg.to)
        # each move has the whole timeout, as a takeover would; the drill holds the lock
        leg.outcome = self.node.place(target, seconds=self.seconds, events=event, locked=True)
        if leg.outcome.error is not None:
            timeline.add(leg.phase, f"failed: {leg.outcome.error}")
            raise leg.outcome.error
        if prober and leg.sent is not None:
            leg.gap = self._watch(prober, leg.sent)
            _probe_events(timeline, leg)

    def _watch(self, prober: Prober, since: float) -> Gap:
        """Probe until clients recover from a failure, or ``settle`` s pass without one."""
        end_quiet = time.monotonic() + self.settle

        def settled(samples: list[Any]) -> bool:
            g = gap(samples, since)
            if g.first_failure is not None:
                return g.first_ok_after is not None
            return time.monotonic() >= end_quiet

        prober.wait_for(settled, timeout=max(self.settle, self.node.deadline.remaining()))
        return gap(prober.samples, since)


def _probe_events(timeline: Timeline, leg: Leg) -> None:
    g = leg.gap
    if g is None:
        return
    if g.last_ok_before:
        timeline.add(
            leg.phase,
            f"probe: last success before ({g.last_ok_before.detail})",
            g.last_ok_before.at,
        )
    if g.first_failure:
        timeline.add(
            leg.phase, f"probe: first failure ({g.first_failure.detail})", g.first_failure.at
        )
    if g.first_ok_after:
        label = "first success after" if g.first_failure else "still answering"
        timeline.add(leg.phase, f"probe: {label} ({g.first_ok_after.detail})", g.first_ok_after.at)


# -- rendering -------------------------------------------------------------------------------

WORDS = {
    "associate-sent": "AssociateAddress sent",
    "associate-returned": "AssociateAddress returned",
    "visible": "association visible in DescribeAddresses",
    "disassociate-sent": "DisassociateAddress sent",
    "disassociate-returned": "DisassociateAddress returned",
}


def _seconds(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def leg_totals(leg: Leg) -> dict[str, float | None]:
    return {
        "api_seconds": _seconds(leg.sent, leg.returned),
        "visible_seconds": _seconds(leg.sent, leg.visible),
        "probe_gap_seconds": None
        if leg.gap is None or leg.gap.seconds is None
        else round(leg.gap.seconds, 3),
    }


def to_json(report: Report) -> dict[str, Any]:
    tl = report.timeline
    return {
        "eip": report.eip,
        "allocation_id": report.allocation_id,
        "public_ip": report.public_ip,
        "to": report.target_node,
        "probe": report.probe,
        "ok": report.error is None,
        "error": str(report.error) if report.error else None,
        "legs": [
            {
                "phase": leg.phase,
                "from": leg.from_text,
                "to": leg.to_text,
                **leg_totals(leg),
                "probe": None
                if leg.gap is None
                else {
                    "last_success_before": _rel(tl, leg.gap.last_ok_before),
                    "first_failure": _rel(tl, leg.gap.first_failure),
                    "first_success_after": _rel(tl, leg.gap.first_ok_after),
                },
            }
            for leg in report.legs
        ],
        "timeline": [
            {"t": round(t, 3), "phase": p, "event": WORDS.get(e, e)} for t, p, e in tl.events
        ],
        "where": report.where,
        "total_seconds": round(report.finished, 3),
    }


def _rel(tl: Timeline, sample: Any) -> float | None:
    return None if sample is None else round(tl.rel(sample.at), 3)


def to_text(report: Report) -> str:
    lines = [
        f"drill {report.eip} ({report.public_ip}) to {report.target_node}"
        + (f", probing {report.probe}" if report.probe else "")
    ]
    lines.append(f"  {0:+8.3f} s  start")
    for t, phase, event in report.timeline.events:
        lines.append(f"  {t:+8.3f} s  {phase:<4}  {WORDS.get(event, event)}")
    for leg in report.legs:
        totals = leg_totals(leg)
        parts = [f"{leg.phase}: {leg.from_text} -> {leg.to_text}"]
        if totals["api_seconds"] is not None:
            parts.append(f"API call {totals['api_seconds']:.3f} s")
        if totals["visible_seconds"] is not None:
            parts.append(f"visible after {totals['visible_seconds']:.3f} s")
        if leg.gap is not None:
            parts.append(
                "no failed probe"
                if leg.gap.first_failure is None
                else f"clients saw a gap of {totals['probe_gap_seconds']} s"
                if totals["probe_gap_seconds"] is not None
                else "clients had not recovered when the drill ended"
            )
        lines.append("  " + "; ".join(parts))
    status = "ok" if report.error is None else f"FAILED: {report.error}"
    lines.append(
        f"  total {report.finished:.3f} s; {report.eip} is now on {report.where}; {status}"
    )
    return "\n".join(lines)
