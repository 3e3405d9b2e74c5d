"""Time, behind a small seam so that tests and the daemon can use a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eipha.errors import DeadlineExceeded

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass
class Deadline:
    """An absolute deadline on a monotonic clock, shared by every step of one action."""

    seconds: float
    clock: Clock = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def at(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at

    def restart(self) -> None:
        """Start the same deadline over (a drill gives each of its moves the full time)."""
        self.started = self.clock()

    def check(self, doing: str) -> None:
        """Raise :class:`DeadlineExceeded` naming what we were doing if time is up."""
        if self.expired():
            raise DeadlineExceeded(
                f"{doing} did not finish", f"deadline of {self.seconds:g} s passed"
            )

    def cap(self, wanted: float) -> float:
        """``wanted`` seconds, or less if the deadline is nearer (never below 0.05 s)."""
        return max(0.05, min(wanted, self.remaining()))
