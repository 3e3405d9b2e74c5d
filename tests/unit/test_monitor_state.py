"""The monitor's peer book and its status document."""

from __future__ import annotations

import os
import time
from pathlib import Path

from eipha.monitor import state
from eipha.monitor.peers import PeerBook
from eipha.monitor.protocol import Heartbeat


def hb(healthy: bool = True, leaving: bool = False, holding: tuple[str, ...] = ()) -> Heartbeat:
    return Heartbeat("lb-b", "boot", 1, 0.0, healthy, holding, leaving)


def since(book: PeerBook) -> float | None:
    return book.views["lb-b"].healthy_since


def test_healthy_since_survives_heartbeats_and_resets_on_trouble():
    book = PeerBook.of(["lb-b"], dead_after=5.0)
    assert book.heard(hb(), 10.0) is True  # never seen -> healthy: a change
    assert book.heard(hb(), 11.0) is False
    assert since(book) == 10.0
    book.heard(hb(healthy=False), 12.0)
    assert since(book) is None
    book.heard(hb(), 13.0)
    assert since(book) == 13.0
    book.expire(18.5)  # silent for dead_after
    assert since(book) is None
    assert book.verdict("lb-b", 18.5).startswith("dead")
    book.heard(hb(leaving=True), 19.0)
    assert book.verdict("lb-b", 19.0) == "leaving"


def test_unknown_senders_change_nothing():
    book = PeerBook.of(["lb-b"], dead_after=5.0)
    assert book.heard(Heartbeat("lb-z", "b", 1, 0.0, True, (), False), 1.0) is False
    assert book.verdict("lb-b", 1.0) == "never heard from"


SNAPSHOT = {
    "node": "lb-a",
    "pid": os.getpid(),
    "updated": 0.0,
    "uptime": 12.0,
    "healthy": True,
    "health": "exit 0",
    "quorum": False,
    "quorum_detail": "no answer from 10.0.0.1",
    "holding": ["web-a"],
    "peers": {
        "lb-b": {
            "address": "10.0.0.21",
            "last_heard": 0.4,
            "verdict": "healthy",
            "holding": ["web-b"],
        }
    },
    "eips": {"web-a": {"home": "lb-a", "where": "eni-a 10.0.0.11", "claimed_here": True}},
    "decision": ["web-a: my home EIP, I am healthy; holding it"],
    "counters": {
        "sent": 1,
        "received": 2,
        "takeovers": 0,
        "failbacks": 0,
        "api_errors": 0,
        "api_calls": 1,
        "rejected": {"tag": 3},
    },
}


def test_state_file_round_trip_is_owner_only_and_goes_stale(tmp_path: Path):
    path = tmp_path / "run" / "monitor.json"
    state.write({**SNAPSHOT, "updated": time.time()}, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert state.read(path)["node"] == "lb-a"  # type: ignore[index]
    state.write({**SNAPSHOT, "updated": 0.0}, path)  # an old file: the daemon is gone
    assert state.read(path) is None
    state.remove(path)
    assert state.read(path) is None


def test_status_text_says_what_an_operator_needs():
    text = state.render(SNAPSHOT)
    assert "quorum LOST (no answer from 10.0.0.1)" in text
    assert "lb-b (10.0.0.21): healthy; last heartbeat 0.4 s ago; claims web-b" in text
    assert "web-a (home lb-a): claimed here; EC2 has it on eni-a 10.0.0.11" in text
    assert "rejected 3" in text
