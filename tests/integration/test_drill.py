"""Drills against the simulated region: timelines, probes, refusals, failures mid-way,
and the whole simulated story."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from eipha.sim import serving
from tests.integration.conftest import Lab

SWITCH_GAP = 0.3  # the probe server fails this long after the EIP changes place


@pytest.fixture
def probe_server(lab: Lab) -> Iterator[str]:
    """An HTTP server whose answer depends on where web-a points: 200 while it stays put,
    503 for SWITCH_GAP seconds after it moved (like traffic while a remap propagates)."""
    state = {"where": None, "since": 0.0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            where = lab.where("web-a").get("PrivateIpAddress")
            now = time.monotonic()
            with lock:
                if where != state["where"]:
                    state.update(where=where, since=now)
                switching = now - float(state["since"]) < SWITCH_GAP  # type: ignore[arg-type]
            status = 503 if switching or where is None else 200
            body = f"{where}\n".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = serving.serve_in_thread(server, "drill-web")
    with lock:
        state.update(where=lab.where("web-a").get("PrivateIpAddress"), since=0.0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        serving.shut_down(server, thread)


def drill_json(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    result = lab.run("lb-a", "drill", *args, "--json")
    assert "Traceback" not in result.err
    return result.code, json.loads(result.out)


def ordered(events: list[dict[str, Any]], phase: str) -> list[str]:
    return [e["event"] for e in events if e["phase"] == phase]


def test_drill_to_the_other_node_and_back(lab: Lab):
    lab.associate("web-a", "lb-a")
    code, report = drill_json(lab, "web-a", "--to", "lb-b", "--back")
    assert code == 0, report
    assert report["ok"] is True
    times = [e["t"] for e in report["timeline"]]
    assert times == sorted(times)
    for phase in ("move", "back"):
        assert ordered(report["timeline"], phase) == [
            "AssociateAddress sent",
            "AssociateAddress returned",
            "association visible in DescribeAddresses",
        ]
    move, back = report["legs"]
    assert move["to"].startswith("lb-b ")
    assert move["to"].endswith(" 10.0.0.22")
    assert back["to"].startswith("lb-a ")
    assert back["to"].endswith(" 10.0.0.11")
    assert 0 <= move["api_seconds"] <= move["visible_seconds"]
    assert report["where"].endswith("10.0.0.11")
    assert lab.where("web-a")["PrivateIpAddress"] == "10.0.0.11"
    # the same code path as start: one AssociateAddress per leg
    assert lab.region.count("AssociateAddress") == 1 + 2


def test_text_timeline_names_every_moment(lab: Lab):
    lab.associate("web-b", "lb-b")
    result = lab.run("lb-a", "drill", "web-b", "--to", "lb-a")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("drill web-b")
    for words in ("AssociateAddress sent", "AssociateAddress returned", "visible"):
        assert any(words in line for line in lines), result.out
    assert "web-b is now on lb-a" in lines[-1]
    assert lab.where("web-b")["PrivateIpAddress"] == "10.0.0.12"


def test_probe_sees_the_gap_and_the_recovery(lab: Lab, probe_server: str):
    lab.associate("web-a", "lb-a")
    code, report = drill_json(lab, "web-a", "--to", "lb-b", "--back", "--probe", probe_server)
    assert code == 0, report
    for leg in report["legs"]:
        probe = leg["probe"]
        sent = next(
            e["t"]
            for e in report["timeline"]
            if e["phase"] == leg["phase"] and e["event"] == "AssociateAddress sent"
        )
        assert probe["last_success_before"] < sent <= probe["first_failure"]
        assert probe["first_failure"] < probe["first_success_after"]
        assert leg["probe_gap_seconds"] == pytest.approx(
            probe["first_success_after"] - probe["first_failure"], abs=0.002
        )
        assert leg["probe_gap_seconds"] >= SWITCH_GAP * 0.5


def test_target_without_a_free_binding_ip_is_refused(lab: Lab):
    # a third EIP whose home is lb-b needs lb-a's second secondary IP, which does not exist
    eip = lab.client.allocate_address(Domain="vpc")["AllocationId"]
    eips: dict[str, dict[str, Any]] = {
        e.name: {"allocation_id": e.allocation_id, "home": e.home} for e in lab.world.eips.values()
    }
    eips["web-c"] = {"allocation_id": eip, "home": "lb-b", "private_ips": {"lb-b": "10.0.0.22"}}
    config = lab.config("lb-a", eips=eips)
    result = lab.run("lb-a", "drill", "web-c", "--to", "lb-a", config=config)
    assert result.code == 6
    assert "lb-a has no free binding IP for web-c" in result.err
    assert lab.region.count("AssociateAddress") == 0


def test_binding_ip_that_carries_another_eip_is_refused(lab: Lab):
    other = lab.client.allocate_address(Domain="vpc")["AllocationId"]
    lab.client.associate_address(
        AllocationId=other,
        AllowReassociation=True,
        NetworkInterfaceId=lab.world.nodes["lb-a"].eni_id,
        PrivateIpAddress="10.0.0.12",
    )
    lab.associate("web-b", "lb-b")
    result = lab.run("lb-a", "drill", "web-b", "--to", "lb-a")
    assert result.code == 6
    assert "already carries" in result.err
    assert other in result.err
    assert lab.where("web-b")["PrivateIpAddress"] == "10.0.0.21"


def test_a_drill_that_fails_mid_way_says_where_the_eip_is(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.region.inject("AssociateAddress", "InternalError", times=None, skip=1)
    code, report = drill_json(lab, "web-a", "--to", "lb-b", "--back", "--timeout", "3")
    assert code == 1
    assert report["ok"] is False
    assert "InternalError" in report["error"]
    # the move happened, the way back failed: the EIP is on lb-b, associated, and said so
    assert report["where"].startswith("lb-b ")
    assert report["where"].endswith("10.0.0.22")
    assert lab.where("web-a")["PrivateIpAddress"] == "10.0.0.22"


def test_a_drill_whose_first_move_fails_leaves_the_eip_where_it_was(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.region.inject("AssociateAddress", "UnauthorizedOperation")
    result = lab.run("lb-a", "drill", "web-a", "--to", "lb-b")
    assert result.code == 4
    assert "web-a is now on lb-a" in result.out
    assert "UnauthorizedOperation" in result.out
    assert lab.where("web-a")["PrivateIpAddress"] == "10.0.0.11"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["web-a", "--to", "lb-z"], 6, "not one of the nodes"),
        (["web-z", "--to", "lb-b"], 6, "unknown EIP"),
        (["web-a"], 2, "needs an EIP and --to"),
        (["web-a", "--to", "lb-b", "--probe", "ftp://x/"], 2, "not an http"),
        (["--simulate", "web-a"], 2, "--simulate takes no EIP"),
    ],
)
def test_drill_usage_errors(lab: Lab, args, code, words):
    result = lab.run("lb-a", "drill", *args)
    assert result.code == code
    assert words in result.err
    assert result.calls in ([], ["DescribeNetworkInterfaces"])


def test_drill_to_where_it_already_is(lab: Lab):
    lab.associate("web-a", "lb-b", "10.0.0.22")
    result = lab.run("lb-a", "drill", "web-a", "--to", "lb-b")
    assert result.code == 2
    assert "already on lb-b" in result.err


def test_simulate_plays_the_whole_story():
    proc = subprocess.run(
        [sys.executable, "-m", "eipha", "drill", "--simulate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every step verified" in proc.stdout
    for words in (
        "lb-b fails",
        "web-b is on lb-a 10.0.0.12",
        "web-b goes home",
        "web-b is on lb-b 10.0.0.21",
        "dropped no request",
    ):
        assert words in proc.stdout


def test_simulate_json_reports_every_step():
    proc = subprocess.run(
        [sys.executable, "-m", "eipha", "drill", "--simulate", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert len(report["steps"]) == 10  # act one (a cluster manager), act two (monitors)
    assert all(step["ok"] for step in report["steps"])
