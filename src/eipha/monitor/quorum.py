"""The peer monitor's quorum (docs/monitor.md): whether a quorum target answered recently.

:class:`Quorum` probes the quorum targets (by default the default gateway) every
``interval`` seconds in a daemon thread and says whether any of them answered within the
last ``window`` seconds. It keeps its state behind a :meth:`~Quorum.step` method that
applies one round, so tests drive it without threads or sockets; the thread only calls the
real probe and then :meth:`~Quorum.step`. The local health check is
:mod:`eipha.monitor.health`.

Choices:

- Quorum targets are ``A.B.C.D`` (ICMP echo: an unprivileged ICMP socket if
  ``net.ipv4.ping_group_range`` allows it, else a raw socket, which needs CAP_NET_RAW) or
  ``A.B.C.D:PORT`` (TCP). Only a completed TCP connect counts: a refusal proves the host is
  up, but not that the path to the service is, and strict is simpler to reason about. A
  probe that raises is a failure.
- An empty target list means the default gateway, read from /proc/net/route each round (it
  may change); without a default route the quorum is never reached, and ``detail`` says so.

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eipha.clock import Clock
from eipha.monitor.probe_result import Result, guarded

log = logging.getLogger(__name__)

ROUTE_FILE = Path("/proc/net/route")
PROBE_TIMEOUT = 1.0  # seconds; one ICMP echo or TCP connect to a quorum target
RTF_GATEWAY = 0x0002


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
            ok, why = guarded(functools.partial(self._probe, target))
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
