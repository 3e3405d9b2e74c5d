"""Failover by health, end to end (root; the namespace lab of tests/system): HAProxy stopped
on the node holding web-a, time until the first request through web-a is served by the
peer, and, HAProxy started again, until web-a is served at home; for keepalived (the role's
track script on HAProxy's health endpoint) and the peer monitor (its health_check.url).

    sudo .venv/bin/python bench/health_failover.py [--runs 5]

Prints one line per cycle and the medians; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(manager: str, runs: int) -> tuple[list[float], list[float]]:
    from tests.system.test_haproxy_failover import pair

    away, back = [], []
    with pair(manager) as running:
        for n in range(runs):
            took, returned = running.cycle()
            away.append(took)
            back.append(returned)
            print(f"{manager} run {n + 1}: served by the peer {took:.2f} s after HAProxy "
                  f"stopped; home {returned:.2f} s after it started", flush=True)  # fmt: skip
    return away, back


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    medians = {}
    for manager in ("keepalived", "monitor"):
        away, back = measure(manager, args.runs)
        medians[f"{manager}_away"] = statistics.median(away)
        medians[f"{manager}_back"] = statistics.median(back)
        print(f"{manager}: median of {args.runs}: {medians[f'{manager}_away']:.2f} s to the "
              f"peer, {medians[f'{manager}_back']:.2f} s back home")  # fmt: skip
    return medians


if __name__ == "__main__":
    main()
