"""Real failovers: Heartbeat 3.0.6 and keepalived 2.x from Debian, running in the lab's node
namespaces, calling eipha through the shipped shims; EC2 is the simulated region."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.system.lab import Lab
from tests.system.managers import (
    Watch,
    install_heartbeat,
    install_keepalived,
    start_heartbeat,
    start_keepalived,
    stop_heartbeat,
)

HOME_A, HOME_B = ("lb-a", "10.0.0.11"), ("lb-b", "10.0.0.21")
B_ON_A, A_ON_B = ("lb-a", "10.0.0.12"), ("lb-b", "10.0.0.22")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab.build() as built:
        yield built
        assert built.reboots() == [], "a node tried to reboot the machine"


@pytest.fixture
def heartbeat(lab: Lab) -> Lab:
    install_heartbeat(lab)
    for node in lab.nodes.values():
        start_heartbeat(node)
    lab.wait_where("web-a", HOME_A, 40)
    lab.wait_where("web-b", HOME_B, 40)
    return lab


def test_heartbeat_takeover_and_failback(heartbeat: Lab):
    lab = heartbeat
    with Watch(lab) as watch:
        lab.nodes["lb-b"].kill("heartbeat")
        lab.wait_where("web-b", B_ON_A, 30)
        assert lab.where("web-a") == HOME_A
        start_heartbeat(lab.nodes["lb-b"])
        lab.wait_where("web-b", HOME_B, 60)
        assert lab.where("web-a") == HOME_A
    assert watch.both_unassociated() == []
    # what Heartbeat itself saw: a status that said "not running", then a start
    log = (lab.nodes["lb-a"].dir / "log" / "ha-log").read_text()
    assert "Running /etc/ha.d//resource.d/eipha web-b start" in log


def test_heartbeat_graceful_stop_hands_over(heartbeat: Lab):
    lab = heartbeat
    with Watch(lab) as watch:
        stop_heartbeat(lab.nodes["lb-a"])
        lab.wait_where("web-a", A_ON_B, 30)
        assert lab.where("web-b") == HOME_B
    assert watch.both_unassociated() == []


@pytest.fixture(params=["notify", "fifo"])
def keepalived(lab: Lab, request: pytest.FixtureRequest) -> Lab:
    """keepalived calling eipha-notify for each transition, or (``fifo``) starting it once
    as the reader of its notify FIFO."""
    if request.param == "fifo":
        install_keepalived(lab, fifo=True, notify=None)
    else:
        install_keepalived(lab)
    for node in lab.nodes.values():
        start_keepalived(node)
    lab.wait_where("web-a", HOME_A, 30)
    lab.wait_where("web-b", HOME_B, 30)
    return lab


def test_keepalived_takeover_and_failback(keepalived: Lab):
    lab = keepalived
    with Watch(lab) as watch:
        lab.nodes["lb-b"].kill("keepalived")
        lab.wait_where("web-b", B_ON_A, 30)
        assert lab.where("web-a") == HOME_A
        start_keepalived(lab.nodes["lb-b"])
        lab.wait_where("web-b", HOME_B, 30)
    assert watch.both_unassociated() == []


def test_keepalived_flapping_ends_on_the_real_master(keepalived: Lab):
    lab = keepalived
    b = lab.nodes["lb-b"]
    for _ in range(3):
        b.kill("keepalived")
        time.sleep(1.5)
        start_keepalived(b)
        time.sleep(1.0)
    lab.wait_where("web-b", HOME_B, 30)
    lab.wait_where("web-a", HOME_A, 5)


def test_keepalived_frozen_master_reclaims_its_eip(keepalived: Lab):
    """A master frozen longer than the dead interval comes back still thinking it is master;
    only MASTER_RX_LOWER_PRI (notify_master_rx_lower_pri) makes it re-assert its EIP."""
    lab = keepalived
    b = lab.nodes["lb-b"]
    b.kill("keepalived", signal.SIGSTOP)
    try:
        lab.wait_where("web-b", B_ON_A, 30)
    finally:
        b.kill("keepalived", signal.SIGCONT)
    lab.wait_where("web-b", HOME_B, 30)
