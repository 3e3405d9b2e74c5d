"""The simulated region's log of EC2 requests: what was asked, by whom, how it was answered
and when; safe to read while the server appends to it."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiRequest:
    """One EC2 request as the simulated region saw it.

    ``started``/``ended`` are :func:`time.monotonic` readings (arrival, and when the answer,
    latency included, was handed back to the server). ``client`` is the SigV4 access key id
    (give each simulated node its own fake key to tell them apart), or the peer address for
    an unsigned request. ``injected`` is true when the answer was an injected fault.
    """

    action: str
    params: dict[str, str]
    status: int
    started: float
    ended: float
    client: str
    injected: bool = False


class RequestLog:
    """EC2 requests, oldest first. A position (:meth:`mark`) selects the later ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[ApiRequest] = []

    def record(self, entry: ApiRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def snapshot(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._entries)

    def mark(self) -> int:
        """The current log length: pass it as ``since`` to look only at later requests."""
        with self._lock:
            return len(self._entries)

    def calls(self, action: str | None = None, since: int = 0) -> list[ApiRequest]:
        """Requests from log position ``since`` on, optionally only those of one action."""
        with self._lock:
            return [r for r in self._entries[since:] if action is None or r.action == action]
