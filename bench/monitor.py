"""The peer monitor in the namespace lab (root only): takeover, handover and failback times,
and what an idle pair costs (CPU, API calls).

    python bench/monitor.py               # 5 runs of each, a 60 s idle window (~3 minutes)
    python bench/monitor.py --runs 7 --idle 120 --json out.json

Monitors run with interval 0.5 s, dead_after 2 s, init_dead 3 s, min_hold 3 s:

* takeover: SIGKILL lb-b's monitor -> web-b visible on lb-a's secondary (reported also as a
  multiple of dead_after; the target is dead_after + 1 s);
* handover: SIGTERM lb-a's monitor -> web-a visible on lb-b's secondary (target <= 1 s);
* failback: lb-b's monitor restarted -> web-b home (min_hold is part of it, by design);
* idle: CPU time of both monitors over the idle window, extrapolated to an hour, and the EC2
  API calls they made in it, extrapolated likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.lab import Lab, Node, wait_for  # noqa: E402
from tests.system.test_monitor import FAST, configure, start  # noqa: E402

HOME_A, HOME_B = ("lb-a", "10.0.0.11"), ("lb-b", "10.0.0.21")
B_ON_A, A_ON_B = ("lb-a", "10.0.0.12"), ("lb-b", "10.0.0.22")


def seen(lab: Lab, eip: str, where: tuple[str, str], timeout: float = 30) -> float:
    wait_for(f"{eip} on {where}", lambda: lab.where(eip) == where, timeout, 0.02)
    return time.monotonic()


def cpu_seconds(node: Node) -> float:
    """User + system CPU of this node's monitor processes (from /proc, clock ticks)."""
    total = 0
    for pid in node.pids("eipha"):
        fields = node.file(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, seconds")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    takeover, handover, failback = [], [], []
    with Lab.build() as lab:
        configure(lab)
        a, b = lab.nodes["lb-a"], lab.nodes["lb-b"]
        for node in (a, b):
            start(node)
        seen(lab, "web-a", HOME_A)
        seen(lab, "web-b", HOME_B)
        time.sleep(3)
        cpu0 = cpu_seconds(a) + cpu_seconds(b)
        mark = lab.region.mark()
        time.sleep(args.idle)
        cpu = cpu_seconds(a) + cpu_seconds(b) - cpu0
        calls = len(lab.region.actions(mark))
        for _ in range(args.runs):
            killed = time.monotonic()
            b.kill("eipha", signal.SIGKILL)
            takeover.append(seen(lab, "web-b", B_ON_A) - killed)
            restarted = time.monotonic()
            start(b)
            failback.append(seen(lab, "web-b", HOME_B) - restarted)
            time.sleep(1)
            stopped = time.monotonic()
            a.kill("eipha", signal.SIGTERM)
            handover.append(seen(lab, "web-a", A_ON_B) - stopped)
            start(a)
            seen(lab, "web-a", HOME_A)
            time.sleep(1)
    per_hour = 3600 / args.idle
    dead = FAST["dead_after"]
    rows = {
        "takeover after SIGKILL (s)": takeover,
        "graceful handover after SIGTERM (s)": handover,
        "failback after restart (s, includes min_hold)": failback,
    }
    for name, values in rows.items():
        print(
            f"{name:<48} median {statistics.median(values):6.2f}   "
            + " ".join(f"{v:.2f}" for v in values)
        )
    print(
        f"takeover / dead_after: {statistics.median(takeover) / dead:.2f}x "
        f"(dead_after {dead:g} s; target <= dead_after + 1 s = {dead + 1:g} s)"
    )
    print(
        f"idle, both monitors: {cpu * per_hour:.1f} CPU-seconds per hour, "
        f"{calls * per_hour:.0f} EC2 API calls per hour (over {args.idle:g} s)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **rows,
                    "idle_cpu_s_per_hour": cpu * per_hour,
                    "idle_calls_per_hour": calls * per_hour,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
