"""A fault-injecting HTTP proxy between eipha and the simulated EC2 region, and a way to run
eipha through it.

:class:`FaultProxy` listens on 127.0.0.1 (threaded, stdlib ``http.server``); eipha reaches it
through ``AWS_ENDPOINT_URL_EC2`` and it forwards every request to the moto server
(``SimulatedRegion.endpoint``), one fresh upstream connection per request. Rules, matched by
EC2 ``Action`` (parsed from the form body) and optionally by the caller's access key id, turn
the next matching requests into faults:

==============  ============================================================================
``throttle``    HTTP 503, EC2 XML error ``RequestLimitExceeded`` (moto never sees the call)
``internal``    HTTP 500, ``InternalError``
``unavailable`` HTTP 503, ``Unavailable``
``reset``       the request is read, then the connection is closed with an RST (SO_LINGER 0)
``slow``        forwarded at once (the change happens), answered only after ``delay`` seconds
                (default: past eipha's 5 s read timeout) or when the client has gone
``blackhole``   read, never forwarded, never answered; held until the client goes away
``invisible``   forwarded (it succeeds), but the next ``reads`` DescribeAddresses answers show
                the EIP as it was before the call: its ``<item>`` is replaced by the one the
                proxy last passed on (eventual consistency)
``pass``        forwarded unchanged: a rule that only runs its hooks
==============  ============================================================================

Every rule may carry ``before``/``after`` hooks, run in the proxy thread before forwarding and
after forwarding (before the client gets its answer): a barrier that lines two nodes up, or a
racing peer whose AssociateAddress lands between ours and our read-back.

The request log (:attr:`FaultProxy.log`) holds one :class:`Exchange` per request: monotonic
start (the request line has arrived) and end (taken *before* the answer is written, so a
request a client sends after reading an answer always starts after that answer's end), action,
form parameters, the client's source port and a per-connection id, the SigV4 access key id,
the fault, the status answered and the body.

Which eipha process sent a request: eipha identifies itself only as ``eipha`` in the
User-Agent (the same for every process), so a test gives each process its own fake
``AWS_ACCESS_KEY_ID`` (moto serves any key from its default account) and reads it back as
:attr:`Exchange.client`; a test with two nodes gives each node its own proxy.
"""

from __future__ import annotations

import http.client
import itertools
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlsplit

from eipha import ec2
from eipha.sim import serving
from eipha.sim.imds_double import ImdsDouble
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_error_body
from tests.integration.conftest import Lab, metadata_for

Fault = Literal[
    "throttle", "internal", "unavailable", "reset", "slow", "blackhole", "invisible", "pass"
]
ERROR_FAULTS: dict[str, tuple[int, str, str]] = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "internal": (500, "InternalError", "An internal error has occurred."),
    "unavailable": (503, "Unavailable", "The service is unavailable. Please try again shortly."),
}
"""fault -> (HTTP status, EC2 error code, message), the way EC2 answers them."""

SLOW_DELAY = ec2.READ_TIMEOUT + 1.0
DESCRIBE, ASSOCIATE, DISASSOCIATE = "DescribeAddresses", "AssociateAddress", "DisassociateAddress"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}
)
Hook = Callable[[], None]


@dataclass
class Rule:
    """Answer the next ``times`` requests for ``action`` (None: any) from ``client`` (None:
    any access key) with ``fault``, after letting the first ``skip`` of them through."""

    action: str | None
    fault: Fault
    times: int | None = 1  # None: until cleared
    skip: int = 0
    client: str | None = None
    reads: int = 1  # invisible: how many later DescribeAddresses answers show the old state
    delay: float = SLOW_DELAY  # slow: how long the answer is held
    before: Hook | None = None
    after: Hook | None = None

    def matches(self, action: str, client: str) -> bool:
        return (self.action is None or self.action == action) and (
            self.client is None or self.client == client
        )


@dataclass(frozen=True)
class Exchange:
    """One request through the proxy."""

    started: float
    ended: float
    action: str
    params: dict[str, str]
    client: str  # SigV4 access key id ("" if unsigned)
    port: int  # the client's source port
    connection: int  # the proxy's number for the TCP connection (1, 2, ...)
    fault: str | None
    status: int | None  # None: nothing answered (reset, blackhole, client gone)
    answer: bytes = b""
    forwarded: bool = False  # the request reached the region
    upstream_status: int | None = None

    @property
    def landed(self) -> bool:
        """The region carried the call out (whatever the client was told)."""
        return self.forwarded and self.upstream_status == 200

    @property
    def association_id(self) -> str | None:
        """AssociationId: the parameter (Disassociate) or the answer's (Associate)."""
        if "AssociationId" in self.params:
            return self.params["AssociationId"]
        match = re.search(rb"<associationId>([^<]+)</associationId>", self.answer)
        return match.group(1).decode() if match else None


class FaultProxy:
    """The proxy; use as a context manager or call :meth:`start` and (always) :meth:`stop`."""

    def __init__(self, upstream: str, name: str = "proxy") -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"FaultProxy forwards to loopback only, not {upstream!r}")
        self.name = name
        self._upstream = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[Exchange] = []
        self._seen: dict[str, bytes] = {}  # allocation id -> last <item> passed on
        self._hidden: dict[str, list[Any]] = {}  # allocation id -> [reads left, old <item>]
        self._connections = itertools.count(1)
        self._inflight: dict[str, int] = {}  # access key id -> requests being handled
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # problems inside the proxy (a test asserts it is empty)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = serving.serve_in_thread(self._server, f"faultproxy-{self.name}")
        return self

    def stop(self) -> None:
        """Stop serving; held requests are let go. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._stopping.set()
        serving.shut_down(server, thread)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- rules -------------------------------------------------------------------------------

    def add(self, action: str | None, fault: Fault, times: int | None = 1, **kw: Any) -> Rule:
        """Add a rule (see :class:`Rule`); rules are matched in the order they were added."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        rule = Rule(action, fault, times, **kw)
        with self._lock:
            self._rules.append(rule)
        return rule

    def script(self, action: str, faults: Sequence[Fault], **kw: Any) -> None:
        """The next requests for ``action``, one fault each, in order (``"pass"``: forward)."""
        for fault in faults:
            self.add(action, fault, 1, **kw)

    def clear(self, client: str | None = None) -> None:
        """Forget the rules (only those for ``client``, if given) and what is invisible."""
        with self._lock:
            if client is None:
                self._rules.clear()
                self._hidden.clear()
            else:
                self._rules[:] = [rule for rule in self._rules if rule.client != client]

    def _take(self, action: str, client: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(action, client):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    return None
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return rule
        return None

    # -- the log -----------------------------------------------------------------------------

    @property
    def log(self) -> list[Exchange]:
        """Every finished request, in the order they arrived (a held one is logged when it
        ends, possibly after requests that came later)."""
        with self._lock:
            return sorted(self._log, key=lambda x: x.started)

    def calls(self, action: str | None = None, client: str | None = None) -> list[Exchange]:
        return [
            x
            for x in self.log
            if (action is None or x.action == action) and (client is None or x.client == client)
        ]

    def actions(self, client: str | None = None) -> list[str]:
        return [x.action for x in self.calls(client=client)]

    def reached(self, client: str) -> bool:
        """Has a request signed with ``client`` arrived (even one still being handled)?"""
        with self._lock:
            return client in self._inflight

    def settle(self, client: str | None = None, timeout: float = 5.0) -> None:
        """Wait until no request (from ``client``, if given) is being handled: a held one is
        logged once its client has gone, a moment after the client process exits."""

        def idle() -> bool:
            return not any(n for key, n in self._inflight.items() if client in (None, key))

        with self._idle:
            if not self._idle.wait_for(idle, timeout):
                raise TimeoutError(f"proxy {self.name}: requests still held: {self._inflight}")

    # -- serving (handler threads) -----------------------------------------------------------

    def serve(self, handler: _Handler, connection: int) -> None:
        started = time.monotonic()
        match = _CREDENTIAL.search(handler.headers.get("Authorization", ""))
        client = match.group(1) if match else ""
        with self._lock:
            self._inflight[client] = self._inflight.get(client, 0) + 1
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        params = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        rule = self._take(action, client)
        fault = rule.fault if rule is not None else None
        entry: dict[str, Any] = {"status": None, "answer": b"", "ended": None}
        try:
            if rule is not None and rule.before is not None:
                rule.before()
            if fault in ERROR_FAULTS:
                status, code, message = ERROR_FAULTS[fault]
                entry.update(status=status, answer=ec2_error_body(code, message))
                entry["ended"] = time.monotonic()
                handler.reply(status, "text/xml;charset=UTF-8", entry["answer"])
            elif fault == "reset":
                entry["ended"] = time.monotonic()
                handler.reset()
            elif fault == "blackhole":
                handler.hold(None, self._stopping)
                entry["ended"] = time.monotonic()
                handler.close_connection = True
            else:
                self._forward(handler, body, action, params, rule, entry)
        except Exception as exc:  # a proxy bug must show in the test, not vanish
            self.errors.append(f"{action}: {exc!r}")
            handler.close_connection = True
        finally:
            with self._lock:
                self._log.append(
                    Exchange(
                        started=started,
                        ended=entry["ended"] or time.monotonic(),
                        action=action,
                        params=params,
                        client=client,
                        port=int(handler.client_address[1]),
                        connection=connection,
                        fault=fault,
                        status=entry["status"],
                        answer=entry["answer"],
                        forwarded=bool(entry.get("forwarded")),
                        upstream_status=entry.get("upstream_status"),
                    )
                )
                self._inflight[client] -= 1
                self._idle.notify_all()

    def _forward(
        self,
        handler: _Handler,
        body: bytes,
        action: str,
        params: Mapping[str, str],
        rule: Rule | None,
        entry: dict[str, Any],
    ) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            content_type = response.getheader("Content-Type", "text/xml")
            status = response.status
        finally:
            upstream.close()
        entry.update(forwarded=True, upstream_status=status)
        if rule is not None and rule.fault == "invisible" and status == 200:
            self._hide(action, params, rule.reads)
        if action == DESCRIBE and status == 200:
            answer = self._through_describe(answer)
        if rule is not None and rule.after is not None:
            rule.after()
        if (
            rule is not None
            and rule.fault == "slow"
            and not handler.hold(rule.delay, self._stopping)
        ):
            entry.update(answer=answer, ended=time.monotonic())  # the client gave up first
            handler.close_connection = True
            return
        entry.update(status=status, answer=answer, ended=time.monotonic())
        handler.reply(status, content_type, answer)

    # -- eventual consistency ----------------------------------------------------------------

    def _hide(self, action: str, params: Mapping[str, str], reads: int) -> None:
        with self._lock:
            allocation = params.get("AllocationId") or next(
                (
                    alloc
                    for alloc, item in self._seen.items()
                    if params.get("AssociationId")
                    and f"<associationId>{params['AssociationId']}<".encode() in item
                ),
                None,
            )
            if allocation is None or allocation not in self._seen:
                raise RuntimeError(
                    f"invisible {action}: no DescribeAddresses answer for {params} seen before"
                )
            self._hidden[allocation] = [reads, self._seen[allocation]]

    def _through_describe(self, answer: bytes) -> bytes:
        """Remember each EIP's <item>; put the old one back for EIPs still invisible."""
        root = ET.fromstring(answer)
        ns = root.tag[1 : root.tag.index("}")] if root.tag.startswith("{") else ""

        def q(tag: str) -> str:
            return f"{{{ns}}}{tag}" if ns else tag

        addresses = root.find(q("addressesSet"))
        if addresses is None:
            return answer
        changed = False
        with self._lock:
            for index, item in enumerate(list(addresses)):
                allocation = item.findtext(q("allocationId")) or ""
                hidden = self._hidden.get(allocation)
                if hidden is not None and hidden[0] > 0:
                    hidden[0] -= 1
                    addresses.remove(item)
                    addresses.insert(index, ET.fromstring(hidden[1]))
                    changed = True
                else:
                    self._seen[allocation] = ET.tostring(item)
        if not changed:
            return answer
        return cast(bytes, ET.tostring(root, encoding="utf-8", default_namespace=ns or None))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: FaultProxy
    ) -> None:
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client hung up: expected with faults, stay quiet
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects of EC2

    def setup(self) -> None:
        super().setup()
        self.connection_id = next(cast(_Server, self.server).proxy._connections)

    def do_POST(self) -> None:
        cast(_Server, self.server).proxy.serve(self, self.connection_id)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client had gone

    def reset(self) -> None:
        """Close with an RST: SO_LINGER on with a zero timeout, then close."""
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()  # its reference would keep the socket open past close()
        sock.close()

    def hold(self, seconds: float | None, stopping: threading.Event) -> bool:
        """Wait ``seconds`` (None: for ever), or until the client goes or the proxy stops;
        True if the client is still there."""
        until = None if seconds is None else time.monotonic() + seconds
        while not stopping.is_set() and (until is None or time.monotonic() < until):
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if not readable:
                continue
            try:
                if self.connection.recv(1, socket.MSG_PEEK) == b"":
                    return False  # the client closed its end
            except OSError:
                return False
            stopping.wait(0.05)  # more data (a pipelined request): keep holding
        return not stopping.is_set()


# -- running eipha through a proxy -----------------------------------------------------------


@dataclass
class Run:
    """One finished eipha process."""

    args: tuple[str, ...]
    key: str
    code: int
    out: str
    err: str
    spawned: float  # monotonic, just before exec
    exited: float  # monotonic, when wait() returned

    @property
    def elapsed(self) -> float:
        return self.exited - self.spawned

    @property
    def lines(self) -> list[str]:
        return self.err.strip().splitlines()


@dataclass
class Rig:
    """A world of its own in the shared region: two nodes, an IMDSv2 double and a proxy per
    node, and eipha runnable on each through its node's proxy. Several rigs run side by side
    (each with its own VPC, ENIs and EIPs), which is how the fault matrix runs in parallel."""

    lab: Lab
    proxies: dict[str, FaultProxy]
    keys: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _config_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def region(self) -> SimulatedRegion:
        return self.lab.region

    @property
    def world(self) -> World:
        return self.lab.world

    def eni(self, node: str) -> str:
        return self.world.nodes[node].eni_id

    def where(self, eip: str) -> tuple[str | None, str | None]:
        """(ENI, private IP) the EIP is on now, (None, None) when unassociated."""
        address = self.lab.where(eip)
        return address.get("NetworkInterfaceId"), address.get("PrivateIpAddress")

    def new_key(self, node: str) -> str:
        """A fresh fake access key id: how the proxy log tells eipha processes apart."""
        return f"AKIDEIPHA{node.replace('-', '').upper()}{next(self.keys):06d}"

    def config(self, node: str, timeout: float | None = None) -> Path:
        """The node's config file (with this ``timeout``), written once and then only read:
        processes launched together must never see it half-written."""
        with self._config_lock:
            path = self.lab.tmp / f"{node}-timeout-{timeout}.yaml"
            if not path.exists():
                self.lab.config(node, **({"timeout": timeout} if timeout else {})).rename(path)
            return path

    def command(
        self, node: str, *args: str, key: str, timeout: float | None = None
    ) -> tuple[list[str], dict[str, str]]:
        config = self.config(node, timeout)
        env = self.lab.env(node, config)
        env.update(
            AWS_ENDPOINT_URL_EC2=self.proxies[node].endpoint,
            AWS_ACCESS_KEY_ID=key,
            EIPHA_RUN_DIR=str(self.lab.tmp / "run" / node),  # each node its own locks
        )
        return [sys.executable, "-m", "eipha", *args], env

    def launch(
        self, node: str, *args: str, key: str | None = None, timeout: float | None = None
    ) -> Running:
        key = key or self.new_key(node)
        argv, env = self.command(node, *args, key=key, timeout=timeout)
        spawned = time.monotonic()
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return Running(proc, tuple(args), key, spawned)

    def run(
        self, node: str, *args: str, key: str | None = None, timeout: float | None = None
    ) -> Run:
        with self.launch(node, *args, key=key, timeout=timeout) as running:
            return running.wait()


@dataclass
class Running:
    """An eipha process being waited for; killed by its PID if anything goes wrong."""

    proc: subprocess.Popen[str]
    args: tuple[str, ...]
    key: str
    spawned: float

    def wait(self, limit: float = 60.0) -> Run:
        out, err = self.proc.communicate(timeout=limit)
        return Run(
            self.args, self.key, self.proc.returncode, out, err, self.spawned, time.monotonic()
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def proxied(lab: Lab, nodes: Sequence[str] = ("lb-a", "lb-b")) -> Iterator[Rig]:
    """A proxy in front of ``lab``'s region for each of ``nodes``; stopped on the way out."""
    proxies: dict[str, FaultProxy] = {}
    try:
        for node in nodes:
            proxies[node] = FaultProxy(lab.region.endpoint, name=node).start()
        yield Rig(lab, proxies)
    finally:
        for proxy in proxies.values():
            proxy.stop()


@contextmanager
def rig(
    region: SimulatedRegion, tmp: Path, nodes: Sequence[str] = ("lb-a", "lb-b")
) -> Iterator[Rig]:
    """A fresh world in ``region`` (not reset: other rigs may live there too), with an IMDS
    double and a proxy for each of ``nodes``; all stopped on the way out. Not thread-safe
    (boto3 clients are made here): build rigs in one thread, then use each in its own."""
    world = build_pair(region)
    tmp.mkdir(parents=True, exist_ok=True)
    doubles: dict[str, ImdsDouble] = {}
    try:
        for node in nodes:
            doubles[node] = ImdsDouble(metadata_for(world, node)).start()
        with proxied(Lab(region, world, doubles, tmp), nodes) as built:
            yield built
    finally:
        for double in doubles.values():
            double.stop()
