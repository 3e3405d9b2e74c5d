"""A step of the simulated story: its checks, run and printed as they happen and recorded
for the report; and the checks themselves (a node's start and status, EC2's state, what a
client sees)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eipha import errors
from eipha.sim.stand_ins import Router
from eipha.sim.story_lab import Lab


class StepFailed(Exception):
    """A step of the story did not verify."""


class Story:
    """Runs the steps against a lab, prints each check as it happens (seconds since the
    start) and keeps every step's outcome in :attr:`steps` for the report."""

    def __init__(self, lab: Lab, router: Router, out: Callable[[str], None]) -> None:
        self.lab = lab
        self.router = router
        self.out = out
        self.t0 = time.monotonic()
        self.steps: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        self.out(f"{time.monotonic() - self.t0:+7.2f} s  {text}")

    def step(self, title: str, checks: list[Callable[[], str]]) -> None:
        """Run and print each check of a step as it happens; any failure ends the story."""
        self.out("")
        self.say(title)
        began = time.monotonic()
        notes = []
        try:
            for check in checks:
                notes.append(check())
                self.say(f"  {notes[-1]}")
        except (StepFailed, errors.EiphaError) as exc:
            self.steps.append({"step": title, "ok": False, "notes": notes, "error": str(exc)})
            self.say(f"  FAILED: {exc}")
            raise StepFailed(title) from exc
        seconds = round(time.monotonic() - began, 3)
        self.steps.append({"step": title, "ok": True, "seconds": seconds, "notes": notes})

    def start(self, node: str, eip: str) -> str:
        this = self.lab.node(node)
        marks: dict[str, float] = {}

        def mark(name: str, _target: object) -> None:
            marks.setdefault(name, time.monotonic())

        [outcome] = this.start([eip], events=mark)
        if outcome.error is not None:
            raise StepFailed(f"{node}: eipha start {eip} failed: {outcome.error}")
        if "associate-sent" not in marks:
            return f"{node}: eipha start {eip} -> already there, no AssociateAddress"
        api = marks["associate-returned"] - marks["associate-sent"]
        visible = marks["visible"] - marks["associate-sent"]
        return (
            f"{node}: eipha start {eip} -> one AssociateAddress ({api * 1000:.0f} ms), "
            f"visible after {visible * 1000:.0f} ms"
        )

    def sees(self, node: str, expect: dict[str, bool]) -> str:
        names = sorted(expect)
        answers = self.lab.node(node).status(names)
        seen = {a.target.label: a.running for a in answers}
        words = ", ".join(f"{n} {'running' if seen[n] else 'not running'}" for n in names)
        if seen != expect:
            raise StepFailed(f"{node} sees {words}; expected {expect}")
        return f"{node} sees: {words}"

    def on(self, eip: str, node: str, ip: str) -> str:
        where = self.lab.where(eip)
        if where != (node, ip):
            raise StepFailed(f"EC2 has {eip} on {where}, expected {node} {ip}")
        return f"EC2: {eip} is on {node} {ip}"

    def client_sees(self, eip: str, node: str | None) -> str:
        status, body = self.router.forward(eip)
        text = body.decode().strip()
        if (node is None) != (status != 200) or (node and text != f"served by {node}"):
            raise StepFailed(f"a client of {eip} got {status} {text!r}")
        return f"a client of {eip} gets: {status} {text}"
