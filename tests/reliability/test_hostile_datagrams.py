"""Hostile datagrams at a running peer monitor (docs/monitor.md).

Two real ``eipha monitor`` processes on loopback (lb-a on 127.0.0.11, lb-b on 127.0.0.21)
keep each other alive against the simulated region while this test sends more than 10,000
hostile datagrams at lb-a's UDP port from a plain socket: random bytes, empty and oversized
ones, truncated, extended and bit-flipped copies of valid heartbeats, forged tags, another
key, unknown nodes, stale and future timestamps, signed bodies that are not JSON or break
the schema, and replays of lb-b's real heartbeats.

The real heartbeats are captured by a third configured node, lb-c (127.0.0.31): a plain
socket of this test that never answers, so both monitors consider it dead from the start
(it has no home EIP, so that changes nothing). Each monitor sends the same bytes to every
peer, so lb-c sees exactly what lb-a receives from lb-b.

Every datagram's rejection reason is known when it is made; the test asserts that lb-a
counted exactly those (``eipha monitor --status --json``), that the kernel dropped none of
them (``/proc/net/udp``), that lb-a and lb-b still call each other healthy, that nothing
was taken over and no EIP moved in EC2, and that lb-a's log holds one line per reason,
not one per datagram. Then a blast, as fast as one process sends, for longer than
``dead_after``: the kernel drops what lb-a cannot read, and every datagram sent is either
counted or dropped, but none of lb-b's heartbeats may be lost (lb-a reads each peer on a
socket connected to it), so again the pair must not split.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Lab, free_port, monitor_status

ADDRESS = {"lb-a": "127.0.0.11", "lb-b": "127.0.0.21", "lb-c": "127.0.0.31"}
HOME = {"web-a": ("lb-a", "10.0.0.11"), "web-b": ("lb-b", "10.0.0.21")}
MAGIC = b"EIPHA1"
INTERVAL, DEAD_AFTER = 0.5, 2.0
MAX_SKEW = max(5.0, DEAD_AFTER)  # docs: sent_at within max(5 s, dead_after) of our clock
REASONS = ("size", "magic", "tag", "json", "schema", "unknown-node", "stale", "replay")
MUTATIONS = ("Associate", "Disassociate", "Release", "Allocate")
FLOOD = 2 * DEAD_AFTER  # seconds over which the paced flood is spread
BATCH = 48  # datagrams sent before waiting for lb-a to read them
BLAST = 2 * DEAD_AFTER  # seconds of sending as fast as one process can


def sign(key: bytes, body: bytes) -> bytes:
    """The wire format, written out independently of eipha: magic, HMAC(magic + body), body."""
    return MAGIC + hmac.new(key, MAGIC + body, hashlib.sha256).digest() + body


def body_of(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def udp_socket_stats(address: str, port: int) -> tuple[int, int]:
    """(bytes waiting to be read, datagrams the kernel dropped) summed over the UDP sockets
    bound to ``address:port`` (the monitor may hold more than one), from /proc/net/udp."""
    a, b, c, d = (int(x) for x in address.split("."))
    local = f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}"
    rows = [line.split() for line in Path("/proc/net/udp").read_text().splitlines()[1:]]
    mine = [cols for cols in rows if cols[1] == local]
    assert mine, f"no UDP socket on {address}:{port}"
    return sum(int(c[4].split(":")[1], 16) for c in mine), sum(int(c[-1]) for c in mine)


# --------------------------------------------------------------------------- the pair


class Sniffer:
    """lb-c: keeps every datagram lb-b sends it, with the time it arrived."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ADDRESS["lb-c"], port))
        self.sock.settimeout(0.2)
        self.heard: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, (source, _) = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if source == ADDRESS["lb-b"]:
                self.heard.append((time.monotonic(), data))

    def settled(self, age: float) -> list[bytes]:
        """lb-b's heartbeats that lb-a must have taken in by now: older than ``age`` and
        followed by a newer one."""
        now = time.monotonic()
        return [d for t, d in self.heard[:-1] if now - t > age]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class Pair:
    lab: Lab
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = os.urandom(32)
        self.key_file = self.lab.tmp / "monitor.key"
        self.key_file.write_bytes(self.key)
        self.key_file.chmod(0o600)
        self.sniffer = Sniffer(self.port)

    def config(self, node: str) -> Path:
        nodes = {
            n.name: {"instance_id": n.instance_id, "address": ADDRESS[n.name]}
            for n in self.lab.world.nodes.values()
        }
        nodes["lb-c"] = {"address": ADDRESS["lb-c"]}
        return self.lab.config(
            node,
            nodes=nodes,
            monitor={
                "port": self.port,
                "key_file": str(self.key_file),
                "interval": INTERVAL,
                "dead_after": DEAD_AFTER,
                "init_dead": DEAD_AFTER,
                "min_hold": 2.0,
                "quorum": [f"127.0.0.1:{self.lab.region.port}"],
            },
        )

    def env(self, node: str) -> dict[str, str]:
        env = self.lab.env(node, self.config(node))
        run = self.lab.tmp / f"run-{node}"
        run.mkdir(exist_ok=True)
        env["EIPHA_RUN_DIR"] = str(run)
        return env

    def log_path(self, node: str) -> Path:
        return self.lab.tmp / f"monitor-{node}.log"

    def start(self, node: str) -> None:
        with open(self.log_path(node), "ab") as log:
            self.procs[node] = subprocess.Popen(
                [sys.executable, "-m", "eipha", "monitor"],
                env=self.env(node),
                stdout=log,
                stderr=log,
            )

    def log(self, node: str) -> list[str]:
        return self.log_path(node).read_text().splitlines()

    def snapshot(self, node: str) -> dict[str, Any]:
        """What the monitor wrote for --status (cheap enough to read many times)."""
        path = self.lab.tmp / f"run-{node}" / "monitor.json"
        document: dict[str, Any] = json.loads(path.read_text())
        return document

    def status(self, node: str) -> dict[str, Any]:
        """``eipha monitor --status --json``, the real command."""
        return monitor_status(self.env(node))

    def wait_settled(self) -> None:
        """Both monitors up, calling each other healthy, each holding its home EIP."""
        end = time.monotonic() + 20
        while True:
            try:
                a, b = self.snapshot("lb-a"), self.snapshot("lb-b")
            except (OSError, ValueError):
                a = b = {}
            if (
                a.get("holding") == ["web-a"]
                and b.get("holding") == ["web-b"]
                and a["peers"]["lb-b"]["verdict"] == "healthy"
                and b["peers"]["lb-a"]["verdict"] == "healthy"
                and all(a["eips"][e]["where"].endswith(ip) for e, (_, ip) in HOME.items())
                and all(b["eips"][e]["where"].endswith(ip) for e, (_, ip) in HOME.items())
                and where(self.lab) == HOME
                and len(self.sniffer.settled(INTERVAL)) >= 2
            ):
                return
            for node, proc in self.procs.items():
                assert proc.poll() is None, f"{node} exited: {self.log(node)}"
            assert time.monotonic() < end, f"the pair did not settle: {a} {b}"
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.sniffer.close()


@pytest.fixture
def pair(lab: Lab) -> Iterator[Pair]:
    p = Pair(lab)
    try:
        p.start("lb-b")
        p.start("lb-a")
        p.wait_settled()
        yield p
    finally:
        p.stop()
        for node in p.procs:
            assert not any("Traceback" in line for line in p.log(node)), p.log(node)


def where(lab: Lab) -> dict[str, tuple[str | None, str | None]]:
    return {eip: lab.placement(eip) for eip in HOME}


# --------------------------------------------------------------------------- the datagrams


@dataclass
class Forger:
    """Makes hostile datagrams, each with the reason lb-a must give for rejecting it."""

    key: bytes
    sniffer: Sniffer
    rng: random.Random

    def fields(self, **override: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "node": "lb-b",
            "boot_id": self.rng.randbytes(8).hex(),
            "seq": self.rng.randrange(0, 10**6),
            "sent_at": time.time(),
            "healthy": self.rng.random() < 0.5,
            "holding": self.rng.choice([[], ["web-a"], ["web-b"], ["web-a", "web-b"]]),
            "leaving": self.rng.random() < 0.5,
        }
        fields.update(override)
        return fields

    def captured(self) -> list[tuple[float, bytes]]:
        """lb-b's real heartbeats that lb-a has certainly taken in (an interval old, and a
        newer one seen since) and that are still fresh (well inside the allowed skew)."""
        now = time.monotonic()
        heard = self.sniffer.heard[:-1]
        return [(t, d) for t, d in heard if INTERVAL < now - t < MAX_SKEW - 2.0]

    def valid(self) -> bytes:
        """A validly signed heartbeat (a real one of lb-b's, or one made here)."""
        captured = self.captured()
        if captured and self.rng.random() < 0.5:
            return self.rng.choice(captured)[1]
        return sign(self.key, body_of(self.fields()))

    def real_boot(self) -> tuple[str, int]:
        """lb-b's boot id, and a seq lb-a has certainly seen."""
        _, data = self.captured()[-1]
        body = json.loads(data[len(MAGIC) + 32 :])
        return body["boot_id"], body["seq"]

    # each maker returns (datagram, reason)

    def random_bytes(self) -> tuple[bytes, str]:
        data = self.rng.randbytes(self.rng.randint(1, 1024))
        return data, "tag" if data.startswith(MAGIC) else "magic"

    def magic_then_junk(self) -> tuple[bytes, str]:
        return MAGIC + self.rng.randbytes(self.rng.randint(0, 1018)), "tag"

    def empty(self) -> tuple[bytes, str]:
        return b"", "size"

    def oversized(self) -> tuple[bytes, str]:
        size = self.rng.choice([1025, 1026, 2047, 2048, 2049, 4096, self.rng.randint(1025, 9000)])
        if self.rng.random() < 0.5:  # a valid heartbeat padded out
            data = self.valid()
            return data + b" " * (size - len(data)), "size"
        return self.rng.randbytes(size), "size"

    def truncated(self) -> tuple[bytes, str]:
        data = self.valid()
        cut = data[: self.rng.randint(1, len(data) - 1)]
        return cut, "magic" if len(cut) < len(MAGIC) else "tag"

    def extended(self) -> tuple[bytes, str]:
        tail = self.rng.choice(
            [b"\n", b" ", b"\0", b"}", self.rng.randbytes(self.rng.randint(1, 400))]
        )
        data = self.valid() + tail
        return data, "size" if len(data) > 1024 else "tag"

    def bit_flipped(self) -> tuple[bytes, str]:
        data = bytearray(self.valid())
        bits = self.rng.sample(range(len(data) * 8), self.rng.randint(1, 3))
        for bit in bits:
            data[bit // 8] ^= 1 << (bit % 8)
        return bytes(data), "magic" if min(bits) < len(MAGIC) * 8 else "tag"

    def forged_tag(self) -> tuple[bytes, str]:
        body = body_of(self.fields())
        tag = self.rng.choice(
            [
                bytes(32),
                self.rng.randbytes(32),
                hashlib.sha256(MAGIC + body).digest(),  # a plain hash, not an HMAC
                hmac.new(b"", MAGIC + body, hashlib.sha256).digest(),
                hmac.new(self.key, body, hashlib.sha256).digest(),  # without the magic
                sign(self.key, body_of(self.fields()))[6:38],  # another body's tag
            ]
        )
        return MAGIC + tag + body, "tag"

    def wrong_key(self) -> tuple[bytes, str]:
        key = bytearray(self.key)
        if self.rng.random() < 0.5:
            key[self.rng.randrange(len(key))] ^= 1 << self.rng.randrange(8)
        else:
            key = bytearray(self.rng.randbytes(32))
        return sign(bytes(key), body_of(self.fields())), "tag"

    def unknown_node(self) -> tuple[bytes, str]:
        node = self.rng.choice(
            [
                "lb-a",  # our own name: a loop, or a copied config
                "LB-B",
                "lb-b ",
                " lb-b",
                "lb-b\u200b",
                "lb\u2010b",
                "lb-bb",
                "lb-d",
                "\u202elb-b",
                "x" * self.rng.randint(1, 300),
                "".join(
                    chr(self.rng.randint(0x20, 0x2FFF)) for _ in range(self.rng.randint(1, 20))
                ),
            ]
        )
        if node in ("lb-b", "lb-c"):
            node += "!"
        return sign(self.key, body_of(self.fields(node=node))), "unknown-node"

    def stale(self) -> tuple[bytes, str]:
        off = self.rng.choice([MAX_SKEW + 2, 60.0, 3600.0, 86400.0 * 365, 1e9])
        sent_at = time.time() + self.rng.choice([-1, 1]) * off
        if self.rng.random() < 0.1:
            sent_at = self.rng.choice([0, -1.0, 1e300, -1e300, 2**53])
        return sign(self.key, body_of(self.fields(sent_at=sent_at))), "stale"

    def not_json(self) -> tuple[bytes, str]:
        good = body_of(self.fields())
        body = self.rng.choice(
            [
                b"",
                good[: self.rng.randint(1, len(good) - 1)],
                b"\xff" + good,
                good.replace(b"lb-b", b"lb-\xc3"),
                b"\xef\xbb\xbf" + good,  # a UTF-8 byte order mark
                good.replace(b'"leaving":', b'"leaving":NaN,"x":'),
                good[:-1] + b',"z":Infinity}',
                b"[" * self.rng.randint(1, 900),
                b"{'node': 'lb-b'}",
                self.rng.randbytes(self.rng.randint(0, 900)) + b"\x80",  # never UTF-8
            ]
        )
        return sign(self.key, body), "json"

    def bad_schema(self) -> tuple[bytes, str]:
        fields = self.fields()
        rng = self.rng
        kind = rng.randrange(8)
        if kind == 0:
            del fields[rng.choice(sorted(fields))]
        elif kind == 1:
            fields[rng.choice(["extra", "Node", "seq ", "key", "tag"])] = rng.choice([1, "x", None])
        elif kind == 2:
            name = rng.choice(sorted(fields))
            wrong: dict[str, list[Any]] = {
                "node": ["", 1, None, ["lb-b"], True],
                "boot_id": ["", 5, None, {}],
                "seq": [-1, 2**63, 2**64, 1.5, "1", True, None, 10**400],
                "sent_at": ["now", True, None, [1], 10**400],
                "healthy": [1, 0, "true", None],
                "holding": ["web-b", [1], [""], {}, None, [None]],
                "leaving": [0, "false", None, []],
            }
            fields[name] = rng.choice(wrong[name])
        elif kind == 3:
            body = body_of(fields)
            return sign(self.key, body[:-1] + b',"seq":1}'), "schema"  # a duplicate field
        elif kind == 4:
            value = rng.choice([[], [fields], "lb-b", 7, None, True, 1.5])
            return sign(self.key, json.dumps(value).encode()), "schema"
        elif kind == 5:
            depth = rng.randint(2, 490)
            return sign(self.key, b"[" * depth + b"]" * depth), "schema"
        elif kind == 6:
            fields["sent_at"] = "1e400"
            body = body_of(fields).replace(b'"1e400"', b"1e400")  # a float that is infinite
            return sign(self.key, body), "schema"
        else:
            return sign(self.key, b"{}"), "schema"
        return sign(self.key, json.dumps(fields).encode()), "schema"

    def replay(self) -> tuple[bytes, str]:
        """lb-b's own words again: a real heartbeat resent, lb-b's boot with a seq already
        seen, or another boot older than lb-b's last word (leaving or unhealthy: what an
        attacker would want the peer to believe)."""
        choice = self.rng.randrange(3)
        if choice == 0:
            return self.rng.choice(self.captured())[1], "replay"
        boot, seen = self.real_boot()
        if choice == 1:
            fields = self.fields(boot_id=boot, seq=self.rng.randint(0, seen))
        else:
            fields = self.fields(sent_at=time.time() - self.rng.uniform(2.5, 3.5))
        return sign(self.key, body_of(fields)), "replay"


PLAN = {  # datagrams per kind: 11,300 in all
    "random_bytes": 1500,
    "magic_then_junk": 500,
    "empty": 200,
    "oversized": 300,
    "truncated": 1000,
    "extended": 800,
    "bit_flipped": 1500,
    "forged_tag": 800,
    "wrong_key": 800,
    "unknown_node": 700,
    "stale": 700,
    "not_json": 700,
    "bad_schema": 800,
    "replay": 1000,
}


def rejected(snapshot: dict[str, Any]) -> Counter[str]:
    return Counter({r: n for r, n in snapshot["counters"]["rejected"].items() if n})


@dataclass
class Watch:
    """What both monitors said while the flood went on."""

    pair: Pair
    looks: list[tuple[float, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def look(self) -> None:
        self.looks.append((time.time(), self.pair.snapshot("lb-a"), self.pair.snapshot("lb-b")))

    def assert_intact(self) -> None:
        """Every time: both monitors were still cycling (their state fresh), each called the
        other healthy and held only its home EIP, and nothing was ever taken over."""
        assert len(self.looks) >= 4 * DEAD_AFTER
        for at, a, b in self.looks:
            assert at - a["updated"] < DEAD_AFTER, a["updated"]
            assert at - b["updated"] < DEAD_AFTER, b["updated"]
            assert a["peers"]["lb-b"]["verdict"] == "healthy", a["peers"]
            assert b["peers"]["lb-a"]["verdict"] == "healthy", b["peers"]
            assert (a["holding"], b["holding"]) == (["web-a"], ["web-b"])
            assert a["counters"]["takeovers"] == b["counters"]["takeovers"] == 0


def assert_heard_every_heartbeat(pair: Pair, before: dict[str, Any], after: dict[str, Any]):
    """lb-a took in each heartbeat lb-b sent between two snapshots (lb-c saw the same ones),
    give or take one at each end, and nothing else: no hostile datagram was accepted."""
    sent = [
        t
        for _, d in pair.sniffer.heard
        if before["updated"] < (t := json.loads(d[38:])["sent_at"]) <= after["updated"]
    ]
    received = after["counters"]["received"] - before["counters"]["received"]
    assert len(sent) - 2 <= received <= len(sent) + 2, (received, len(sent))


TIMELESS = (  # kinds whose reason does not depend on when they arrive
    "random_bytes",
    "magic_then_junk",
    "empty",
    "oversized",
    "truncated",
    "extended",
    "bit_flipped",
    "forged_tag",
    "wrong_key",
    "unknown_node",
    "not_json",
    "bad_schema",
)


def paced_flood(pair: Pair, watch: Watch) -> Counter[str]:
    """Every kind of hostile datagram, 11,300 in all, spread over ``FLOOD`` seconds, each
    batch sent once lb-a has read the one before (so the kernel drops none). Returns how
    many lb-a must have rejected for each reason."""
    target = (ADDRESS["lb-a"], pair.port)
    forger = Forger(pair.key, pair.sniffer, random.Random(8))
    kinds = [kind for kind, n in PLAN.items() for _ in range(n)]
    forger.rng.shuffle(kinds)
    expected: Counter[str] = Counter()
    began = looked = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for start in range(0, len(kinds), BATCH):
            for kind in kinds[start : start + BATCH]:
                datagram, reason = getattr(forger, kind)()
                s.sendto(datagram, target)
                expected[reason] += 1
            end = time.monotonic() + 5
            while udp_socket_stats(*target)[0] > 0:
                assert time.monotonic() < end, "lb-a stopped reading its socket"
                time.sleep(0.0005)
            time.sleep(max(0.0, began + FLOOD * (start + BATCH) / len(kinds) - time.monotonic()))
            if time.monotonic() - looked > 0.25:
                looked = time.monotonic()
                watch.look()
    return expected


def blast(pair: Pair, watch: Watch) -> Counter[str]:
    """As fast as one process can send, for ``BLAST`` seconds: far more than lb-a can
    read, so the kernel drops most. Returns what was sent, by the reason it deserves."""
    target = (ADDRESS["lb-a"], pair.port)
    forger = Forger(pair.key, pair.sniffer, random.Random(9))
    pool = [getattr(forger, TIMELESS[i % len(TIMELESS)])() for i in range(3000)]
    sent: Counter[str] = Counter()
    began = looked = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while time.monotonic() - began < BLAST:
            for datagram, reason in pool:
                s.sendto(datagram, target)
                sent[reason] += 1
            if time.monotonic() - looked > 0.25:
                looked = time.monotonic()
                watch.look()
    end = time.monotonic() + 10
    while udp_socket_stats(*target)[0] > 0:
        assert time.monotonic() < end, "lb-a stopped reading its socket"
        time.sleep(0.01)
    return sent


def test_hostile_datagrams_are_rejected_counted_and_change_nothing(pair: Pair):
    lab, target = pair.lab, (ADDRESS["lb-a"], pair.port)
    # the test signs as the daemons do: a heartbeat lb-b really sent verifies
    _, real = pair.sniffer.heard[-1]
    assert sign(pair.key, real[38:]) == real

    # 1. paced: every datagram reaches lb-a, and each must be counted under its reason
    watch = Watch(pair)
    before = pair.status("lb-a")
    assert not rejected(before)
    log_before = len(pair.log("lb-a"))
    _, drops_before = udp_socket_stats(*target)
    mark = lab.region.mark()
    expected = paced_flood(pair, watch)
    assert sum(expected.values()) >= 10_000
    assert udp_socket_stats(*target)[1] == drops_before, "the kernel dropped datagrams"
    end = time.monotonic() + 10
    while rejected(pair.snapshot("lb-a")) != expected:
        assert time.monotonic() < end, f"counted {rejected(pair.snapshot('lb-a'))}, {expected=}"
        time.sleep(0.1)
    time.sleep(1.0)  # a last look: lb-b heard lb-a meanwhile
    watch.look()
    after = pair.status("lb-a")
    assert rejected(after) == expected
    assert_heard_every_heartbeat(pair, before, after)
    watch.assert_intact()
    # logged at a limited rate: one line per reason, nothing else, no key bytes
    lines = pair.log("lb-a")[log_before:]
    assert len(lines) == len(expected), lines
    assert all("rejected a heartbeat" in line for line in lines), lines

    # 2. a blast: what lb-a cannot read the kernel drops, but never lb-b's heartbeats,
    # which lb-a reads on a socket of its own
    watch = Watch(pair)
    before = after
    _, drops_before = udp_socket_stats(*target)
    sent = blast(pair, watch)
    time.sleep(1.0)
    watch.look()
    after = pair.status("lb-a")
    drops = udp_socket_stats(*target)[1] - drops_before
    counted = rejected(after) - rejected(before)
    assert all(counted[r] <= sent[r] for r in REASONS), (counted, sent)
    assert sum(sent.values()) == sum(counted.values()) + drops, (sent, counted, drops)
    assert_heard_every_heartbeat(pair, before, after)
    watch.assert_intact()
    assert len(pair.log("lb-a")) == log_before + len(lines)  # still within the minute

    assert all(p.poll() is None for p in pair.procs.values())
    assert not [a for a in lab.region.actions(mark) if a.startswith(MUTATIONS)]
    assert where(lab) == HOME
    assert pair.key.hex() not in "\n".join(pair.log("lb-a"))
    heard = after["counters"]["received"] - before["counters"]["received"]
    print(
        f"\npaced: {sum(expected.values())} datagrams, all counted: {dict(expected)}; "
        f"{len(lines)} log lines\nblast: sent {sum(sent.values())}, counted "
        f"{sum(counted.values())}, dropped by the kernel {drops}, "
        f"lb-b's heartbeats taken in {heard}"
    )
