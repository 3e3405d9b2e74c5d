"""The EC2 gateway's client is made once, whichever threads ask for it; the real adapters
read only what a binding needs from IMDS."""

from __future__ import annotations

import threading
import time

import pytest

from eipha import ec2
from eipha.clock import Deadline


def test_the_prefetch_thread_and_the_caller_share_one_client(monkeypatch: pytest.MonkeyPatch):
    made: list[str] = []

    def make_client(region: str, deadline: Deadline | None = None) -> object:
        made.append(region)
        time.sleep(0.2)  # importing botocore: the caller asks while the thread is at it
        return object()

    monkeypatch.setattr(ec2, "make_client", make_client)
    gateway = ec2.Gateway("eu-west-1", Deadline(5.0))
    gateway.prefetch()
    time.sleep(0.05)
    clients = []
    askers = [threading.Thread(target=lambda: clients.append(gateway.client)) for _ in range(3)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(5)
    assert made == ["eu-west-1"]
    assert len(clients) == 3
    assert all(c is clients[0] for c in clients)
    assert gateway.client is clients[0]
    started = threading.active_count()
    gateway.prefetch()  # it has its client: no thread
    assert threading.active_count() == started
