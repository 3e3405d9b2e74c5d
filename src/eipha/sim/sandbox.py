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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from eipha import errors

DEFAULT_PORT = 7780
HOST = "127.0.0.1"
NODES = ("lb-a", "lb-b")
ROLES = (
    "the simulated EC2 API",
    "lb-a's IMDSv2 metadata",
    "lb-b's IMDSv2 metadata",
    "the router",
)
"""What listens on the base port and each one after it, in order."""
STATE_FILE = "sandbox.json"
LOCK_FILE = ".sandbox.lock"  # held by the running sandbox (see _claimed)
SECRET = "sandbox"  # every node's fake secret access key; the key id names the node
NO_PROXY = "127.0.0.1,localhost"
UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
"""Unset in a node's shell: a profile the empty config file does not have is an error in
botocore, a real session token has no business next to a fake key, and the last one would
make botocore ignore ``AWS_ENDPOINT_URL_EC2``."""
POLL = 0.2  # how often the request log is printed, and how soon a stop is noticed
CHANGES = ("AssociateAddress", "DisassociateAddress")  # followed by where the EIPs are


class SandboxError(errors.EiphaError):
    """The sandbox cannot start: a port is taken, or another sandbox runs in the directory."""


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/eipha-sandbox``, else ``/tmp/eipha-sandbox-UID``."""
    env = os.environ if env is None else env
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "eipha-sandbox"
    return Path("/tmp") / f"eipha-sandbox-{os.geteuid()}"  # noqa: S108 - owner-only, checked


@dataclass(frozen=True)
class Layout:
    """Where a sandbox keeps its files, and the ports it listens on."""

    directory: Path
    port: int = DEFAULT_PORT

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.port + offset for offset in range(len(ROLES)))

    @property
    def state(self) -> Path:
        return self.directory / STATE_FILE

    def config(self, node: str) -> Path:
        return self.directory / f"{node}.yaml"

    def run_dir(self, node: str) -> Path:
        return self.directory / node


# -- the environment of a node's shell --------------------------------------------------------


def node_env(layout: Layout, region: str, node: str, imds_port: int) -> dict[str, str]:
    """What a shell needs to be ``node`` of the sandbox."""
    return {
        "AWS_ACCESS_KEY_ID": f"sandbox-{node}",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_EC2": f"http://{HOST}:{layout.port}",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{HOST}:{imds_port}/",
        "EIPHA_CONFIG": str(layout.config(node)),
        "EIPHA_RUN_DIR": str(layout.run_dir(node)),
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,  # a lowercase no_proxy would hide NO_PROXY from Python's proxies
    }


def shell_lines(state: Mapping[str, Any], node: str) -> str:
    """The ``unset`` and ``export`` lines of ``node``, for ``eval`` in a POSIX shell."""
    spec = state["nodes"][node]
    lines = [
        f"# eipha sandbox (pid {state['pid']}, {state['region']}): this shell is {node} "
        f"({spec['instance_id']}, {spec['primary_ip']})",
        f"unset {' '.join(UNSET)}",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in spec["env"].items()]
    return "\n".join(lines)


CLOSED = f"http://{HOST}:9"  # the discard port on loopback: refused at once


def disarm_lines(node: str) -> str:
    """What ``--env`` prints when no sandbox runs: ``eval`` cannot see the exit code, so
    instead of leaving the shell as it was (the user's real AWS credentials, the real
    metadata service), point it at a closed loopback port, where every command fails at
    once and nothing reaches AWS."""
    closed = {
        "AWS_ACCESS_KEY_ID": f"sandbox-{node}",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_EC2": CLOSED,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{CLOSED}/",
    }
    lines = [
        f"# no eipha sandbox is running: this shell ({node}) now points at a closed port on "
        "127.0.0.1, so nothing reaches AWS; start `eipha sandbox` and eval this again",
        f"unset {' '.join(UNSET)}",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in closed.items()]
    return "\n".join(lines)


def read_state(layout: Layout) -> dict[str, Any] | None:
    """The state of the sandbox running in ``layout.directory``, or None when none runs
    there (no state file, or one left by a sandbox that is gone)."""
    from eipha.monitor.state import alive

    try:
        state: dict[str, Any] = json.loads(layout.state.read_text())
        pid, port = int(state["pid"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if alive(pid) and _answers(port) else None


def _answers(port: int) -> bool:
    """Something accepts connections on the sandbox's EC2 port (a reused pid alone is not
    a running sandbox)."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


# -- the directory ------------------------------------------------------------------------------


def _own_dir(directory: Path) -> bool:
    """Create ``directory`` owner-only (0700), or check that an existing one is the user's
    and that nobody else may write to it (its files are 0600); True if it was created."""
    from eipha.locking import private_dir

    existed = os.path.lexists(directory)
    private_dir(directory, "sandbox directory", "pick another with --dir")
    return not existed


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` owner-only, replacing it at once."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# -- the ports ----------------------------------------------------------------------------------


Taken = tuple[int, str, OSError]  # a port, what it is for, why it cannot be bound


def taken_ports(layout: Layout) -> list[Taken]:
    """Every port of ``layout`` that cannot be bound now."""
    taken = []
    for port, role in zip(layout.ports, ROLES, strict=True):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind((HOST, port))
            except OSError as exc:
                taken.append((port, role, exc))
    return taken


def _port_error(taken: Sequence[Taken]) -> errors.EiphaError:
    """One line for every port that cannot be bound: which, what for, and the way out."""
    names = [f"{port} ({role})" for port, role, _ in taken]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    ports = f"{HOST} port{'s' if len(names) > 1 else ''} {listed}"
    other = f"choose another base port with --port N (the sandbox uses N to N+{len(ROLES) - 1})"
    if any(exc.errno == errno.EACCES for _, _, exc in taken):
        return errors.PermissionDenied(
            f"cannot listen on {ports}", f"a port below 1024 needs root; {other}"
        )
    if all(exc.errno == errno.EADDRINUSE for _, _, exc in taken):
        verb = "is" if len(names) == 1 else "are"
        return SandboxError(
            f"cannot start the sandbox: {ports} {verb} in use",
            f"by another eipha sandbox, or another program: stop it, or {other}",
        )
    reasons = "; ".join(f"{port}: {exc.strerror or exc}" for port, _, exc in taken)
    return SandboxError(f"cannot start the sandbox: cannot listen on {ports}", reasons)


def _listening(layout: Layout, index: int, start: Callable[[], Any]) -> Any:
    """``start()`` the server of port ``index``; a port taken since the check says which."""
    try:
        return start()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise _port_error([(layout.ports[index], ROLES[index], exc)]) from None
        raise


# -- running it ---------------------------------------------------------------------------------


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
        raise _port_error(taken)
    stop = _Stop(threading.Event())
    with _signals(stop), contextlib.ExitStack() as stack:
        # a directory this sandbox made, or one holding only what a killed sandbox left, goes
        # when it stops; any other keeps everything but the sandbox's own files
        ours = _own_dir(layout.directory) or _only_sandbox_files(layout)
        stack.enter_context(_claimed(layout))
        stack.callback(_remove, layout, ours)  # runs while the claim is still held
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
        log = _RequestLog(sandbox, out)
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
class _Sandbox:
    region: Any  # SimulatedRegion
    world: Any  # World
    imds_ports: dict[str, int]
    router_url: str
    client: Any  # the sandbox's own EC2 client (its requests are not shown in the log)


@contextlib.contextmanager
def _world(layout: Layout, region_name: str) -> Iterator[_Sandbox]:
    """Every server, listening, and the pair built and associated; all stopped afterwards."""
    from eipha.sim import story
    from eipha.sim.imds_double import ImdsDouble, node_metadata
    from eipha.sim.region import SimulatedRegion, build_pair, ec2_client

    with contextlib.ExitStack() as stack:
        region = SimulatedRegion(HOST, layout.port, region=region_name)
        _listening(layout, 0, region.start)
        stack.callback(region.stop)
        world = build_pair(region)
        lab = story.Lab(region, world)
        stack.callback(lab.close)
        imds_ports = {}
        for index, node in enumerate(world.nodes.values(), start=1):
            meta = node_metadata(
                node.instance_id,
                world.region,
                f"{world.region}a",
                [(node.mac, node.eni_id, 0, node.primary_ip, node.secondary_ips, node.subnet_cidr)],
            )
            double = ImdsDouble(meta, host=HOST, port=layout.ports[index])
            lab.imds[node.name] = _listening(layout, index, double.start)
            imds_ports[node.name] = layout.ports[index]
            lab.web[node.name] = story.web_server(node.name)
            lab.web_ports[node.name] = lab.web[node.name].server_address[1]
        router_index = len(ROLES) - 1
        router = _listening(layout, router_index, lambda: story.Router(lab, port=layout.port + 3))
        stack.callback(story.stop_server, router.server)
        client = ec2_client(region)
        stack.callback(client.close)
        for eip in world.eips.values():  # a healthy pair: each EIP on its home's primary IP
            home = world.nodes[eip.home]
            client.associate_address(
                AllocationId=eip.allocation_id,
                NetworkInterfaceId=home.eni_id,
                PrivateIpAddress=home.primary_ip,
            )
        yield _Sandbox(region, world, imds_ports, f"http://{HOST}:{layout.port + 3}/", client)


def _config(world: Any, node: str) -> str:
    import yaml

    data = {
        "region": world.region,
        "node_name": node,
        "nodes": {
            n.name: {"instance_id": n.instance_id, "address": n.primary_ip}
            for n in world.nodes.values()
        },
        "eips": {
            e.name: {"allocation_id": e.allocation_id, "home": e.home} for e in world.eips.values()
        },
    }
    header = (
        f"# {node}'s config in the eipha sandbox (pid {os.getpid()}); removed when it stops.\n"
        "# No interface: line: eipha binds to the ENI of device 0, found by its MAC.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def _write_files(layout: Layout, sandbox: _Sandbox) -> None:
    world = sandbox.world
    nodes = {}
    for name in NODES:
        node = world.nodes[name]
        run_dir = layout.run_dir(name)
        with contextlib.suppress(FileExistsError):
            run_dir.mkdir(mode=0o700)
        _write(layout.config(name), _config(world, name))
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
    _write(layout.state, json.dumps(state, indent=2) + "\n")


@contextlib.contextmanager
def _claimed(layout: Layout) -> Iterator[None]:
    """Hold the directory's lock (``flock``, gone with the process) while the sandbox runs,
    so that a second one started in the same directory at the same moment is refused before
    it can write or remove anything of the first one's."""
    fd = os.open(
        layout.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SandboxError(
                f"another sandbox is starting or running in {layout.directory}",
                "wait for its ready line and use it, or start another with --dir DIR and --port N",
            ) from None
        yield
    finally:
        os.close(fd)


def _sandbox_names() -> set[str]:
    files = [STATE_FILE, *(f"{node}.yaml" for node in NODES)]
    return {*files, *(f".{name}.tmp" for name in files), *NODES, LOCK_FILE}


def _only_sandbox_files(layout: Layout) -> bool:
    """Does the directory hold nothing but what a sandbox writes?"""
    return set(os.listdir(layout.directory)) <= _sandbox_names()


def _remove(layout: Layout, ours: bool) -> None:
    """Remove every file the sandbox wrote, and the directory if it is the sandbox's."""
    layout.state.unlink(missing_ok=True)
    (layout.directory / LOCK_FILE).unlink(missing_ok=True)
    for name in NODES:
        with contextlib.suppress(FileNotFoundError):
            layout.config(name).unlink()
        shutil.rmtree(layout.run_dir(name), ignore_errors=True)
    if ours:
        with contextlib.suppress(OSError):  # not empty: someone put files there meanwhile
            layout.directory.rmdir()


def _introduce(
    layout: Layout, sandbox: _Sandbox, eval_hint: str, out: Callable[[str], None]
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


class _RequestLog:
    """Prints the EC2 requests the nodes made since the last call, ids named, and where the
    EIPs are after each change. The sandbox's own requests (router, read-backs) are left
    out."""

    def __init__(self, sandbox: _Sandbox, out: Callable[[str], None]) -> None:
        from eipha.sim.region import FAKE_ACCESS_KEY_ID

        self.sandbox = sandbox
        self.out = out
        self.ours = FAKE_ACCESS_KEY_ID
        self.since = sandbox.region.mark()
        world = sandbox.world
        self.names = {e.allocation_id: e.name for e in world.eips.values()}
        self.names |= {e.public_ip: e.name for e in world.eips.values()}
        self.names |= {n.eni_id: n.name for n in world.nodes.values()}
        self.names |= {n.instance_id: n.name for n in world.nodes.values()}

    def show_new(self) -> None:
        region = self.sandbox.region
        new = region.calls(since=self.since)
        self.since += len(new)
        changed = False
        for request in new:
            if request.client == self.ours:
                continue
            self.out(self.line(request))
            dry = request.params.get("DryRun") == "true"
            changed |= request.action in CHANGES and request.status == 200 and not dry
        if changed:
            self.out(f"{'':8}  now: {self.placements()}")

    def line(self, request: Any) -> str:
        """``HH:MM:SS  NODE: Action Param=value,… -> outcome``, ids shown by name."""
        who = request.client.removeprefix("sandbox-")
        dry = request.params.get("DryRun") == "true"
        if request.status == 200:
            outcome = "ok"
        elif dry and request.status == 412:  # moto's status for DryRunOperation
            outcome = "DryRunOperation (would be allowed)"
        else:
            outcome = f"error (HTTP {request.status})"
        params = _params(request.params, self.names)
        return f"{time.strftime('%H:%M:%S')}  {who}: {request.action} {params} -> {outcome}"

    def placements(self) -> str:
        world = self.sandbox.world
        addresses = self.sandbox.client.describe_addresses()["Addresses"]
        by_id = {a["AllocationId"]: a for a in addresses}
        where = []
        for eip in world.eips.values():
            node, ip = world.placement(by_id.get(eip.allocation_id, {}))
            where.append(f"{eip.name} on {node} {ip}" if node else f"{eip.name} unassociated")
        return "; ".join(where)


_FILTER = re.compile(r"Filter\.(\d+)\.(Name|Value\.\d+)")
_INDEXED = re.compile(r"\.\d+$")


def _params(params: Mapping[str, str], names: Mapping[str, str]) -> str:
    """A request's parameters, short: ids by name, lists joined (``AllocationId=web-a,web-b``),
    a filter as ``NAME=values``; no Action, Version or ``DryRun=false``."""
    shown: dict[str, list[str]] = {}
    filters: dict[str, str] = {}
    for key, value in params.items():
        if key in ("Action", "Version") or (key == "DryRun" and value == "false"):
            continue
        match = _FILTER.fullmatch(key)
        if match and match.group(2) == "Name":
            filters[match.group(1)] = value
            continue
        label = filters.get(match.group(1), key) if match else _INDEXED.sub("", key)
        shown.setdefault(label, []).append(names.get(value, value))
    return " ".join(f"{label}={','.join(values)}" for label, values in shown.items())
