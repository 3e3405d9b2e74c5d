"""Failover timing in the namespace lab (root only): Heartbeat and keepalived calling eipha,
against the same managers calling the aws CLI the way the old blog did, in the same run.

    python bench/failover.py              # 5 failovers per manager and variant (~5 minutes)
    python bench/failover.py --runs 7 --json out.json

For each failover: SIGKILL the peer's manager (lb-b), and time until EC2 shows web-b on
lb-a's secondary IP. "Visible" is taken from the simulated region's own request log: the
moment it answered the AssociateAddress that put web-b there (moto is strongly consistent,
so every later DescribeAddresses shows it). Polling for it instead would add up to a poll
interval to every run, and the poller shares a process with the simulated region, so it
would also slow the answers being timed. Two numbers per run:

* total: from the kill to visible (the manager's detection included);
* script: from the manager's first call of the script about web-b after the kill to visible
  (for Heartbeat a status, then a start; for keepalived the notify). This is the part the
  script is responsible for, measured instead of estimated: the installed script is wrapped
  (the same way for every variant) by one that logs `date +%s.%N` and then execs it.

Variants: Heartbeat and keepalived calling eipha's shim (`eipha`), keepalived with eipha as
the reader of its notify FIFO (`eipha-fifo`), and the aws-CLI scripts of bench/baseline
(`awscli`). The FIFO reader is started once with keepalived, so there is no script call per
event to time: each instance gets a `notify` script that does nothing, wrapped the same way,
and keepalived runs it for the same transition it writes to the FIFO. (keepalived forks that
script just before it writes the line, but the wrapper logs only after an exec of sh and a
fork and exec of date, so this variant's part may be timed from a few milliseconds late.)

Then lb-b comes back and takes web-b home before the next run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.lab import EIPHA_BIN, Lab, wait_for  # noqa: E402
from tests.system.managers import (  # noqa: E402
    install_heartbeat,
    install_keepalived,
    start_heartbeat,
    start_keepalived,
)

BASELINE = ROOT / "bench" / "baseline"
WRAPPER = """#!/bin/sh
echo "$(date +%s.%N) $*" >> {log}
exec {real} "$@"
"""
HOME_B, B_ON_A = ("lb-b", "10.0.0.21"), ("lb-a", "10.0.0.12")
VARIANTS = {"heartbeat": ("eipha", "awscli"), "keepalived": ("eipha", "eipha-fifo", "awscli")}


def baseline_defaults(lab: Lab) -> None:
    """What the aws-CLI scripts hard-code, as the blog's did: ids, ENIs and IPs per node."""
    for node in lab.nodes.values():
        me = lab.world.nodes[node.name]
        lines = [
            f"PATH={EIPHA_BIN.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
            f"AWS_DEFAULT_REGION={lab.world.region}",
        ]
        for eip in lab.world.eips.values():
            ip = me.primary_ip if eip.home == node.name else me.secondary_ips[0]
            key = eip.name.replace("-", "_")
            lines += [f"EIP_{key}={eip.allocation_id}", f"ENI_{key}={me.eni_id}", f"IP_{key}={ip}"]
        (node.dir / "default" / "eipha-baseline").write_text("\n".join(lines) + "\n")


def wrap(lab: Lab, script: str) -> None:
    """Put the timing wrapper in front of an installed script on every node (``script``
    relative to the node's directory)."""
    for node in lab.nodes.values():
        installed = node.dir / script
        real = installed.with_name(installed.name + ".real")
        installed.rename(real)
        installed.write_text(WRAPPER.format(log=node.dir / "calls.log", real=real))
        installed.chmod(0o755)


def install(lab: Lab, manager: str, variant: str) -> str:
    """Configure the manager for the variant; the script to time (see :func:`wrap`)."""
    if manager == "heartbeat":
        eipha = "heartbeat/eipha"
        install_heartbeat(lab, eipha if variant == "eipha" else BASELINE / "heartbeat-awscli")
        return "ha.d/resource.d/eipha"
    if variant == "eipha-fifo":
        install_keepalived(lab, fifo=True, notify="/etc/keepalived/eipha-timing")
        for node in lab.nodes.values():
            timing = node.dir / "keepalived" / "eipha-timing"
            timing.write_text("#!/bin/sh\nexit 0\n")
            timing.chmod(0o755)
        return "keepalived/eipha-timing"
    eipha = "keepalived/eipha-notify"
    install_keepalived(lab, eipha if variant == "eipha" else BASELINE / "keepalived-awscli")
    return "keepalived/eipha-notify"


def first_call(node_dir: Path, since: float, manager: str) -> float:
    """When the manager first called the script about web-b after ``since``."""
    needle = "web-b" if manager == "heartbeat" else "VI_B MASTER"
    for line in (node_dir / "calls.log").read_text().splitlines():
        at, _, args = line.partition(" ")
        if float(at) >= since and needle in args:
            return float(at)
    raise AssertionError(f"no call about web-b after the kill in {node_dir}/calls.log")


def associated(lab: Lab, eip: str, ip: str, since: float) -> float:
    """Wall-clock time at which the simulated region answered the first successful
    AssociateAddress of ``eip`` to ``ip`` that arrived after ``since`` (wall clock)."""
    offset = time.time() - time.monotonic()  # the log keeps monotonic readings
    allocation_id = lab.world.eips[eip].allocation_id
    for request in lab.region.calls("AssociateAddress"):
        if (
            request.status == 200
            and request.started + offset >= since
            and request.params.get("AllocationId") == allocation_id
            and request.params.get("PrivateIpAddress") == ip
        ):
            return request.ended + offset
    raise AssertionError(f"no AssociateAddress of {eip} to {ip} after the kill")


def failovers(manager: str, variant: str, runs: int) -> list[tuple[float, float]]:
    start = start_heartbeat if manager == "heartbeat" else start_keepalived
    times = []
    with Lab.build() as lab:
        baseline_defaults(lab)
        wrap(lab, install(lab, manager, variant))
        for node in lab.nodes.values():
            start(node)
        lab.wait_where("web-b", HOME_B, 60)
        for _ in range(runs):
            b = lab.nodes["lb-b"]
            killed = time.time()
            b.kill(manager)
            wait_for("web-b on lb-a", lambda: lab.where("web-b") == B_ON_A, 60, 0.25)
            visible = associated(lab, "web-b", B_ON_A[1], killed)
            called = first_call(lab.nodes["lb-a"].dir, killed, manager)
            times.append((visible - killed, visible - called))
            start(b)
            lab.wait_where("web-b", HOME_B, 60)
            time.sleep(2.0)  # let both managers settle before the next kill
        if lab.reboots():
            raise SystemExit(f"a node tried to reboot: {lab.reboots()}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument(
        "--manager", choices=tuple(VARIANTS), action="append", help="(default: both)"
    )
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    report: Callable[[str], None] = print
    for manager in args.manager or ("heartbeat", "keepalived"):
        results[manager] = {}
        for variant in VARIANTS[manager]:
            print(f"{manager} + {variant}: {args.runs} failovers ...", file=sys.stderr)
            results[manager][variant] = failovers(manager, variant, args.runs)
    report(
        f"{'manager':<11} {'script':<10} {'total s':>8} {'script s':>9}  "
        "script part of each run (first call -> visible)"
    )
    for manager, variants in results.items():
        for variant, times in variants.items():
            total = statistics.median(t for t, _ in times)
            part = statistics.median(p for _, p in times)
            report(
                f"{manager:<11} {variant:<10} {total:8.3f} {part:9.3f}  "
                + " ".join(f"{p:.2f}" for _, p in times)
            )
        baseline = statistics.median(p for _, p in variants["awscli"])
        for variant, times in variants.items():
            if variant != "awscli":
                ratio = baseline / statistics.median(p for _, p in times)
                report(
                    f"{manager:<11} the {variant} part is {ratio:.2f}x faster than the aws-CLI "
                    "script's (target >= 2x)"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
