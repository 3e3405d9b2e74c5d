"""The peer monitor's own probes (docs/monitor.md): the local health check and the quorum target.

:class:`Health` runs ``monitor.health_check`` every ``interval`` seconds in a daemon thread
and turns its results into one flag with fall/rise hysteresis. :class:`Quorum` probes the
quorum targets (by default the default gateway) and says whether any of them answered
recently. Both keep their state behind a :meth:`step` method that applies one result, so
tests drive them without threads, sockets or processes; the threads only call the real
probe and then :meth:`step`.

Choices:

- Health before its first result is *healthy* (``known`` False): a restarted daemon, or a
  SIGHUP reload (which builds a new :class:`Health`), must not announce itself unhealthy for
  the length of one check, which would make the peer take its home EIPs at once. The first
  result then sets the state directly, without fall/rise (one success confirms a node that
  just started, so it holds its home EIPs at once; one failure makes it unhealthy at once);
  from then on ``fall`` consecutive failures turn it unhealthy and ``rise`` consecutive
  successes turn it healthy again. A check (or quorum probe) that raises is a failure.
- A command check runs ``/bin/sh -c COMMAND`` in a new session with no stdin/stdout/stderr;
  success is exit status 0. On timeout (``min(interval, 5)`` s) the whole process group is
  killed. A URL check is one GET sent directly (never through a proxy), redirects not
  followed; 2xx and 3xx are success. HTTPS certificates are verified (use a command check
  with ``curl -k`` for a self-signed certificate).
- Quorum targets are ``A.B.C.D`` (ICMP echo: an unprivileged ICMP socket if
  ``net.ipv4.ping_group_range`` allows it, else a raw socket, which needs CAP_NET_RAW) or
  ``A.B.C.D:PORT`` (TCP). Only a completed TCP connect counts: a refusal proves the host is
  up, but not that the path to the service is, and strict is simpler to reason about.
- An empty target list means the default gateway, read from /proc/net/route each round (it
  may change); without a default route the quorum is never reached, and ``detail`` says so.

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import logging
import os
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eipha.clock import Clock
from eipha.config import HealthCheck

log = logging.getLogger(__name__)

ROUTE_FILE = Path("/proc/net/route")
MAX_CHECK_TIMEOUT = 5.0  # seconds; a health check gets min(interval, this)
PROBE_TIMEOUT = 1.0  # seconds; one ICMP echo or TCP connect to a quorum target
RTF_GATEWAY = 0x0002

Result = tuple[bool, str]  # (success, detail: "exit 1", "HTTP 503", "connection refused", ...)


# --------------------------------------------------------------------------- health


def run_command(command: str, timeout: float) -> Result:
    """Run ``/bin/sh -c command``; success is exit 0. Never raises."""
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"cannot run /bin/sh: {exc.strerror or exc}"
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return False, f"timed out after {timeout:g} s"
    return code == 0, _exit_detail(code)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the check's whole process group (the shell leads it), then reap the shell."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _exit_detail(code: int) -> str:
    if code >= 0:
        return f"exit {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def get_url(url: str, timeout: float) -> Result:
    """One direct GET of ``url``; success is a 2xx or 3xx status. Never raises."""
    try:
        connection, path = _connection(url, timeout)
    except (ValueError, http.client.HTTPException) as exc:
        return False, f"bad URL ({exc})"
    try:
        connection.request("GET", path, headers={"User-Agent": "eipha-monitor"})
        status = connection.getresponse().status
    except TimeoutError:
        return False, f"timed out after {timeout:g} s"
    except ConnectionRefusedError:
        return False, "connection refused"
    except ssl.SSLError as exc:
        return False, f"TLS error: {exc.reason or exc}"
    except OSError as exc:
        return False, (exc.strerror or str(exc) or type(exc).__name__).lower()
    except http.client.HTTPException as exc:
        return False, f"bad HTTP response ({type(exc).__name__})"
    finally:
        connection.close()
    return 200 <= status < 400, f"HTTP {status}"


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """(an unopened connection, the path and query to GET); ValueError for a bad URL."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context), path
    return http.client.HTTPConnection(host, port, timeout=timeout), path


def check_of(spec: HealthCheck) -> Callable[[], Result]:
    """The real check for ``spec``: its command or its URL, with ``min(interval, 5)`` s."""
    timeout = min(spec.interval, MAX_CHECK_TIMEOUT)
    if spec.command is not None:
        command = spec.command
        return lambda: run_command(command, timeout)
    url = spec.url or ""
    return lambda: get_url(url, timeout)


class Health:
    """Whether this node is healthy: ``monitor.health_check`` with fall/rise hysteresis.

    ``spec`` None means no check: always healthy, and :meth:`start` does nothing. ``check``
    replaces the real command or URL check (tests)."""

    def __init__(
        self,
        spec: HealthCheck | None,
        *,
        check: Callable[[], Result] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.spec = spec
        self.fall, self.rise = (spec.fall, spec.rise) if spec is not None else (1, 1)
        self._check = check or (check_of(spec) if spec is not None else None)
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True
        self._known = spec is None
        self._against = 0  # consecutive results disagreeing with the current state
        self._detail = "no health check configured" if spec is None else "not checked yet"
        self._checked_at: float | None = None
        self._transitions = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def known(self) -> bool:
        """False until the first result (``healthy`` is True meanwhile; see the module)."""
        return self._known

    @property
    def last_detail(self) -> str:
        return self._detail

    @property
    def checked_at(self) -> float | None:
        """When the last result came in (the clock's time), None before the first."""
        return self._checked_at

    @property
    def transitions(self) -> int:
        """How many times ``healthy`` changed."""
        return self._transitions

    def step(self, ok: bool, detail: str) -> bool:
        """Apply one check result; True when it changed ``healthy``."""
        with self._lock:
            self._detail, self._checked_at = detail, self._clock()
            if not self._known:
                self._known, self._against = True, 0
                return self._turn(ok)
            if ok == self._healthy:
                self._against = 0
                return False
            self._against += 1
            if self._against < (self.rise if ok else self.fall):
                return False
            self._against = 0
            return self._turn(ok)

    def _turn(self, healthy: bool) -> bool:
        if healthy == self._healthy:
            return False
        self._healthy = healthy
        self._transitions += 1
        level, word = (logging.INFO, "healthy") if healthy else (logging.WARNING, "unhealthy")
        log.log(level, "health check: now %s (%s)", word, self._detail)
        return True

    def check_once(self) -> bool:
        """Run the check once and apply its result; True when ``healthy`` changed."""
        if self._check is None:
            return False
        return self.step(*_guarded(self._check))

    def start(self) -> None:
        """Check now, then every ``interval`` seconds, in a daemon thread (once; idempotent)."""
        if self.spec is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eipha-health")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one check's timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(MAX_CHECK_TIMEOUT + 1.0)
            self._thread = None

    def _run(self) -> None:
        assert self.spec is not None
        while True:
            began = time.monotonic()
            self.check_once()
            if self._stop.wait(max(0.0, began + self.spec.interval - time.monotonic())):
                return


def _guarded(probe: Callable[[], Result]) -> Result:
    """A probe's result, or a failure if it raised (a thread must not die of one bug)."""
    try:
        return probe()
    except Exception as exc:
        log.exception("probe failed")
        return False, f"probe failed: {exc!r}"


# --------------------------------------------------------------------------- quorum


@dataclass(frozen=True)
class QuorumTarget:
    """One quorum target: ``port`` None means ICMP echo, else TCP connect."""

    address: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> QuorumTarget:
        """``A.B.C.D`` or ``A.B.C.D:PORT``; ValueError otherwise (the config checked it)."""
        address, colon, port = text.partition(":")
        ipaddress.IPv4Address(address)  # ValueError on anything else
        if not colon:
            return cls(address)
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise ValueError(f"{text!r}: the port must be 1 to 65535")
        return cls(address, int(port))

    def __str__(self) -> str:
        return self.address if self.port is None else f"{self.address}:{self.port}"


def default_gateway(route_file: Path = ROUTE_FILE) -> str | None:
    """The IPv4 default gateway: the first ``00000000`` destination with RTF_GATEWAY set."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        gateway = _gateway_of(line.split())
        if gateway is not None:
            return gateway
    return None


def _gateway_of(fields: list[str]) -> str | None:
    """The gateway of one route line (Iface Destination Gateway Flags ...), if a default."""
    try:
        destination, gateway, flags = fields[1], int(fields[2], 16), int(fields[3], 16)
    except (IndexError, ValueError):
        return None
    if destination != "00000000" or not flags & RTF_GATEWAY or not 0 <= gateway <= 0xFFFFFFFF:
        return None
    return socket.inet_ntoa(struct.pack("<I", gateway))  # the kernel prints it little-endian


def probe_target(target: QuorumTarget, timeout: float = PROBE_TIMEOUT) -> Result:
    """ICMP echo or TCP connect to ``target``; never raises."""
    if target.port is None:
        return icmp_echo(target.address, timeout)
    return tcp_connect(target.address, target.port, timeout)


def tcp_connect(address: str, port: int, timeout: float = PROBE_TIMEOUT) -> Result:
    """Success only for a completed connect (a refusal does not count; see the module)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True, "connected"
    except TimeoutError:
        return False, f"no answer in {timeout:g} s"
    except ConnectionRefusedError:
        return False, "connection refused"
    except OSError as exc:
        return False, (exc.strerror or str(exc)).lower()


ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request (type 8, code 0) with its checksum."""
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    total = checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, total, ident, seq) + payload


def _is_reply(icmp: bytes, ident: int | None, seq: int, payload: bytes) -> bool:
    """Whether ``icmp`` (header onwards) is the echo reply to our request. ``ident`` None:
    an unprivileged socket, where the kernel sets the id and only hands us our replies."""
    if len(icmp) < 8:
        return False
    kind, _code, _sum, their_ident, their_seq = struct.unpack("!BBHHH", icmp[:8])
    matches = kind == ICMP_ECHO_REPLY and their_seq == seq and icmp[8:] == payload
    return matches and (ident is None or their_ident == ident)


def open_icmp_socket() -> tuple[socket.socket, bool]:
    """(socket, raw): an unprivileged ICMP socket if allowed, else a raw one. OSError when
    neither can be opened (``net.ipv4.ping_group_range`` excludes us and no CAP_NET_RAW)."""
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), False
    except OSError:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), True


def icmp_echo(address: str, timeout: float = PROBE_TIMEOUT) -> Result:
    """Send one echo request to ``address`` and wait ``timeout`` s for its reply. Never
    raises: any OSError is no answer."""
    try:
        sock, raw = open_icmp_socket()
    except OSError as exc:
        why = exc.strerror or str(exc)
        return False, f"cannot open an ICMP socket ({why}; needs ping_group_range or CAP_NET_RAW)"
    with sock:
        try:
            return _echo(sock, raw, address, timeout)
        except OSError as exc:
            return False, (exc.strerror or str(exc)).lower()


def _echo(sock: socket.socket, raw: bool, address: str, timeout: float) -> Result:
    ident, seq = struct.unpack("!HH", os.urandom(4))
    payload = b"eipha" + os.urandom(11)
    sock.sendto(echo_request(ident, seq, payload), (address, 0))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            packet, source = sock.recvfrom(2048)
        except TimeoutError:
            break
        icmp = packet[(packet[0] & 0x0F) * 4 :] if raw and packet else packet
        if source[0] == address and _is_reply(icmp, ident if raw else None, seq, payload):
            return True, "echo reply"
    return False, f"no echo reply in {timeout:g} s"


class Quorum:
    """Whether the quorum is reached: any target answered within the last ``window`` s.

    ``targets`` are ``A.B.C.D`` or ``A.B.C.D:PORT`` (empty: the default gateway, read from
    ``route_file`` each round). ``probe`` replaces the real ICMP/TCP probe (tests)."""

    def __init__(
        self,
        targets: Sequence[str],
        interval: float,
        window: float,
        *,
        probe: Callable[[QuorumTarget], Result] = probe_target,
        clock: Clock = time.monotonic,
        route_file: Path = ROUTE_FILE,
    ) -> None:
        self.targets = tuple(QuorumTarget.parse(text) for text in targets)
        self.interval, self.window = interval, window
        self._probe, self._clock, self._route_file = probe, clock, route_file
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._answered_at: float | None = None
        self._answered_by = ""
        self._detail = "not probed yet"

    def ok_at(self, now: float) -> bool:
        """Whether some target answered within ``window`` seconds before ``now``."""
        answered = self._answered_at
        return answered is not None and now - answered <= self.window

    @property
    def ok(self) -> bool:
        return self.ok_at(self._clock())

    @property
    def detail(self) -> str:
        """One line for ``--status`` and the logs: who answered when, or why nobody did."""
        now, answered = self._clock(), self._answered_at
        if answered is None or (self._detail and not self.ok_at(now)):
            return self._detail
        return f"{self._answered_by} answered {now - answered:.1f} s ago"

    def step(self, ok: bool, now: float, detail: str = "", by: str = "") -> None:
        """Apply one round: ``ok`` when target ``by`` answered at ``now``; else ``detail``
        says why nobody did."""
        with self._lock:
            was = self.ok_at(now)
            if ok:
                self._answered_at, self._answered_by = now, by or "a target"
            self._detail = "" if ok else (detail or "no answer")
            if self.ok_at(now) != was:
                level, word = (logging.WARNING, "lost") if was else (logging.INFO, "reached")
                log.log(level, "quorum %s: %s", word, self.detail)

    def current_targets(self) -> tuple[QuorumTarget, ...]:
        """The configured targets, or the default gateway now (none without a route)."""
        if self.targets:
            return self.targets
        gateway = default_gateway(self._route_file)
        return (QuorumTarget(gateway),) if gateway is not None else ()

    def probe_once(self) -> None:
        """One round: probe the targets in order until one answers, then :meth:`step`."""
        targets = self.current_targets()
        if not targets:
            self.step(False, self._clock(), "no default route; the quorum cannot be reached")
            return
        failures: list[str] = []
        for target in targets:
            ok, why = _guarded(functools.partial(self._probe, target))
            if ok:
                self.step(True, self._clock(), by=str(target))
                return
            failures.append(f"{target}: {why}")
            if self._stop.is_set():
                break
        self.step(False, self._clock(), "no answer from " + "; ".join(failures))

    def start(self) -> None:
        """Probe now, then every ``interval`` seconds, in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eipha-quorum")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one probe's timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT + 1.0)
            self._thread = None

    def _run(self) -> None:
        while True:
            began = time.monotonic()
            self.probe_once()
            if self._stop.wait(max(0.0, began + self.interval - time.monotonic())):
                return
