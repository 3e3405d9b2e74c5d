"""``eipha drill --simulate``: the whole failover story in a simulated region on loopback.

No AWS account, no root, no network beyond 127.0.0.1. In this process: a simulated EC2 region
(moto with eipha's private-IP extension), the two-node world of the README's picture, one
IMDSv2 double per node, one tiny web server per node standing in for HAProxy, and a "router"
that plays the internet: a request for an EIP goes to whichever node EC2 says holds it. Each
node runs eipha's own start/status code (the code behind the CLI) against its own metadata.
The story:

    both healthy -> lb-b fails -> lb-a takes web-b onto its secondary IP
    -> lb-b returns -> web-b goes home

Every step is verified (EC2's state, each node's status, what a client sees); the exit code
is 0 only if all of them held.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from eipha import actions, errors
from eipha.clock import Deadline
from eipha.config import Config, EipSpec, NodeSpec
from eipha.drill_probe import Gap, Prober, gap
from eipha.sim import serving
from eipha.sim.imds_double import ImdsDouble, node_metadata
from eipha.sim.region import SimNode, SimulatedRegion, World, build_pair, ec2_client
from eipha.wiring import Runtime

NODE_TIMEOUT = 10.0
# act two: both monitors on loopback addresses of their own, one port
MONITOR_ADDRESS = {"lb-a": "127.0.0.11", "lb-b": "127.0.0.21"}
MONITOR_TIMES = {"interval": 0.5, "dead_after": 2.0, "init_dead": 2.0, "min_hold": 2.0}

SIM_ENV = {
    "AWS_ACCESS_KEY_ID": "simulated",
    "AWS_SECRET_ACCESS_KEY": "simulated",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
}
SIM_UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


class StepFailed(Exception):
    """A step of the story did not verify."""


@contextlib.contextmanager
def simulated_environment(endpoint: str, run_dir: str) -> Iterator[None]:
    """Fake credentials and the simulated endpoint for this process, restored afterwards."""
    saved = dict(os.environ)
    try:
        for key in SIM_UNSET:
            os.environ.pop(key, None)
        os.environ.update(SIM_ENV, AWS_ENDPOINT_URL_EC2=endpoint, EIPHA_RUN_DIR=run_dir)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- the stand-ins: a web server per node, and a router for EIP traffic ------------------------


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    server = serving.HTTPServer(("127.0.0.1", port), handler)
    serving.serve_in_thread(server, "eipha-sim-http")
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    serving.shut_down(server)


def web_server(name: str) -> ThreadingHTTPServer:
    """What HAProxy would be on the node: answers 'served by NAME'."""

    class Handler(_Quiet):
        def do_GET(self) -> None:
            body = f"served by {name}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return serve(Handler)


class Router:
    """Plays the internet: ``GET /<eip>`` goes to the node EC2 says holds that EIP."""

    def __init__(self, lab: Lab, port: int = 0) -> None:
        """``port`` 0: an ephemeral one (``eipha sandbox`` gives a fixed one)."""
        self.lab = lab
        self.client = ec2_client(lab.region)
        router = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                status, body = router.forward(self.path.strip("/"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = serve(Handler, port)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def forward(self, eip: str) -> tuple[int, bytes]:
        spec = self.lab.world.eips.get(eip)
        if spec is None:
            return 404, b"no such EIP\n"
        [address] = self.client.describe_addresses(AllocationIds=[spec.allocation_id])["Addresses"]
        node = next(
            (
                n
                for n in self.lab.world.nodes.values()
                if n.eni_id == address.get("NetworkInterfaceId")
            ),
            None,
        )
        port = self.lab.web_ports.get(node.name) if node else None
        if port is None:
            return 504, b"nothing answers at this address\n"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
            conn.request("GET", "/")
            answer = conn.getresponse()
            return answer.status, answer.read()
        except OSError:
            return 504, b"nothing answers at this address\n"


# -- the lab --------------------------------------------------------------------------------


@dataclass
class Lab:
    region: SimulatedRegion
    world: World
    imds: dict[str, ImdsDouble] = field(default_factory=dict)
    web: dict[str, ThreadingHTTPServer] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)
    monitors: dict[str, tuple[subprocess.Popen[bytes], Any]] = field(default_factory=dict)

    def config(self, node: str) -> Config:
        return Config(
            path=None,
            region=self.world.region,
            node_name=node,
            interface=None,
            timeout=NODE_TIMEOUT,
            nodes={
                n.name: NodeSpec(n.name, n.instance_id, n.primary_ip)
                for n in self.world.nodes.values()
            },
            eips={
                e.name: EipSpec(e.name, e.allocation_id, e.home, {})
                for e in self.world.eips.values()
            },
            monitor=None,
            keepalived_instances={},
        )

    def bring_up(self, node: SimNode) -> str:
        meta = node_metadata(
            node.instance_id,
            self.world.region,
            f"{self.world.region}a",
            [(node.mac, node.eni_id, 0, node.primary_ip, node.secondary_ips, node.subnet_cidr)],
        )
        self.imds[node.name] = ImdsDouble(meta).start()
        self.web[node.name] = web_server(node.name)
        self.web_ports[node.name] = self.web[node.name].server_address[1]
        return f"{node.name} is up"

    def take_down(self, name: str) -> str:
        self.web_ports.pop(name, None)
        stop_server(self.web.pop(name, None))
        double = self.imds.pop(name, None)
        if double is not None:
            double.stop()
        return f"{name} is down"

    def runtime(self, node: str) -> Runtime:
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds[node].endpoint}
        return Runtime(self.config(node), Deadline(NODE_TIMEOUT), env=env)

    def where(self, eip: str) -> tuple[str | None, str | None]:
        client = ec2_client(self.region)
        [address] = client.describe_addresses(AllocationIds=[self.world.eips[eip].allocation_id])[
            "Addresses"
        ]
        return self.world.placement(address)

    def close(self) -> None:
        for name in list(self.monitors):
            self.stop_monitor(name, signal.SIGKILL)
        for name in list(self.web) + list(self.imds):
            self.take_down(name)

    # -- act two: eipha's own peer monitor on each node -----------------------------------

    def start_monitor(self, name: str, run_dir: Path, port: int) -> str:
        """``eipha monitor`` for one node, as a real process with its own metadata."""
        node_dir = run_dir / name
        node_dir.mkdir(exist_ok=True)
        key = run_dir / "monitor.key"
        if not key.exists():
            key.write_bytes(os.urandom(32))
            key.chmod(0o600)
        config = {
            "region": self.world.region,
            "node_name": name,
            "timeout": NODE_TIMEOUT,
            "nodes": {
                n.name: {"instance_id": n.instance_id, "address": MONITOR_ADDRESS[n.name]}
                for n in self.world.nodes.values()
            },
            "eips": {
                e.name: {"allocation_id": e.allocation_id, "home": e.home}
                for e in self.world.eips.values()
            },
            "monitor": {
                "port": port,
                "key_file": str(key),
                **MONITOR_TIMES,
                "quorum": [f"127.0.0.1:{self.region.port}"],
                "health_check": {
                    "url": f"http://127.0.0.1:{self.web_ports[name]}/",
                    "interval": 0.5,
                    "fall": 1,
                    "rise": 1,
                },
            },
        }
        (node_dir / "eipha.yaml").write_text(json.dumps(config))
        env = {
            **os.environ,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds[name].endpoint,
            "EIPHA_CONFIG": str(node_dir / "eipha.yaml"),
            "EIPHA_RUN_DIR": str(node_dir),
        }
        log = open(node_dir / "monitor.log", "ab")  # noqa: SIM115 - closed in stop_monitor
        proc = subprocess.Popen(
            [sys.executable, "-m", "eipha", "monitor"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        self.monitors[name] = (proc, log)
        return f"{name}: eipha monitor started (pid {proc.pid})"

    def stop_monitor(self, name: str, sig: int = signal.SIGTERM) -> str:
        proc, log = self.monitors.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        return f"{name}: eipha monitor stopped ({signal.Signals(sig).name})"


# -- the story ------------------------------------------------------------------------------


class Story:
    def __init__(self, lab: Lab, router: Router, out: Callable[[str], None]) -> None:
        self.lab = lab
        self.router = router
        self.out = out
        self.t0 = time.monotonic()
        self.steps: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        self.out(f"{time.monotonic() - self.t0:+7.2f} s  {text}")

    def step(self, title: str, checks: list[Callable[[], str]]) -> None:
        """Run and print each check of a step as it happens; any failure ends the story."""
        self.out("")
        self.say(title)
        began = time.monotonic()
        notes = []
        try:
            for check in checks:
                notes.append(check())
                self.say(f"  {notes[-1]}")
        except (StepFailed, errors.EiphaError) as exc:
            self.steps.append({"step": title, "ok": False, "notes": notes, "error": str(exc)})
            self.say(f"  FAILED: {exc}")
            raise StepFailed(title) from exc
        seconds = round(time.monotonic() - began, 3)
        self.steps.append({"step": title, "ok": True, "seconds": seconds, "notes": notes})

    def start(self, node: str, eip: str) -> str:
        rt = self.lab.runtime(node)
        marks: dict[str, float] = {}

        def mark(name: str, _target: object) -> None:
            marks.setdefault(name, time.monotonic())

        [outcome] = actions.bounded(rt, "start", lambda: actions.start(rt, [eip], events=mark))
        if outcome.error is not None:
            raise StepFailed(f"{node}: eipha start {eip} failed: {outcome.error}")
        if "associate-sent" not in marks:
            return f"{node}: eipha start {eip} -> already there, no AssociateAddress"
        api = marks["associate-returned"] - marks["associate-sent"]
        visible = marks["visible"] - marks["associate-sent"]
        return (
            f"{node}: eipha start {eip} -> one AssociateAddress ({api * 1000:.0f} ms), "
            f"visible after {visible * 1000:.0f} ms"
        )

    def sees(self, node: str, expect: dict[str, bool]) -> str:
        rt = self.lab.runtime(node)
        names = sorted(expect)
        answers = actions.bounded(rt, "status", lambda: actions.status(rt, names))
        seen = {t.label: running for t, running, _ in answers}
        words = ", ".join(f"{n} {'running' if seen[n] else 'not running'}" for n in names)
        if seen != expect:
            raise StepFailed(f"{node} sees {words}; expected {expect}")
        return f"{node} sees: {words}"

    def on(self, eip: str, node: str, ip: str) -> str:
        where = self.lab.where(eip)
        if where != (node, ip):
            raise StepFailed(f"EC2 has {eip} on {where}, expected {node} {ip}")
        return f"EC2: {eip} is on {node} {ip}"

    def client_sees(self, eip: str, node: str | None) -> str:
        status, body = self.router.forward(eip)
        text = body.decode().strip()
        if (node is None) != (status != 200) or (node and text != f"served by {node}"):
            raise StepFailed(f"a client of {eip} got {status} {text!r}")
        return f"a client of {eip} gets: {status} {text}"


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


def play(json_output: bool = False) -> int:
    """Run the story; 0 only if every step verified."""
    logging.getLogger("eipha").setLevel(logging.WARNING)
    lines: list[str] = []
    out: Callable[[str], None] = lines.append if json_output else click.echo
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="eipha-sim-") as run_dir,
        SimulatedRegion() as region,
        simulated_environment(region.endpoint, str(Path(run_dir))),
    ):
        out(f"simulated region {region.region} at {region.endpoint} (moto, loopback only)")
        lab = Lab(region, build_pair(region))
        router = None
        try:
            for node in lab.world.nodes.values():
                lab.bring_up(node)
                out(
                    f"  {node.name}: {node.instance_id}, {node.eni_id}, primary "
                    f"{node.primary_ip}, secondary {', '.join(node.secondary_ips)}"
                )
            for eip in lab.world.eips.values():
                out(f"  {eip.name}: {eip.allocation_id} ({eip.public_ip}), home {eip.home}")
            router = Router(lab)
            story = Story(lab, router, out)
            ok = True
            try:
                tell(story)
                tell_monitors(story, Path(run_dir))
            except StepFailed:
                ok = False
        finally:
            if router is not None:
                stop_server(router.server)
            lab.close()
    total = time.monotonic() - began
    verdict = "every step verified" if ok else "a step FAILED"
    if json_output:
        click.echo(
            json.dumps({"ok": ok, "seconds": round(total, 2), "steps": story.steps}, indent=2)
        )
    else:
        click.echo(f"\n{verdict} ({total:.1f} s); the simulated region is gone")
    return 0 if ok else 1
