"""Soak (root only): the peer monitor pair in the namespace lab under random heartbeat loss for
a long time, and what it cost. A benchmark, not a test: run it by hand.

    python bench/soak.py                      # 10 minutes of 10 % loss (about 11 minutes)
    python bench/soak.py --minutes 1 --json soak.json
    python bench/soak.py --loss 20 --interval 0.5 --dead-after 2

Two real monitors run in the lab's node namespaces with the README's timings (interval 1 s,
dead_after 5 s) and an ICMP quorum target. Each node's nftables output chain drops the given
share of the heartbeats it sends (``numgen random``) and counts them all; an AF_PACKET socket
in the other node's namespace timestamps every heartbeat that arrives, so the gaps between
heartbeats are measured where they are received, after the loss. Reported: takeovers and
failbacks (both must stay 0: exit 1 otherwise, or if an EIP is not home at the end),
heartbeats sent, lost, delivered, accepted and rejected per direction, the longest gap
between heartbeats, each monitor's CPU seconds, and the EC2 calls made during the soak.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.lab import Lab, Node, wait_for  # noqa: E402
from tests.system.test_monitor import configure, nft, start  # noqa: E402

from eipha.sim.netns import in_netns  # noqa: E402

PORT = 7694  # tests.system.test_monitor.configure's monitor.port
HOME = {"web-a": ("lb-a", "10.0.0.11"), "web-b": ("lb-b", "10.0.0.21")}
ETH_P_IP = 0x0800
PACKET_HOST = 0


def loss_rules(percent: float) -> str:
    """Count every heartbeat this node sends, then drop ``percent`` of them at random."""
    per_mille = round(percent * 10)
    return (
        "table inet soak {\n"
        " chain out {\n"
        "  type filter hook output priority 0;\n"
        f"  udp dport {PORT} counter\n"
        f"  udp dport {PORT} numgen random mod 1000 < {per_mille} counter drop\n"
        " }\n"
        "}\n"
    )


def nft_counters(node: Node) -> tuple[int, int]:
    """(heartbeats sent, heartbeats dropped) by this node's output chain."""
    listing = node.run(["nft", "list", "table", "inet", "soak"])
    assert listing.returncode == 0, listing.stderr
    sent, dropped = (int(n) for n in re.findall(r"counter packets (\d+)", listing.stdout))
    return sent, dropped


class Arrivals:
    """Timestamps of the heartbeats that reach a node's eth0 (sniffed in its namespace)."""

    def __init__(self, node: Node) -> None:
        with in_netns(node.netns.name):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            self.sock.bind(("eth0", ETH_P_IP))
        self.sock.settimeout(0.2)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"sniff-{node.name}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet, address = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            if address[2] == PACKET_HOST and _is_heartbeat(packet):
                self.times.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.times, self.times[1:], strict=False)), default=0.0)


def _is_heartbeat(packet: bytes) -> bool:
    """An IPv4 UDP datagram to the monitor's port."""
    if len(packet) < 20 or packet[9] != socket.IPPROTO_UDP:
        return False
    header = (packet[0] & 0x0F) * 4
    return (
        len(packet) >= header + 4
        and struct.unpack("!H", packet[header + 2 : header + 4])[0] == PORT
    )


def cpu_seconds(node: Node) -> tuple[float, float]:
    """(own, children's) CPU seconds of this node's monitor (user + system, from /proc)."""
    own = children = 0
    for pid in node.pids("eipha"):
        fields = node.file(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own += int(fields[11]) + int(fields[12])  # utime, stime
        children += int(fields[13]) + int(fields[14])  # cutime, cstime: the health checks
    tick = os.sysconf("SC_CLK_TCK")
    return own / tick, children / tick


def snapshot(node: Node) -> dict[str, Any]:
    """The monitor's own status document, read from its state file."""
    document: dict[str, Any] = json.loads(node.file("/run/eipha/monitor.json").read_text())
    return document


def hear_each_other(lab: Lab) -> bool:
    try:
        views = [snapshot(node) for node in lab.nodes.values()]
    except (OSError, ValueError):
        return False
    return all(p["verdict"] == "healthy" for v in views for p in v["peers"].values())


def counters(node: Node) -> dict[str, int]:
    c = snapshot(node)["counters"]
    return {
        "sent": int(c["sent"]),
        "received": int(c["received"]),
        "rejected": sum(int(v) for v in c["rejected"].values()),
        "takeovers": int(c["takeovers"]),
        "failbacks": int(c["failbacks"]),
        "api_errors": int(c["api_errors"]),
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    timings = {
        "interval": args.interval,
        "dead_after": args.dead_after,
        "init_dead": args.dead_after,
        "min_hold": 2 * args.dead_after,
    }
    with Lab.build() as lab:
        configure(lab, **timings)
        nodes = lab.nodes
        for node in nodes.values():
            start(node)
        for eip, where in HOME.items():
            lab.wait_where(eip, where, 30)
        wait_for("both monitors to hear each other", lambda: hear_each_other(lab), 30)
        before = {name: counters(node) for name, node in nodes.items()}
        cpu_before = {name: cpu_seconds(node) for name, node in nodes.items()}
        arrivals = {name: Arrivals(node) for name, node in nodes.items()}
        for node in nodes.values():
            nft(node, loss_rules(args.loss))
        mark = lab.region.mark()
        began = time.monotonic()
        try:
            for minute in range(1, int(args.minutes) + 1):
                time.sleep(max(0.0, began + 60 * minute - time.monotonic()))
                now = {name: counters(node) for name, node in nodes.items()}
                taken = sum(now[n]["takeovers"] - before[n]["takeovers"] for n in nodes)
                print(f"  {minute:3d} min: takeovers {taken}", file=sys.stderr, flush=True)
            time.sleep(max(0.0, began + 60 * args.minutes - time.monotonic()))
            lost = {name: nft_counters(node) for name, node in nodes.items()}
            after = {name: counters(node) for name, node in nodes.items()}
            cpu_after = {name: cpu_seconds(node) for name, node in nodes.items()}
            calls = Counter(lab.region.actions(mark))
            elapsed = time.monotonic() - began
        finally:
            for sniffer in arrivals.values():
                sniffer.stop()
        home = {eip: lab.where(eip) == where for eip, where in HOME.items()}

    directions = {}
    for sender, receiver in (("lb-a", "lb-b"), ("lb-b", "lb-a")):
        sent, dropped = lost[sender]
        directions[f"{sender} -> {receiver}"] = {
            "sent": sent,
            "lost": dropped,
            "lost_percent": round(100 * dropped / sent, 2) if sent else 0.0,
            "delivered": len(arrivals[receiver].times),
            "accepted": after[receiver]["received"] - before[receiver]["received"],
            "rejected": after[receiver]["rejected"] - before[receiver]["rejected"],
            "longest_gap_s": round(arrivals[receiver].longest_gap(), 3),
        }
    delta = {
        name: {
            k: after[name][k] - before[name][k] for k in ("takeovers", "failbacks", "api_errors")
        }
        for name in after
    }
    return {
        "minutes": round(elapsed / 60, 2),
        "loss_percent": args.loss,
        "timings": timings,
        "takeovers": {name: d["takeovers"] for name, d in delta.items()},
        "failbacks": {name: d["failbacks"] for name, d in delta.items()},
        "api_errors": {name: d["api_errors"] for name, d in delta.items()},
        "heartbeats": directions,
        "cpu_seconds": {
            name: {
                "monitor": round(cpu_after[name][0] - cpu_before[name][0], 2),
                "health_checks": round(cpu_after[name][1] - cpu_before[name][1], 2),
            }
            for name in nodes
        },
        "ec2_calls": dict(sorted(calls.items())),
        "ec2_calls_total": sum(calls.values()),
        "eips_home_at_end": home,
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        f"soak: {r['minutes']:.1f} min, {r['loss_percent']:g} % of heartbeats dropped at random "
        f"(interval {r['timings']['interval']:g} s, dead_after {r['timings']['dead_after']:g} s)",
        f"takeovers {sum(r['takeovers'].values())} {r['takeovers']}, "
        f"failbacks {sum(r['failbacks'].values())} {r['failbacks']}, "
        f"API errors {sum(r['api_errors'].values())}",
    ]
    for direction, h in r["heartbeats"].items():
        lines.append(
            f"heartbeats {direction}: sent {h['sent']}, "
            f"lost {h['lost']} ({h['lost_percent']:g} %), "
            f"delivered {h['delivered']}, accepted {h['accepted']}, rejected {h['rejected']}; "
            f"longest gap {h['longest_gap_s']:.2f} s (dead_after {r['timings']['dead_after']:g} s)"
        )
    for name, cpu in r["cpu_seconds"].items():
        lines.append(
            f"CPU {name}: monitor {cpu['monitor']:.2f} s, "
            f"its health checks {cpu['health_checks']:.2f} s"
        )
    lines.append(f"EC2 calls: {r['ec2_calls_total']} {r['ec2_calls']}")
    lines.append(f"EIPs home at the end: {r['eips_home_at_end']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak")
    parser.add_argument("--loss", type=float, default=10.0, help="percent of heartbeats dropped")
    parser.add_argument("--interval", type=float, default=1.0, help="monitor.interval, seconds")
    parser.add_argument("--dead-after", type=float, default=5.0, help="monitor.dead_after, s")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    if not (args.minutes > 0 and 0 <= args.loss < 100):
        parser.error("--minutes must be > 0 and --loss within 0..100")
    result = soak(args)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    ok = sum(result["takeovers"].values()) + sum(result["failbacks"].values()) == 0
    return 0 if ok and all(result["eips_home_at_end"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
