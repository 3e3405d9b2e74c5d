"""``eipha sandbox``: a simulated pair to try every eipha command on by hand, no AWS account.

In this process, on 127.0.0.1 only, until it is told to stop: the simulated EC2 region (moto
with eipha's private-IP extension, as ``eipha drill --simulate`` uses), the two-node world of
the drill (lb-a and lb-b, EIPs web-a and web-b, each on its home node's primary IP), one
IMDSv2 double per node, a web server per node standing in for HAProxy, and a "router" that
plays the internet (``GET /web-a`` reaches whichever node EC2 says holds web-a).

It writes a config file and a run directory per node, and a state file, into one owner-only
directory; ``eipha sandbox --env NODE`` reads the state file and prints the ``export`` lines
that make a shell that node. Each node signs its requests with a fake access key of its own,
so the sandbox's log of EC2 requests can say which node made each one. When it stops
(SIGINT, SIGTERM, SIGHUP, or ``--for`` elapsed) it stops every server and removes what it
wrote.

The ports are fixed (``DEFAULT_PORT`` and the three after it, or from ``--port``) so the lines
to paste stay the same from one run to the next, and so a second sandbox finds them taken
and says so instead of starting a world nobody's shell points at.

Here: running it (:func:`serve`). Beside it: where its files and ports are
(:mod:`eipha.sim.sandbox_layout`), a node's shell (:mod:`eipha.sim.sandbox_shell`), its
directory (:mod:`eipha.sim.sandbox_files`), its ports (:mod:`eipha.sim.sandbox_ports`) and its
live log of EC2 requests (:mod:`eipha.sim.sandbox_log`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from eipha.sim.sandbox_files import (
    claimed,
    only_sandbox_files,
    own_dir,
    read_state,
    remove_files,
    write_private,
)
from eipha.sim.sandbox_layout import (
    DEFAULT_PORT,
    HOST,
    NODES,
    ROLES,
    Layout,
    SandboxError,
    default_dir,
)
from eipha.sim.sandbox_log import RequestLog
from eipha.sim.sandbox_ports import listening, port_error, taken_ports
from eipha.sim.sandbox_shell import disarm_lines, node_env, shell_lines

if TYPE_CHECKING:
    from eipha.sim.region import SimulatedRegion
    from eipha.sim.world import World

__all__ = [
    "DEFAULT_PORT",
    "HOST",
    "NODES",
    "ROLES",
    "Layout",
    "Running",
    "SandboxError",
    "default_dir",
    "disarm_lines",
    "node_env",
    "read_state",
    "serve",
    "shell_lines",
    "taken_ports",
]

POLL = 0.2  # how often the request log is printed, and how soon a stop is noticed


@dataclass
class _Stop:
    """Set by a signal handler or the ``--for`` timer; the main loop notices within POLL."""

    event: threading.Event
    why: str = ""

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.why = signal.Signals(signum).name
        self.event.set()


@contextlib.contextmanager
def _signals(stop: _Stop) -> Iterator[None]:
    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop.handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    layout: Layout,
    region_name: str,
    for_seconds: float | None,
    out: Callable[[str], None],
    eval_hint: str = "eipha sandbox",
) -> int:
    """Run the sandbox until a signal or ``for_seconds``; 0 when it stopped as asked."""
    running = read_state(layout)
    if running is not None:
        raise SandboxError(
            f"a sandbox is already running in {layout.directory} (pid {running['pid']})",
            f'use it: eval "$({eval_hint} --env lb-a)"; or stop it, or start another with '
            "--dir DIR and --port N",
        )
    taken = taken_ports(layout)
    if taken:
        raise port_error(taken)
    stop = _Stop(threading.Event())
    with _signals(stop), contextlib.ExitStack() as stack:
        # a directory this sandbox made, or one holding only what a killed sandbox left, goes
        # when it stops; any other keeps everything but the sandbox's own files
        ours = own_dir(layout.directory) or only_sandbox_files(layout)
        stack.enter_context(claimed(layout))
        stack.callback(remove_files, layout, ours)  # runs while the claim is still held
        sandbox = stack.enter_context(_world(layout, region_name))
        _write_files(layout, sandbox)
        _introduce(layout, sandbox, eval_hint, out)
        if for_seconds is not None:
            timer = threading.Timer(for_seconds, lambda: _timed_out(stop, for_seconds))
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)
        if not stop.event.is_set():
            out(f"ready: pid {os.getpid()}; stop with Ctrl-C (or kill -TERM {os.getpid()})")
        log = RequestLog(sandbox, out)
        while not stop.event.wait(POLL):
            log.show_new()
        log.show_new()
        out(f"stopping ({stop.why})")
        layout.state.unlink(missing_ok=True)  # first: `--env` says at once that nothing runs
    if layout.directory.exists():
        out(f"stopped; the sandbox's files are removed from {layout.directory}")
    else:
        out(f"stopped; {layout.directory} is removed")
    return 0


def _timed_out(stop: _Stop, seconds: float) -> None:
    stop.why = f"--for {seconds:g} s elapsed"
    stop.event.set()


@dataclass
class Running:
    """A running sandbox: its region and world, each node's metadata port, the router."""

    region: SimulatedRegion
    world: World
    imds_ports: dict[str, int]
    router_url: str
    client: Any  # the sandbox's own EC2 client (its requests are not shown in the log)


@contextlib.contextmanager
def _world(layout: Layout, region_name: str) -> Iterator[Running]:
    """Every server, listening, and the pair built and associated; all stopped afterwards."""
    from eipha.sim.region import SimulatedRegion, build_pair, ec2_client
    from eipha.sim.stand_ins import Router
    from eipha.sim.story_lab import Lab

    with contextlib.ExitStack() as stack:
        region = SimulatedRegion(HOST, layout.port, region=region_name)
        listening(layout, 0, region.start)
        stack.callback(region.stop)
        world = build_pair(region)
        lab = Lab(region, world)
        stack.callback(lab.close)
        imds_ports = {}
        for index, node in enumerate(world.nodes.values(), start=1):
            port = layout.ports[index]
            listening(layout, index, functools.partial(lab.bring_up, node, imds_port=port))
            imds_ports[node.name] = port
        router_index = len(ROLES) - 1
        router = Router(lab, port=layout.ports[router_index])
        listening(layout, router_index, router.start)
        stack.callback(router.stop)
        client = ec2_client(region)
        stack.callback(client.close)
        for eip in world.eips.values():  # a healthy pair: each EIP on its home's primary IP
            home = world.nodes[eip.home]
            client.associate_address(
                AllocationId=eip.allocation_id,
                NetworkInterfaceId=home.eni_id,
                PrivateIpAddress=home.primary_ip,
            )
        yield Running(region, world, imds_ports, router.url, client)


def _config(world: World, node: str) -> str:
    import yaml

    data = {
        "region": world.region,
        "node_name": node,
        "nodes": world.nodes_section(),
        "eips": world.eips_section(),
    }
    header = (
        f"# {node}'s config in the eipha sandbox (pid {os.getpid()}); removed when it stops.\n"
        "# No interface: line: eipha binds to the ENI of device 0, found by its MAC.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def _write_files(layout: Layout, sandbox: Running) -> None:
    world = sandbox.world
    nodes = {}
    for name in NODES:
        node = world.nodes[name]
        run_dir = layout.run_dir(name)
        with contextlib.suppress(FileExistsError):
            run_dir.mkdir(mode=0o700)
        write_private(layout.config(name), _config(world, name))
        nodes[name] = {
            "instance_id": node.instance_id,
            "primary_ip": node.primary_ip,
            "env": node_env(layout, world.region, name, sandbox.imds_ports[name]),
        }
    state = {
        "pid": os.getpid(),
        "port": layout.port,
        "region": world.region,
        "endpoint": sandbox.region.endpoint,
        "router": sandbox.router_url,
        "nodes": nodes,
    }
    write_private(layout.state, json.dumps(state, indent=2) + "\n")


def _introduce(
    layout: Layout, sandbox: Running, eval_hint: str, out: Callable[[str], None]
) -> None:
    world = sandbox.world
    out(f"eipha sandbox: a simulated pair on {HOST} (moto; no AWS account, only loopback)")
    out("")
    out(f"region {world.region}, EC2 API at {sandbox.region.endpoint}")
    out("Elastic IPs (each on its home node's primary IP):")
    for eip in world.eips.values():
        home = world.nodes[eip.home]
        out(
            f"  {eip.name}  {eip.allocation_id}  {eip.public_ip}  home {eip.home}, "
            f"on {home.primary_ip}"
        )
    out("nodes:")
    for name in NODES:
        node = world.nodes[name]
        out(
            f"  {name}  {node.instance_id}  {node.eni_id}  MAC {node.mac}  primary "
            f"{node.primary_ip}  secondary {', '.join(node.secondary_ips)}  metadata "
            f"http://{HOST}:{sandbox.imds_ports[name]}/"
        )
    out(
        "clients: the public IPs above are moto's, not reachable; ask the router: curl "
        f"{sandbox.router_url}web-a answers 'served by NODE' from the node EC2 says holds web-a"
    )
    out(f"files: {layout.directory} (configs, run directories; removed when the sandbox stops)")
    out("")
    out("In another shell, become lb-a (or lb-b) with:")
    for name in NODES:
        out(f'  eval "$({eval_hint} --env {name})"')
    out("then try, as lb-a:")
    tries = (
        ("eipha show", "every EIP: where it is, where it belongs"),
        ("eipha status web-a; echo $?", "running here: exit 0"),
        ("eipha status web-b; echo $?", "not running here: exit 3"),
        ("eipha start web-b", "take the peer's EIP, onto lb-a's secondary IP"),
        ("eipha stop web-b", "let it go; as lb-b, `eipha start web-b` takes it home"),
        ("eipha drill web-a --to lb-b --back", "a timed move to lb-b and back"),
        ("eipha validate", "this node's checklist"),
    )
    width = max(len(command) for command, _ in tries)
    for command, why in tries:
        out(f"  {command:<{width}}  # {why}")
    out(f"  (add --probe {sandbox.router_url}web-a to the drill to see what a client saw)")
    out("Each EC2 request is shown below as it arrives, with the node that made it.")
    out("")
