"""Authenticated heartbeat datagrams between peer monitors (docs/monitor.md).

Wire format, one UDP datagram of at most :data:`MAX_DATAGRAM` (1024) bytes::

    MAGIC (6 bytes, b"EIPHA1") | TAG (32 bytes) | BODY (UTF-8 JSON)

- ``MAGIC`` names the format and its version; a new layout gets a new magic.
- ``BODY`` is compact JSON (``separators=(",", ":")``, sorted keys, no NaN/Infinity) of exactly
  these fields: ``node`` (str, the sender's node name), ``boot_id`` (str, random per daemon
  start), ``seq`` (int >= 0, +1 per datagram of one boot), ``sent_at`` (number, the sender's
  wall clock in seconds), ``healthy`` (bool), ``holding`` (list of str: the EIPs the sender
  *claims* now, i.e. its last decision's ``hold``, not what EC2 says) and ``leaving`` (bool).
- ``TAG`` = HMAC-SHA256(key, MAGIC + BODY), compared in constant time. The key is shared by
  every node of the pair and read with :func:`load_key`.

:class:`Receiver` checks, in this order, and names the first failure as a
:class:`Rejection` ``reason``: ``size`` (empty or larger than 1024 bytes), ``magic``, ``tag``
(forged, corrupted, truncated or another key: nothing unauthenticated is ever parsed),
``json``, ``schema`` (missing, extra, duplicate or wrong-typed fields; booleans are not
numbers), ``unknown-node`` (not a configured peer, or our own name), ``stale`` (``sent_at``
more than ``max_skew`` seconds from our wall clock, either way) and ``replay`` (a ``seq`` not
above the last accepted one of the same ``boot_id``, or a new ``boot_id`` whose ``sent_at`` is
not newer than the last accepted datagram of that node). It never raises on any bytes.

Standard library only; importing this module only defines things.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from eipha.clock import Clock
from eipha.errors import NotConfigured, PermissionDenied

MAGIC: Final = b"EIPHA1"
TAG_SIZE: Final = 32
MAX_DATAGRAM: Final = 1024
MIN_KEY_BYTES: Final = 32
MAX_KEY_FILE: Final = 64 * 1024  # a key is 32 to a few hundred bytes
MAX_SEQ: Final = 2**63 - 1

Reason: TypeAlias = Literal[
    "size", "magic", "tag", "json", "schema", "unknown-node", "stale", "replay"
]
REASONS: Final[tuple[Reason, ...]] = (
    "size",
    "magic",
    "tag",
    "json",
    "schema",
    "unknown-node",
    "stale",
    "replay",
)
FIELDS: Final = frozenset({"node", "boot_id", "seq", "sent_at", "healthy", "holding", "leaving"})
_HEADER = len(MAGIC) + TAG_SIZE


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Heartbeat:
    """One peer's word: who, which boot, which datagram, when, and what it claims."""

    node: str
    boot_id: str
    seq: int
    sent_at: float
    healthy: bool
    holding: tuple[str, ...]
    leaving: bool


@dataclass(frozen=True)
class Rejection:
    """Why a datagram was ignored. ``detail`` is one short phrase for a rate-limited log line;
    it never holds key bytes nor raw datagram bytes."""

    reason: Reason
    detail: str
    source: str | None = None


class _Reject(Exception):
    """Internal: carries a reason and a detail out of the checking steps."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason: Reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- encoding


def encode(hb: Heartbeat, key: bytes) -> bytes:
    """The signed datagram for ``hb``. Raises :class:`ValueError` if it would exceed
    :data:`MAX_DATAGRAM` bytes or ``sent_at`` is not finite."""
    body = _body(hb)
    datagram = MAGIC + _tag(key, body) + body
    if len(datagram) > MAX_DATAGRAM:
        raise ValueError(
            f"heartbeat of {hb.node} is {len(datagram)} bytes, more than {MAX_DATAGRAM} "
            f"(too many or too long EIP names in holding)"
        )
    return datagram


def _body(hb: Heartbeat) -> bytes:
    data = {
        "node": hb.node,
        "boot_id": hb.boot_id,
        "seq": hb.seq,
        "sent_at": float(hb.sent_at),
        "healthy": hb.healthy,
        "holding": list(hb.holding),
        "leaving": hb.leaving,
    }
    text = json.dumps(
        data, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, MAGIC + body, hashlib.sha256).digest()


class Sender:
    """Makes this node's datagrams: one ``boot_id`` per daemon start, ``seq`` 0, 1, 2, ..."""

    def __init__(self, node: str, key: bytes, boot_id: str | None = None) -> None:
        self.node = node
        self.boot_id = boot_id if boot_id is not None else secrets.token_hex(8)
        self.seq = 0
        self._key = key

    def __repr__(self) -> str:
        return f"Sender(node={self.node!r}, boot_id={self.boot_id!r}, seq={self.seq})"

    def next(self, healthy: bool, holding: Iterable[str], leaving: bool, now: float) -> bytes:
        """The next datagram (``holding`` is sent sorted); ``seq`` moves on only on success."""
        hb = Heartbeat(
            node=self.node,
            boot_id=self.boot_id,
            seq=self.seq,
            sent_at=float(now),
            healthy=healthy,
            holding=tuple(sorted(holding)),
            leaving=leaving,
        )
        datagram = encode(hb, self._key)
        self.seq += 1
        return datagram


# --------------------------------------------------------------------------- receiving


class Receiver:
    """Checks datagrams from the configured ``peers`` (pure: no sockets, no logging).

    ``counts`` holds the rejections per reason, ``accepted`` the accepted datagrams and
    ``latest`` the last accepted heartbeat of each peer. ``me``, if given, is never a peer.
    """

    def __init__(
        self,
        key: bytes,
        peers: Iterable[str],
        max_skew: float,
        clock: Clock = time.time,
        *,
        me: str | None = None,
    ) -> None:
        self.me = me
        self.peers = frozenset(peers) - {me}
        self.max_skew = max_skew
        self.clock = clock
        self.counts: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.accepted = 0
        self.latest: dict[str, Heartbeat] = {}
        self._key = key

    def __repr__(self) -> str:
        return f"Receiver(peers={sorted(self.peers)!r}, accepted={self.accepted})"

    def accept(self, datagram: bytes, source: str | None = None) -> Heartbeat | Rejection:
        """The heartbeat if ``datagram`` passes every check, else why not; never raises."""
        try:
            hb = self._check(datagram)
        except _Reject as exc:
            self.counts[exc.reason] += 1
            return Rejection(exc.reason, exc.detail, source)
        self.latest[hb.node] = hb
        self.accepted += 1
        return hb

    def _check(self, datagram: bytes) -> Heartbeat:
        body = _authenticated(datagram, self._key)
        hb = _heartbeat(_parse(body))
        self._check_node(hb.node)
        self._check_fresh(hb.sent_at)
        self._check_newer(hb)
        return hb

    def _check_node(self, node: str) -> None:
        if node == self.me:
            raise _Reject("unknown-node", "carries our own node name (a loop or a copied config)")
        if node not in self.peers:
            raise _Reject("unknown-node", f"from {_clip(node)}, not a configured peer")

    def _check_fresh(self, sent_at: float) -> None:
        skew = sent_at - self.clock()
        if abs(skew) > self.max_skew:
            detail = f"sent_at {skew:+.1f} s from our clock (max {self.max_skew:g} s)"
            raise _Reject("stale", detail)

    def _check_newer(self, hb: Heartbeat) -> None:
        last = self.latest.get(hb.node)
        if last is None:
            return
        if hb.boot_id == last.boot_id:
            if hb.seq <= last.seq:
                raise _Reject("replay", f"{hb.node} seq {hb.seq}, already had {last.seq}")
        elif hb.sent_at <= last.sent_at:
            raise _Reject("replay", f"{hb.node} boot {_clip(hb.boot_id)} older than the last one")


def _authenticated(datagram: bytes, key: bytes) -> bytes:
    """The body, if size, magic and tag are right."""
    if not datagram or len(datagram) > MAX_DATAGRAM:
        raise _Reject("size", f"{len(datagram)} bytes, want 1 to {MAX_DATAGRAM}")
    if datagram[: len(MAGIC)] != MAGIC:
        raise _Reject("magic", "not an eipha heartbeat (bad magic)")
    tag, body = datagram[len(MAGIC) : _HEADER], datagram[_HEADER:]
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise _Reject("tag", "bad tag: forged, corrupted or signed with another key")
    return bytes(body)


def _parse(body: bytes) -> Any:
    try:
        return json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise _Reject("json", f"body is not UTF-8 JSON ({type(exc).__name__})") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Reject("schema", "duplicate field")
    return result


def _no_constant(name: str) -> float:
    raise _Reject("json", f"{name} is not a JSON number")


def _heartbeat(data: Any) -> Heartbeat:
    """A :class:`Heartbeat` from parsed JSON, checking every field's type."""
    if not isinstance(data, dict):
        raise _Reject("schema", "body is not a JSON object")
    if data.keys() != FIELDS:
        raise _Reject("schema", _field_problem(set(data)))
    return Heartbeat(
        node=_string(data, "node"),
        boot_id=_string(data, "boot_id"),
        seq=_seq(data["seq"]),
        sent_at=_time(data["sent_at"]),
        healthy=_flag(data, "healthy"),
        holding=_names(data["holding"]),
        leaving=_flag(data, "leaving"),
    )


def _field_problem(keys: set[str]) -> str:
    missing, extra = sorted(FIELDS - keys), sorted(keys - FIELDS)
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(_clip(k, 20) for k in extra[:3])}"] if extra else []
    return "; ".join(parts)


def _string(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise _Reject("schema", f"{name} is not a non-empty string")
    return value


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise _Reject("schema", f"{name} is not true or false")
    return value


def _seq(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise _Reject("schema", "seq is not an integer >= 0")
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject("schema", "sent_at is not a number")
    try:
        seconds = float(value)
    except OverflowError:
        raise _Reject("schema", "sent_at is out of range") from None
    if not math.isfinite(seconds):
        raise _Reject("schema", "sent_at is not finite")
    return seconds


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise _Reject("schema", "holding is not a list of EIP names")
    return tuple(value)


def _clip(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --------------------------------------------------------------------------- the key


def load_key(path: str) -> bytes:
    """The shared key: the bytes of ``path`` (a text key stripped of surrounding whitespace,
    see :func:`_key_bytes`), at least :data:`MIN_KEY_BYTES` of them. The file must be a
    regular file (not a symlink) owned by the user running eipha, with no group or other
    permission bits. Raises
    :class:`NotConfigured` (missing, not a file, short) or :class:`PermissionDenied`
    (symlink, owner, mode, unreadable); no message ever holds key bytes."""
    fd = _open_key(path)
    try:
        _check_key_file(path, os.fstat(fd))
        raw = os.read(fd, MAX_KEY_FILE + 1)
    except OSError as exc:
        raise NotConfigured(f"cannot read monitor key file {path}", exc.strerror) from None
    finally:
        os.close(fd)
    return _check_key(path, raw)


def _open_key(path: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        raise NotConfigured(f"monitor key file {path} not found", _create(path)) from None
    except OSError as exc:
        raise _open_error(path, exc) from None


def _open_error(path: str, exc: OSError) -> NotConfigured | PermissionDenied:
    if exc.errno == errno.ELOOP:
        return PermissionDenied(
            f"monitor key file {path} is a symlink",
            "fix: point monitor.key_file at the file itself",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(
            f"cannot read monitor key file {path}", "run eipha as the user who owns it"
        )
    return NotConfigured(f"cannot read monitor key file {path}", exc.strerror)


def _check_key_file(path: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotConfigured(
            f"monitor key file {path} is not a regular file",
            "fix: point monitor.key_file at a file",
        )
    me = os.geteuid()
    if st.st_uid != me:
        raise PermissionDenied(
            f"monitor key file {path} is owned by uid {st.st_uid}, not by uid {me} running eipha",
            f"fix: chown {me} {path}",
        )
    if st.st_mode & 0o077:
        raise PermissionDenied(
            f"monitor key file {path} is open to group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            f"fix: chmod 600 {path}",
        )


def _check_key(path: str, raw: bytes) -> bytes:
    if len(raw) > MAX_KEY_FILE:
        raise NotConfigured(
            f"monitor key file {path} is larger than {MAX_KEY_FILE // 1024} KiB", _create(path)
        )
    key = _key_bytes(raw)
    if len(key) < MIN_KEY_BYTES:
        raise NotConfigured(
            f"monitor key file {path} holds {len(key)} bytes, fewer than {MIN_KEY_BYTES}",
            _create(path),
        )
    return key


def _key_bytes(raw: bytes) -> bytes:
    """A text key (hex, base64: printable ASCII once stripped) loses its surrounding
    whitespace, such as the newline an editor adds; a binary key is used as it is, so that
    ``head -c 32 /dev/urandom`` never comes out short when it happens to end in a space."""
    stripped = raw.strip()
    return stripped if all(0x21 <= byte <= 0x7E for byte in stripped) else raw


def _create(path: str) -> str:
    return (
        f"fix: head -c {MIN_KEY_BYTES} /dev/urandom > {path} && chmod 600 {path}, "
        "then copy it to every node"
    )
