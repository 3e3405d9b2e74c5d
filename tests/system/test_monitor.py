"""`eipha monitor` on both lab nodes: real UDP heartbeats over the lab bridge, real ICMP to
the quorum target, nftables in a node's namespace for partitions and packet loss."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.lab import EIPHA_BIN, Lab, Node, wait_for
from tests.system.managers import Watch

HOME_A, HOME_B = ("lb-a", "10.0.0.11"), ("lb-b", "10.0.0.21")
B_ON_A, A_ON_B = ("lb-a", "10.0.0.12"), ("lb-b", "10.0.0.22")
# lb-a loses lb-b and the quorum target (and the API with it); IMDS stays reachable
PARTITION = """\
table inet lab {
 chain out { type filter hook output priority 0; ip daddr { 10.0.0.2, 10.0.0.21 } drop; }
 chain in { type filter hook input priority 0; ip saddr { 10.0.0.2, 10.0.0.21 } drop; }
}
"""
# one heartbeat in ten lost, at random
LOSS = """\
table inet lab {
 chain in {
  type filter hook input priority 0;
  udp dport 7694 numgen random mod 10 == 0 drop
 }
}
"""
FAST = {"interval": 0.5, "dead_after": 2.0, "init_dead": 3.0, "min_hold": 3.0}


def configure(lab: Lab, **monitor: Any) -> None:
    for node in lab.nodes.values():
        key = node.dir / "monitor.key"
        key.write_bytes(b"k" * 8 + bytes(range(40)))
        key.chmod(0o600)
        config = json.loads((node.dir / "eipha.yaml").read_text())
        config["monitor"] = {
            "port": 7694,
            "key_file": str(key),
            "quorum": ["10.0.0.2"],
            "health_check": {
                "command": "test ! -e /run/unhealthy",
                "interval": 0.5,
                "fall": 1,
                "rise": 1,
            },
            "auto_failback": True,
            **FAST,
            **monitor,
        }
        (node.dir / "eipha.yaml").write_text(json.dumps(config))


def start(node: Node) -> None:
    node.netns.procs.append(
        subprocess.Popen(
            node.argv(
                [
                    "sh",
                    "-c",
                    f"set -a; . /etc/default/eipha; exec {EIPHA_BIN} -v monitor "
                    ">>/run/monitor.log 2>&1",
                ]
            ),
        )
    )
    wait_for(f"the monitor on {node.name}", lambda: bool(node.pids("eipha")), 10, 0.05)


def status(node: Node) -> dict[str, Any]:
    result = node.run(
        ["sh", "-c", f"set -a; . /etc/default/eipha; exec {EIPHA_BIN} monitor --status --json"]
    )
    assert result.returncode == 0, result.stderr
    snapshot: dict[str, Any] = json.loads(result.stdout)
    return snapshot


def nft(node: Node, rules: str) -> None:
    result = subprocess.run(
        node.argv(["nft", "-f", "/dev/stdin"]),
        input=rules,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab.build() as built:
        yield built
        for node in built.nodes.values():
            log = node.file("/run/monitor.log")
            if log.exists():
                assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        assert built.reboots() == []


def up(lab: Lab, **monitor: Any) -> Lab:
    configure(lab, **monitor)
    for node in lab.nodes.values():
        start(node)
    lab.wait_where("web-a", HOME_A, 20)
    lab.wait_where("web-b", HOME_B, 20)
    return lab


def test_sigkill_takeover_then_failback_after_min_hold(lab: Lab):
    up(lab)
    b = lab.nodes["lb-b"]
    killed = time.monotonic()
    b.kill("eipha")
    took = lab.wait_where("web-b", B_ON_A, 10)
    assert time.monotonic() - killed <= FAST["dead_after"] + 1.0, took
    assert lab.where("web-a") == HOME_A
    snapshot = status(lab.nodes["lb-a"])
    assert snapshot["peers"]["lb-b"]["verdict"].startswith("dead")
    assert "web-b" in snapshot["holding"]
    restarted = time.monotonic()
    start(b)
    lab.wait_where("web-b", HOME_B, 20)
    assert time.monotonic() - restarted >= FAST["min_hold"]


def test_sigterm_hands_over_within_a_second(lab: Lab):
    up(lab)
    a = lab.nodes["lb-a"]
    began = time.monotonic()
    a.kill("eipha", signal.SIGTERM)
    lab.wait_where("web-a", A_ON_B, 5)
    assert time.monotonic() - began <= 1.0


def test_a_short_sigstop_causes_no_takeover(lab: Lab):
    up(lab)
    b = lab.nodes["lb-b"]
    with Watch(lab) as watch:
        b.kill("eipha", signal.SIGSTOP)
        time.sleep(FAST["dead_after"] * 0.5)
        b.kill("eipha", signal.SIGCONT)
        time.sleep(FAST["dead_after"] * 1.5)
    assert {s[2] for s in watch.samples} == {HOME_B}


def test_failing_health_check_hands_the_eip_to_the_peer(lab: Lab):
    up(lab)
    a = lab.nodes["lb-a"]
    a.file("/run/unhealthy").write_text("")
    lab.wait_where("web-a", A_ON_B, 10)
    assert lab.where("web-b") == HOME_B
    a.file("/run/unhealthy").unlink()
    lab.wait_where("web-a", HOME_A, 20)


def test_partitioned_node_without_quorum_takes_nothing(lab: Lab):
    up(lab)
    a = lab.nodes["lb-a"]
    nft(a, PARTITION)
    lab.wait_where("web-a", A_ON_B, 15)  # lb-b, still reaching quorum, takes web-a
    time.sleep(FAST["dead_after"] + 1)
    snapshot = status(a)
    assert snapshot["quorum"] is False
    assert "web-b" not in snapshot["holding"]  # lb-a took nothing
    assert lab.where("web-b") == HOME_B


def test_ten_percent_heartbeat_loss_for_a_minute_causes_no_takeover(lab: Lab):
    up(lab, interval=1.0, dead_after=5.0, init_dead=6.0, min_hold=5.0)
    for node in lab.nodes.values():
        nft(node, LOSS)
    with Watch(lab) as watch:
        time.sleep(60)
    snapshot = status(lab.nodes["lb-a"])  # on failure, what lb-a decided and why
    assert {s[1] for s in watch.samples} == {HOME_A}, status(lab.nodes["lb-b"])
    assert {s[2] for s in watch.samples} == {HOME_B}, snapshot
    assert snapshot["counters"]["takeovers"] == 0
    assert snapshot["counters"]["received"] < 2 * 60 * 1.0  # some really were lost
