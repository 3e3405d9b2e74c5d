"""The acts of the simulated story: act one with a cluster manager's ``eipha start`` calls,
act two with two ``eipha monitor`` processes deciding, and what clients saw in each."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from eipha.drill_probe import Gap, Prober, gap
from eipha.sim.ec2_client import ec2_client
from eipha.sim.story_lab import MONITOR_ADDRESS, MONITOR_TIMES
from eipha.sim.story_steps import StepFailed, Story


def tell(story: Story) -> None:
    lab, a, b = story.lab, "lb-a", "lb-b"
    prober = Prober(story.router.url + "web-b", interval=0.05, timeout=0.5).start()
    try:
        story.step(
            "lb-a and lb-b are up; each runs `eipha start` for its home EIP",
            [
                lambda: story.start(a, "web-a"),
                lambda: story.start(b, "web-b"),
                lambda: story.on("web-a", a, "10.0.0.11"),
                lambda: story.on("web-b", b, "10.0.0.21"),
                lambda: story.sees(a, {"web-a": True, "web-b": False}),
                lambda: story.sees(b, {"web-a": False, "web-b": True}),
                lambda: story.client_sees("web-a", a),
                lambda: story.client_sees("web-b", b),
            ],
        )
        failed_at = time.monotonic()
        story.step(
            "lb-b fails (its web server and metadata go away)",
            [lambda: lab.take_down(b), lambda: story.client_sees("web-b", None)],
        )
        story.step(
            "lb-a's cluster manager runs `eipha start web-b`",
            [
                lambda: story.start(a, "web-b"),
                lambda: story.on("web-b", a, "10.0.0.12"),
                lambda: story.on("web-a", a, "10.0.0.11"),
                lambda: story.sees(a, {"web-a": True, "web-b": True}),
                lambda: story.client_sees("web-b", a),
                lambda: story.client_sees("web-a", a),
            ],
        )
        prober.wait_for(lambda samples: gap(samples, failed_at).first_ok_after is not None, 3.0)
        takeover = gap(prober.samples, failed_at)
        story.step(
            "lb-b comes back",
            [
                lambda: lab.bring_up(lab.world.nodes[b]),
                lambda: story.sees(b, {"web-a": False, "web-b": False}),
            ],
        )
        failback_at = time.monotonic()
        story.step(
            "lb-b runs `eipha start web-b`: web-b goes home",
            [
                lambda: story.start(b, "web-b"),
                lambda: story.on("web-b", b, "10.0.0.21"),
                lambda: story.sees(a, {"web-a": True, "web-b": False}),
                lambda: story.sees(b, {"web-a": False, "web-b": True}),
                lambda: story.client_sees("web-b", b),
            ],
        )
        settle = time.monotonic() + 0.2  # a few more probes after the failback
        prober.wait_for(lambda samples: samples[-1].at > settle, 1.0)
    finally:
        prober.stop()
    failback = gap(prober.samples, failback_at)
    story.step(
        "what clients of web-b saw (probing every 50 ms)",
        [lambda: _takeover_view(takeover, failed_at), lambda: _failback_view(failback)],
    )


def _takeover_view(takeover: Gap, failed_at: float) -> str:
    if takeover.first_ok_after is None:
        raise StepFailed("clients of web-b never recovered after the takeover")
    outage = takeover.first_ok_after.at - failed_at
    return f"after lb-b failed, web-b answered again {outage:.2f} s later (served by lb-a)"


def _failback_view(failback: Gap) -> str:
    if failback.first_failure is not None:
        raise StepFailed(f"the failback dropped a request ({failback.first_failure.detail})")
    return "the failback to lb-b dropped no request: one AssociateAddress, no gap"


def free_port() -> int:
    """A UDP port free on both monitor addresses."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((MONITOR_ADDRESS["lb-a"], 0))
            port = int(first.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((MONITOR_ADDRESS["lb-b"], port))
                except OSError:
                    continue
                return port


def wait_on(
    story: Story, eip: str, node: str, ip: str, timeout: float, since: float, why: str
) -> str:
    """Wait until EC2 has ``eip`` on ``node`` ``ip``; say how long it took and why."""
    end = time.monotonic() + timeout
    while story.lab.where(eip) != (node, ip):
        if time.monotonic() > end:
            raise StepFailed(
                f"{eip} did not reach {node} {ip} within {timeout:g} s "
                f"(it is on {story.lab.where(eip)})"
            )
        time.sleep(0.05)
    return f"EC2: {eip} is on {node} {ip}, {time.monotonic() - since:.1f} s later: {why}"


def monitor_view(run_dir: Path, node: str) -> str:
    from eipha.monitor import state

    snapshot = state.read(run_dir / node / "monitor.json")
    if snapshot is None:
        raise StepFailed(f"{node}'s monitor wrote no status")
    peers = "; ".join(f"{name} {p['verdict']}" for name, p in snapshot["peers"].items())
    return (
        f"`eipha monitor --status` on {node}: peers {peers}; claims "
        f"{', '.join(snapshot['holding']) or 'nothing'}"
    )


def tell_monitors(story: Story, run_dir: Path) -> None:
    """Act two: no cluster manager, two `eipha monitor` processes decide."""
    lab, a, b = story.lab, "lb-a", "lb-b"
    dead_after, min_hold = MONITOR_TIMES["dead_after"], MONITOR_TIMES["min_hold"]
    client = ec2_client(lab.region)
    for address in client.describe_addresses()["Addresses"]:
        client.disassociate_address(AssociationId=address["AssociationId"])
    port = free_port()
    prober = Prober(story.router.url + "web-b", interval=0.05, timeout=0.5).start()
    try:
        began = time.monotonic()
        story.step(
            "act two: no cluster manager; both nodes run `eipha monitor` (EIPs unassociated)",
            [
                lambda: lab.start_monitor(a, run_dir, port),
                lambda: lab.start_monitor(b, run_dir, port),
                lambda: wait_on(
                    story, "web-a", a, "10.0.0.11", 15, began, "lb-a's monitor claimed its home EIP"
                ),
                lambda: wait_on(
                    story, "web-b", b, "10.0.0.21", 15, began, "lb-b's monitor claimed its home EIP"
                ),
                lambda: story.client_sees("web-b", b),
            ],
        )
        died = time.monotonic()
        story.step(
            f"lb-b dies: monitor killed (SIGKILL), web server and metadata gone; "
            f"dead_after is {dead_after:g} s",
            [
                lambda: lab.stop_monitor(b, signal.SIGKILL),
                lambda: lab.take_down(b),
                lambda: wait_on(
                    story,
                    "web-b",
                    a,
                    "10.0.0.12",
                    dead_after + 10,
                    died,
                    "lb-a's monitor heard nothing and took it over",
                ),
                lambda: story.client_sees("web-b", a),
                lambda: monitor_view(run_dir, a),
            ],
        )
        prober.wait_for(lambda samples: gap(samples, died).first_ok_after is not None, 3.0)
        takeover = gap(prober.samples, died)
        back = time.monotonic()
        story.step(
            f"lb-b comes back: metadata, web server, monitor; min_hold is {min_hold:g} s",
            [
                lambda: lab.bring_up(lab.world.nodes[b]),
                lambda: lab.start_monitor(b, run_dir, port),
                lambda: wait_on(
                    story,
                    "web-b",
                    b,
                    "10.0.0.21",
                    min_hold + 15,
                    back,
                    "lb-a let go after min_hold and lb-b's monitor took it home",
                ),
                lambda: story.client_sees("web-b", b),
            ],
        )
        settle = time.monotonic() + 0.2
        prober.wait_for(lambda samples: samples[-1].at > settle, 1.0)
    finally:
        prober.stop()
    failback = gap(prober.samples, back)
    story.step(
        "what clients of web-b saw in act two",
        [lambda: _takeover_view(takeover, died), lambda: _failback_view(failback)],
    )
