"""The runtime's EC2 client is made once per runtime, whichever threads ask for it."""

from __future__ import annotations

import threading
import time

import pytest

from eipha import ec2, wiring
from eipha.clock import Deadline
from eipha.config import parse_text

CONFIG = """
node_name: lb-a
region: eu-west-1
eips:
  web-a: {allocation_id: eipalloc-0000000a, home: lb-a}
"""


def test_the_prefetch_thread_and_the_caller_share_one_client(monkeypatch: pytest.MonkeyPatch):
    made: list[str] = []

    def make_client(region: str, deadline: Deadline | None = None) -> object:
        made.append(region)
        time.sleep(0.2)  # importing botocore: the caller asks while the thread is at it
        return object()

    monkeypatch.setattr(ec2, "make_client", make_client)
    rt = wiring.Runtime(parse_text(CONFIG, "eipha.yaml"), Deadline(5.0))
    rt.prefetch_client()
    time.sleep(0.05)
    clients = []
    askers = [threading.Thread(target=lambda: clients.append(rt.client)) for _ in range(3)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(5)
    assert made == ["eu-west-1"]
    assert len(clients) == 3
    assert all(c is clients[0] for c in clients)
    assert rt.client is clients[0]
