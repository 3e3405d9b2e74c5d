"""eipha benchmarks: wall time, peak memory and API calls, as ratios against baselines
measured in the same run against the same simulated region (docs/benchmarks.md).

    python bench/run.py                 # the full run (a few minutes)
    python bench/run.py --repeat 3      # quicker, noisier
    python bench/run.py --json out.json # also write the raw numbers (and out.layering.json)

Everything runs on loopback: a moto server with eipha's private-IP extension and an IMDSv2
double, with fake credentials. Medians over ``--repeat`` runs of fresh processes ("cold").
Last, bench/layering.py compares this checkout with an older revision (threads, IMDS
requests, config loads, botocore sessions, cold wall times) in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from eipha.sim.imds_double import ImdsDouble, node_metadata
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_client

SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "NO_PROXY": "127.0.0.1,localhost",
}
BOTO3_SCRIPT = """
import sys, boto3
client = boto3.client("ec2")
a = client.describe_addresses(AllocationIds=[sys.argv[1]])["Addresses"][0]
ok = a.get("NetworkInterfaceId") == sys.argv[2] and a.get("PrivateIpAddress") == sys.argv[3]
print("running" if ok else "not running")
sys.exit(0 if ok else 3)
"""
FAN_OUT = 16
LATENCY = 0.05


@dataclass
class Sample:
    wall: float
    rss_mb: float
    code: int


@dataclass
class Row:
    name: str
    wall: float
    rss_mb: float
    calls: str = ""
    note: str = ""


MEASURE = Path(__file__).resolve().parent / "_measure.py"


def measure(argv: Sequence[str], env: dict[str, str]) -> Sample:
    """Run a command to completion: wall time and peak RSS (of it and its children)."""
    proc = subprocess.run(
        [sys.executable, "-S", str(MEASURE), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"measuring {' '.join(argv)} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    if result["code"] not in (0, 3):
        raise SystemExit(
            f"benchmark command failed ({result['code']}): {' '.join(argv)}\n{proc.stderr}"
        )
    return Sample(result["wall"], result["rss_kib"] / 1024, result["code"])


def median_of(
    repeat: int, argv: Sequence[str], env: dict[str, str], before: Callable[[], None] | None = None
) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        samples.append(measure(argv, env))
    return (
        statistics.median(s.wall for s in samples),
        statistics.median(s.rss_mb for s in samples),
    )


class Bench:
    def __init__(self, region: SimulatedRegion, repeat: int, tmp: Path) -> None:
        self.region = region
        self.repeat = repeat
        self.tmp = tmp
        self.client = ec2_client(region)
        self.world: World = build_pair(region, eips=2)
        node = self.world.nodes["lb-a"]
        self.node = node
        self.imds = ImdsDouble(self.metadata(node.secondary_ips)).start()
        self.env = {
            **os.environ,
            **SAFE_ENV,
            "AWS_ENDPOINT_URL_EC2": region.endpoint,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.endpoint,
            "EIPHA_RUN_DIR": str(tmp / "run"),
        }
        self.eipha = [sys.executable, "-m", "eipha"]

    def metadata(self, secondaries: Sequence[str]) -> dict[str, str]:
        n = self.node
        return node_metadata(
            n.instance_id,
            self.world.region,
            f"{self.world.region}a",
            [(n.mac, n.eni_id, 0, n.primary_ip, secondaries, n.subnet_cidr)],
        )

    def config(self, eips: dict[str, Any]) -> Path:
        path = self.tmp / f"eipha-{len(eips)}.yaml"
        path.write_text(
            yaml.safe_dump(
                {"node_name": "lb-a", "region": self.world.region, "timeout": 30, "eips": eips}
            )
        )
        return path

    def calls(self, argv: Sequence[str], env: dict[str, str]) -> str:
        mark = self.region.mark()
        measure(argv, env)
        actions = self.region.actions(mark)
        return f"{len(actions)} ({', '.join(actions)})"

    # -- the measurements ------------------------------------------------------------------

    def status(self) -> list[Row]:
        web_a = self.world.eips["web-a"]
        self.client.associate_address(
            AllocationId=web_a.allocation_id,
            NetworkInterfaceId=self.node.eni_id,
            PrivateIpAddress=self.node.primary_ip,
            AllowReassociation=True,
        )
        env = {
            **self.env,
            "EIPHA_CONFIG": str(
                self.config({"web-a": {"allocation_id": web_a.allocation_id, "home": "lb-a"}})
            ),
        }
        aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
        if aws is None:
            raise SystemExit("the aws CLI is not installed: pip install -e '.[bench]'")
        one_liner = (
            f"{aws} ec2 describe-addresses --allocation-ids {web_a.allocation_id} "
            "--query 'Addresses[0].PrivateIpAddress' --output text "
            f"| fgrep -qx {self.node.primary_ip}"
        )
        runs = {
            "eipha status (cold)": [*self.eipha, "status", "web-a"],
            "aws-cli one-liner": ["bash", "-c", one_liner],
            "minimal boto3 script": [
                sys.executable,
                "-c",
                BOTO3_SCRIPT,
                web_a.allocation_id,
                self.node.eni_id,
                self.node.primary_ip,
            ],
        }
        rows = []
        for name, argv in runs.items():
            wall, rss = median_of(self.repeat, argv, env)
            rows.append(Row(name, wall, rss, self.calls(argv, env) if "eipha" in name else ""))
        return rows

    def help(self) -> Row:
        argv = [*self.eipha, "--help"]
        wall, rss = median_of(self.repeat, argv, self.env)
        return Row("eipha --help", wall, rss)

    def actions(self) -> list[Row]:
        """API calls per action, each from a realistic starting state."""
        web_a, web_b = self.world.eips["web-a"], self.world.eips["web-b"]
        env = {
            **self.env,
            "EIPHA_CONFIG": str(
                self.config(
                    {
                        "web-a": {"allocation_id": web_a.allocation_id, "home": "lb-a"},
                        "web-b": {"allocation_id": web_b.allocation_id, "home": "lb-b"},
                    }
                )
            ),
        }
        lb_b = self.world.nodes["lb-b"]
        self.client.associate_address(
            AllocationId=web_b.allocation_id,
            NetworkInterfaceId=lb_b.eni_id,
            PrivateIpAddress=lb_b.primary_ip,
            AllowReassociation=True,
        )
        rows = []
        for label, args in [
            ("start (takeover)", ["start", "web-b"]),
            ("start (already there)", ["start", "web-b"]),
            ("status", ["status", "web-b"]),
            ("stop (here)", ["stop", "web-b"]),
            ("stop (not here)", ["stop", "web-b"]),
        ]:
            rows.append(Row(f"calls: {label}", 0, 0, self.calls([*self.eipha, *args], env)))
        return rows

    def fan_out(self) -> list[Row]:
        """``eipha start`` of 1 vs 16 EIPs, with ~50 ms added to every API answer."""
        extra = [f"10.0.0.{100 + i}" for i in range(FAN_OUT)]
        self.client.assign_private_ip_addresses(
            NetworkInterfaceId=self.node.eni_id, PrivateIpAddresses=extra
        )
        self.imds.update(self.metadata([*self.node.secondary_ips, *extra]))
        eips = {}
        for i, ip in enumerate(extra):
            alloc = self.client.allocate_address(Domain="vpc")["AllocationId"]
            eips[f"fan-{i:02d}"] = {
                "allocation_id": alloc,
                "home": "lb-b",
                # each EIP needs its own IP on its home too (only lb-a's are used here)
                "private_ips": {"lb-a": ip, "lb-b": f"10.0.1.{100 + i}"},
            }
        env = {**self.env, "EIPHA_CONFIG": str(self.config(eips))}

        def release_all() -> None:
            for address in self.client.describe_addresses()["Addresses"]:
                if address.get("AssociationId"):
                    self.client.disassociate_address(AssociationId=address["AssociationId"])

        names = sorted(eips)
        self.region.latency = LATENCY
        try:
            one = median_of(self.repeat, [*self.eipha, "start", names[0]], env, release_all)
            many = median_of(self.repeat, [*self.eipha, "start", *names], env, release_all)
        finally:
            self.region.latency = 0.0
        return [
            Row("start, 1 EIP (+50 ms/call)", *one),
            Row(
                f"start, {FAN_OUT} EIPs (+50 ms/call)",
                *many,
                note=f"{many[0] / one[0]:.2f}x one EIP (target <= 1.5x)",
            ),
        ]


def secondary_ips(repeat: int) -> Row:
    """One no-change `eipha secondary-ips` (cold), in a network namespace (root only)."""
    if os.geteuid() != 0:
        return Row("secondary-ips, no change", 0, 0, note="skipped: needs root")
    from eipha.sim.netns import NodeNetns

    mac, primary = "0a:00:00:00:00:0a", "10.0.0.11"
    data = node_metadata(
        "i-0aaaaaaaaaaaaaaaa",
        "eu-west-1",
        "eu-west-1a",
        [(mac, "eni-0aaaaaaaaaaaaaaaa", 0, primary, ["10.0.0.12"], "10.0.0.0/24")],
    )
    with NodeNetns(mac, primary) as ns:
        endpoint = ns.start_imds(data)
        config = ns.dir / "eipha.yaml"
        config.write_text("eips: {web-a: {allocation_id: eipalloc-0123456789abcdef0, home: a}}\n")
        env = {
            **os.environ,
            **SAFE_ENV,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint,
            "EIPHA_CONFIG": str(config),
        }
        argv = ns.argv([sys.executable, "-m", "eipha", "secondary-ips"])
        measure(argv, env)  # the first sync adds the address
        wall, rss = median_of(repeat, argv, env)
    return Row("secondary-ips, no change (cold)", wall, rss, note="in a network namespace")


def table(rows: Sequence[Row]) -> str:
    header = ("measurement", "wall s", "peak MB", "API calls / note")
    cells = [header] + [
        (
            r.name,
            f"{r.wall:.3f}" if r.wall else "-",
            f"{r.rss_mb:.0f}" if r.rss_mb else "-",
            r.calls or r.note,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells)


def compile_eipha() -> None:
    """Byte-compile eipha as pip does when it installs a package: a checkout installed with
    ``pip install -e`` (and PYTHONDONTWRITEBYTECODE) would otherwise recompile eipha's source
    on every run while boto3, botocore and the aws CLI load their cached bytecode."""
    import compileall

    import eipha

    compileall.compile_dir(Path(eipha.__file__).parent, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="runs per measurement (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    compile_eipha()
    with tempfile.TemporaryDirectory() as tmp, SimulatedRegion() as region:
        bench = Bench(region, args.repeat, Path(tmp))
        try:
            print(
                f"benchmarking against {region.endpoint}, {args.repeat} runs each ...",
                file=sys.stderr,
            )
            status = bench.status()
            rows = [*status, bench.help(), *bench.actions(), *bench.fan_out()]
        finally:
            bench.imds.stop()
    rows.append(secondary_ips(args.repeat))
    simulate = median_of(1, [*bench.eipha, "drill", "--simulate"], bench.env)
    rows.append(Row("eipha drill --simulate", *simulate, note="target < 20 s"))
    eipha, aws, boto = status
    rows.append(
        Row(
            "ratio: eipha status / aws-cli",
            eipha.wall / aws.wall,
            0,
            note=f"wall {eipha.wall / aws.wall:.2f}x (target <= 0.5x), "
            f"memory {eipha.rss_mb / aws.rss_mb:.2f}x (target <= 0.7x)",
        )
    )
    rows.append(
        Row(
            "ratio: eipha status / boto3 script",
            eipha.wall / boto.wall,
            0,
            note=f"wall {eipha.wall / boto.wall:.2f}x, memory {eipha.rss_mb / boto.rss_mb:.2f}x",
        )
    )
    print(table(rows))
    print(
        f"\n(total {time.perf_counter() - began:.0f} s; medians of {args.repeat} cold runs; "
        f"python {sys.version.split()[0]})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2))
    # the layering section: this checkout against an older revision, in its own process
    print("\nlayering, against the older revision in the same run (bench/layering.py):")
    layering = [sys.executable, str(Path(__file__).with_name("layering.py"))]
    layering += ["--repeat", str(args.repeat)]
    if args.json:
        layering += ["--json", str(Path(args.json).with_suffix(".layering.json"))]
    sys.stdout.flush()
    return subprocess.run(layering, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
