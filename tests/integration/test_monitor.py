"""`eipha monitor` as two real processes on loopback (127.0.0.11 and 127.0.0.21), against the
simulated region and one IMDSv2 double each: status, metrics, reload, hostile datagrams, the
key file rules, and the idle API budget. The failure scenarios with real network faults are
in tests/system/test_monitor.py."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Lab, free_port, monitor_status

ADDRESS = {"lb-a": "127.0.0.11", "lb-b": "127.0.0.21"}
HOME = {"web-a": ("lb-a", "10.0.0.11"), "web-b": ("lb-b", "10.0.0.21")}


class Monitors:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.key = lab.tmp / "monitor.key"
        self.key.write_bytes(os.urandom(32))
        self.key.chmod(0o600)

    def config(self, node: str, **monitor: Any) -> Path:
        path = self.lab.config(
            node,
            nodes={
                n.name: {"instance_id": n.instance_id, "address": ADDRESS[n.name]}
                for n in self.lab.world.nodes.values()
            },
            monitor={
                "port": self.port,
                "key_file": str(self.key),
                "interval": 0.5,
                "dead_after": 2.0,
                "init_dead": 2.0,
                "min_hold": 2.0,
                "quorum": [f"127.0.0.1:{self.lab.region.port}"],
                **monitor,
            },
        )
        return path

    def run_dir(self, node: str) -> Path:
        path = self.lab.tmp / f"run-{node}"
        path.mkdir(exist_ok=True)
        return path

    def env(self, node: str, config: Path) -> dict[str, str]:
        env = self.lab.env(node, config)
        env["EIPHA_RUN_DIR"] = str(self.run_dir(node))
        return env

    def start(self, node: str, umask: int = -1, **monitor: Any) -> subprocess.Popen[bytes]:
        config = self.config(node, **monitor)
        log = open(self.lab.tmp / f"monitor-{node}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "eipha", "-v", "monitor"],
            env=self.env(node, config),
            stdout=log,
            stderr=log,
            umask=umask,
        )
        log.close()
        self.procs[node] = proc
        return proc

    def log(self, node: str) -> str:
        return (self.lab.tmp / f"monitor-{node}.log").read_text()

    def status(self, node: str) -> dict[str, Any]:
        return monitor_status(self.env(node, self.config(node)))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def monitors(lab: Lab) -> Iterator[Monitors]:
    m = Monitors(lab)
    try:
        yield m
    finally:
        m.stop()
        for node in m.procs:
            assert "Traceback" not in m.log(node), m.log(node)


def wait_at(lab: Lab, eip: str, where: tuple[str, str], timeout: float) -> None:
    end = time.monotonic() + timeout
    while lab.placement(eip) != where:
        assert time.monotonic() < end, f"{eip} is on {lab.placement(eip)}, not {where}"
        time.sleep(0.1)


def both_up(lab: Lab, monitors: Monitors, **monitor: Any) -> None:
    for node in ("lb-a", "lb-b"):
        monitors.start(node, **monitor)
    for eip, where in HOME.items():
        wait_at(lab, eip, where, 15)


def test_status_shows_peers_claims_and_where_each_eip_is(lab: Lab, monitors: Monitors):
    both_up(lab, monitors)
    time.sleep(1.0)
    s = monitors.status("lb-a")
    assert s["node"] == "lb-a"
    assert s["holding"] == ["web-a"]
    assert s["peers"]["lb-b"]["verdict"] == "healthy"
    assert s["peers"]["lb-b"]["holding"] == ["web-b"]
    assert s["quorum"] is True
    text = subprocess.run(
        [sys.executable, "-m", "eipha", "monitor", "--status"],
        env=monitors.env("lb-a", monitors.config("lb-a")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    assert "lb-b (127.0.0.21): healthy" in text
    monitors.procs["lb-b"].kill()
    wait_at(lab, "web-b", ("lb-a", "10.0.0.12"), 10)
    s = monitors.status("lb-a")
    assert s["peers"]["lb-b"]["verdict"].startswith("dead")
    assert s["holding"] == ["web-a", "web-b"]
    assert s["counters"]["takeovers"] == 1


def test_not_running_is_exit_3(lab: Lab, monitors: Monitors):
    result = subprocess.run(
        [sys.executable, "-m", "eipha", "monitor", "--status"],
        env=monitors.env("lb-a", monitors.config("lb-a")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "not running" in result.stderr


def test_idle_pair_makes_no_api_calls_between_reconciles(lab: Lab, monitors: Monitors):
    both_up(lab, monitors)
    time.sleep(2.0)  # the start-up reconcile is done
    mark = lab.region.mark()
    time.sleep(5.0)
    assert lab.region.actions(mark) == []  # one DescribeAddresses per 30 s and node at most


def test_hostile_datagrams_are_counted_and_survived(lab: Lab, monitors: Monitors):
    both_up(lab, monitors)
    junk = [
        b"",
        b"EIPHA1",
        b"EIPHA1" + b"\0" * 32 + b"{}",
        os.urandom(2000),
        b"not json",
        b"EIPHA1" + os.urandom(200),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for datagram in junk * 20:
            s.sendto(datagram, (ADDRESS["lb-a"], monitors.port))
    time.sleep(1.5)
    snapshot = monitors.status("lb-a")
    assert sum(snapshot["counters"]["rejected"].values()) >= len(junk) * 20 - 20  # "" may be lost
    assert snapshot["peers"]["lb-b"]["verdict"] == "healthy"
    assert monitors.procs["lb-a"].poll() is None
    assert lab.placement("web-b") == HOME["web-b"]
    # logging is rate-limited: one line per reason, not one per datagram
    warnings = [line for line in monitors.log("lb-a").splitlines() if "rejected" in line]
    assert 0 < len(warnings) <= 6


def test_sighup_refuses_an_invalid_config_and_keeps_running(lab: Lab, monitors: Monitors):
    both_up(lab, monitors)
    config = monitors.config("lb-a")
    config.write_text("eips: [this is not a config]\n")
    monitors.procs["lb-a"].send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert monitors.procs["lb-a"].poll() is None
    assert "reload refused" in monitors.log("lb-a")
    monitors.config("lb-a")  # valid again
    monitors.procs["lb-a"].send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert "reloaded" in monitors.log("lb-a")
    assert monitors.status("lb-a")["peers"]["lb-b"]["verdict"] == "healthy"


@pytest.mark.parametrize(
    ("mode", "content", "words"),
    [
        (0o644, os.urandom(32), "chmod 600"),
        (0o600, b"short", "head -c 32 /dev/urandom"),
    ],
)
def test_key_file_rules(lab: Lab, monitors: Monitors, mode: int, content: bytes, words: str):
    monitors.key.write_bytes(content)
    monitors.key.chmod(mode)
    proc = monitors.start("lb-a")
    assert proc.wait(timeout=30) in (4, 6)
    log = monitors.log("lb-a")
    assert words in log
    assert content.hex() not in log


def test_metrics_endpoint_and_textfile(lab: Lab, monitors: Monitors):
    port = free_port()
    textfile = lab.tmp / "eipha.prom"
    monitors.start("lb-a", metrics={"listen": f"127.0.0.1:{port}", "textfile": str(textfile)})
    monitors.start("lb-b")
    for eip, where in HOME.items():
        wait_at(lab, eip, where, 15)
    time.sleep(1.5)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        body = answer.read().decode()
    assert "eipha_monitor_heartbeats_received_total" in body
    assert 'eipha_monitor_claimed{eip="web-a"} 1.0' in body
    assert "eipha_monitor_quorum 1.0" in body
    assert "eipha_monitor_heartbeats_sent_total" in textfile.read_text()


def test_metrics_textfile_is_never_group_writable_and_a_bad_one_is_a_warning(
    lab: Lab, monitors: Monitors
):
    good, bad = lab.tmp / "eipha.prom", lab.tmp / "missing" / "eipha.prom"
    monitors.start("lb-a", umask=0, metrics={"textfile": str(good)})
    monitors.start("lb-b", metrics={"textfile": str(bad)})
    for eip, where in HOME.items():
        wait_at(lab, eip, where, 15)
    end = time.monotonic() + 10
    while not good.exists() and time.monotonic() < end:
        time.sleep(0.1)
    # started with umask 0, still no write bit for group or others (node_exporter reads it)
    assert stat.S_IMODE(good.stat().st_mode) == 0o644
    assert stat.S_IMODE((lab.tmp / "run-lb-a" / "monitor.json").stat().st_mode) & 0o077 == 0
    # lb-b cannot write its textfile: one warning naming it, and it goes on (takes nothing,
    # keeps its EIP) — the metrics are a view, never a reason to stop
    time.sleep(1.5)
    warnings = [line for line in monitors.log("lb-b").splitlines() if str(bad) in line]
    assert warnings == [f"eipha: warning: cannot write metrics to {bad}: No such file or directory"]
    assert monitors.procs["lb-b"].poll() is None
    assert lab.placement("web-b") == HOME["web-b"]


@pytest.mark.parametrize("option", ["SO_REUSEADDR", "SO_REUSEPORT as another user"])
def test_no_one_else_can_share_the_heartbeat_port(lab: Lab, monitors: Monitors, option: str):
    """Sharing the port would let a local user take the peers' heartbeats (and so cause a
    takeover): SO_REUSEADDR never may, SO_REUSEPORT only as the monitor's own user."""
    if "another user" in option and os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    monitors.start("lb-a")
    monitors.start("lb-b")
    for eip, where in HOME.items():
        wait_at(lab, eip, where, 15)
    name = option.split()[0]
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.setsockopt(socket.SOL_SOCKET, socket.{name}, 1)\n"
        "try:\n"
        f"    s.bind(({ADDRESS['lb-a']!r}, {monitors.port}))\n"
        "except OSError as exc:\n"
        "    sys.exit(exc.strerror)\n"
    )
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    cmd = [*(user if "another user" in option else []), sys.executable, "-c", code]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1, result
    assert "Address already in use" in result.stderr
    assert monitors.procs["lb-a"].poll() is None


def test_metrics_port_in_use_is_one_line(lab: Lab, monitors: Monitors):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = monitors.start("lb-a", metrics={"listen": f"127.0.0.1:{port}"})
        assert proc.wait(timeout=30) == 6
    log = monitors.log("lb-a")
    assert f"eipha: error: cannot serve metrics on 127.0.0.1:{port}" in log
    assert "Traceback" not in log
