"""What the middle of eipha costs per call, for an older revision and the working tree in one
run, against the same simulated region: threads, IMDS requests, config loads, botocore
sessions, the peer monitor's takeover path, and cold wall times (docs/benchmarks.md).

    python bench/layering.py                  # before = c297f38, after = this checkout's src/
    python bench/layering.py --before REV --repeat 9 --idle 31 --takeovers 3 --json out.json

The revision's ``src/`` is exported with ``git archive`` into a temporary directory (removed
at the end, also on failure); both trees run on the same interpreter and venv, each first on
PYTHONPATH and byte-compiled as pip would. Nothing here knows eipha's internal names: every
count is taken from outside the code being measured.

* threads, config loads, botocore sessions: ``bench/layering_probe/sitecustomize.py``, put
  first on PYTHONPATH, counts ``threading.Thread.start`` calls, ``open`` audit events for the
  config file and ``botocore.session.Session`` objects made, and timestamps log records;
* IMDS requests: the IMDSv2 double logs every request it answers (token PUTs and GETs);
* EC2 calls: the simulated region's request log;
* the peer monitor: a pair of monitors per tree on loopback addresses (127.0.1.x for before,
  127.0.2.x for after; real UDP heartbeats, each node with its own IMDS double and its own
  fake access key), each pair in its own simulated world. Idle: sessions made in an idle
  window against the reconciles (one batched DescribeAddresses each, every 30 s) made in the
  same window, per hour = per reconcile x 120. Takeover: SIGKILL lb-b's monitor; the
  decision is lb-a's log record saying it takes web-b over (timestamped by the probe when it
  is made) and the request is the simulated region's arrival time of that AssociateAddress
  (both ``time.monotonic()``, one clock for every process of the machine): the time between
  is lb-a's own work, whatever the heartbeat timing;
* cold wall times: medians of ``--repeat`` runs without the probe, the two trees interleaved
  (alternating which goes first), as bench/run.py measures them.
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import SAFE_ENV, measure  # noqa: E402
from eipha.sim.imds_double import ImdsDouble, node_metadata  # noqa: E402
from eipha.sim.region import SimulatedRegion, World, build_pair, ec2_client  # noqa: E402

PROBE = ROOT / "bench" / "layering_probe"
TREES = ("before", "after")
RECONCILES_PER_HOUR = 3600 / 30
FAST = {"interval": 0.5, "dead_after": 2.0, "init_dead": 3.0, "min_hold": 3.0}
PAIR_NET = {"before": "127.0.1", "after": "127.0.2"}
TAKEOVER_WORDS = "taking it over"  # the monitor's decision line for a takeover


# -- the trees ------------------------------------------------------------------------------


def export(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` under ``into``; the directory to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def check_tree(src: Path, env: dict[str, str]) -> None:
    """The interpreter imports eipha from ``src`` with this environment (not the venv's)."""
    found = subprocess.run(
        [sys.executable, "-c", "import eipha; print(eipha.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"eipha was imported from {found}, not from {src}")


# -- probed calls ---------------------------------------------------------------------------


@dataclass
class Events:
    """What the probe wrote: ``(monotonic, kind, detail)`` per line."""

    lines: list[tuple[float, str, str]]

    @classmethod
    def read(cls, path: Path) -> Events:
        lines = []
        if path.exists():
            for line in path.read_text().splitlines():
                at, kind, detail = [*line.split(" ", 2), ""][:3]
                lines.append((float(at), kind, detail))
        return cls(lines)

    def of(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[str]:
        return [d for at, k, d in self.lines if k == kind and since <= at <= until]

    def first_log(self, since: float, *words: str) -> float | None:
        for at, kind, detail in self.lines:
            if kind == "log" and at >= since and all(w in detail for w in words):
                return at
        return None


@dataclass
class Count:
    threads: int
    thread_names: list[str]
    imds: int
    imds_paths: list[str]
    config_opens: int
    sessions: int
    ec2: list[str]
    code: int


@dataclass
class Call:
    name: str
    args: list[str]
    prepare: Callable[[], None]
    env: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()  # variables taken out of the environment


class Cli:
    """One simulated world, one IMDS double (lb-a), one config; the calls of each tree."""

    def __init__(self, region: SimulatedRegion, tmp: Path, srcs: dict[str, Path]) -> None:
        self.region, self.tmp, self.srcs = region, tmp, srcs
        self.client = ec2_client(region)
        self.world: World = build_pair(region, eips=2)
        a = self.world.nodes["lb-a"]
        self.imds = ImdsDouble(
            node_metadata(
                a.instance_id,
                self.world.region,
                f"{self.world.region}a",
                [(a.mac, a.eni_id, 0, a.primary_ip, a.secondary_ips, a.subnet_cidr)],
            )
        ).start()
        self.config = tmp / "eipha.yaml"
        self.config.write_text(
            json.dumps(
                {
                    "node_name": "lb-a",
                    "region": self.world.region,
                    "timeout": 30,
                    "eips": self.world.eips_section(),
                    "keepalived": {"instances": {"VI_A": ["web-a"]}},
                }
            )
        )
        # the same without a region: it is read from IMDS, as on an instance with neither
        # region in the config nor AWS_REGION/AWS_DEFAULT_REGION set
        data = json.loads(self.config.read_text())
        del data["region"]
        self.config_no_region = tmp / "eipha-no-region.yaml"
        self.config_no_region.write_text(json.dumps(data))
        self.probe_runs = 0

    def env(self, tree: str, probe: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and "EIPHA" not in k} | {
            **SAFE_ENV,
            "AWS_ENDPOINT_URL_EC2": self.region.endpoint,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.endpoint,
            "EIPHA_CONFIG": str(self.config),
            "EIPHA_RUN_DIR": str(self.tmp / f"run-{tree}"),
            "PYTHONPATH": str(self.srcs[tree]),
        }
        if probe is not None:
            env |= {
                "PYTHONPATH": f"{PROBE}{os.pathsep}{self.srcs[tree]}",
                "EIPHA_BENCH_PROBE": str(probe),
                "EIPHA_BENCH_WATCH": str(self.config),
            }
        return env

    # the starting states
    def place(self, eip: str, node: str | None) -> None:
        address = self.client.describe_addresses(
            AllocationIds=[self.world.eips[eip].allocation_id]
        )["Addresses"][0]
        if node is None:
            if address.get("AssociationId"):
                self.client.disassociate_address(AssociationId=address["AssociationId"])
            return
        n = self.world.nodes[node]
        self.client.associate_address(
            AllocationId=address["AllocationId"],
            NetworkInterfaceId=n.eni_id,
            PrivateIpAddress=n.primary_ip,
            AllowReassociation=True,
        )

    def calls(self) -> list[Call]:
        here = lambda: self.place("web-a", "lb-a")  # noqa: E731
        gone = lambda: self.place("web-a", None)  # noqa: E731
        ocf = {"OCF_RESKEY_eip": "web-a"}
        return [
            Call("start web-b (takeover)", ["start", "web-b"], lambda: self.place("web-b", "lb-b")),
            Call("heartbeat web-a status", ["heartbeat", "web-a", "status"], here),
            Call(
                "heartbeat web-a status, region from IMDS",
                ["heartbeat", "web-a", "status"],
                here,
                {"EIPHA_CONFIG": str(self.config_no_region)},
                ("AWS_REGION", "AWS_DEFAULT_REGION"),
            ),
            Call("ocf monitor", ["ocf", "monitor"], here, ocf),
            Call("ocf start", ["ocf", "start"], gone, ocf),
            Call("heartbeat web-a stop", ["heartbeat", "web-a", "stop"], here),
            Call("status web-a", ["status", "web-a"], here),
            Call("keepalived notify MASTER", ["keepalived", "notify", *NOTIFY], gone),
        ]

    def call_env(self, tree: str, call: Call, probe: Path | None = None) -> dict[str, str]:
        env = self.env(tree, probe) | call.env
        if probe is not None:
            env["EIPHA_BENCH_WATCH"] = env["EIPHA_CONFIG"]
        return {k: v for k, v in env.items() if k not in call.drop}

    def count(self, tree: str, call: Call) -> Count:
        call.prepare()
        self.probe_runs += 1
        probe = self.tmp / f"probe-{self.probe_runs}.log"
        imds, ec2 = len(self.imds.requests), self.region.mark()
        proc = subprocess.run(
            [sys.executable, "-m", "eipha", *call.args],
            env=self.call_env(tree, call, probe),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode not in (0, 3, 7):  # 7: OCF "not running"
            raise SystemExit(f"{tree}: eipha {' '.join(call.args)} failed:\n{proc.stderr}")
        events = Events.read(probe)
        return Count(
            threads=len(events.of("thread")),
            thread_names=events.of("thread"),
            imds=len(self.imds.requests) - imds,
            imds_paths=[f"{m} {p}" for m, p, _ in self.imds.requests[imds:]],
            config_opens=len(events.of("open")),
            sessions=len(events.of("session")),
            ec2=self.region.actions(ec2),
            code=proc.returncode,
        )

    def wall(self, tree: str, call: Call) -> float:
        call.prepare()
        return measure([sys.executable, "-m", "eipha", *call.args], self.call_env(tree, call)).wall


NOTIFY = ["INSTANCE", "VI_A", "MASTER", "100"]


def counts(cli: Cli, repeat: int) -> dict[str, dict[str, list[Count]]]:
    """Every probed call, ``repeat`` times per tree (alternating the trees)."""
    out: dict[str, dict[str, list[Count]]] = {c.name: {t: [] for t in TREES} for c in cli.calls()}
    for i in range(repeat):
        for call in cli.calls():
            for tree in TREES if i % 2 == 0 else TREES[::-1]:
                out[call.name][tree].append(cli.count(tree, call))
    return out


def walls(cli: Cli, repeat: int) -> dict[str, dict[str, list[float]]]:
    """Cold wall times, the trees interleaved run by run."""
    timed = [c for c in cli.calls() if c.name in ("status web-a", "keepalived notify MASTER")]
    out: dict[str, dict[str, list[float]]] = {c.name: {t: [] for t in TREES} for c in timed}
    for tree in TREES:  # one untimed run each: the page cache, not the code, would differ
        for call in timed:
            cli.wall(tree, call)
    for i in range(repeat):
        for tree in TREES if i % 2 == 0 else TREES[::-1]:
            for call in timed:
                out[call.name][tree].append(cli.wall(tree, call))
    return out


# -- the peer monitor -----------------------------------------------------------------------


@dataclass
class Member:
    name: str
    env: dict[str, str]
    probe: Path
    log: Path
    key_id: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eipha", "monitor"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, sig: int) -> None:
        """Signal the monitor this script started (by its PID) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class Pair:
    """Two monitors of one tree on loopback, in a world of their own."""

    def __init__(
        self, tree: str, region: SimulatedRegion, cli: Cli, stack: ExitStack, tmp: Path
    ) -> None:
        self.tree, self.region = tree, region
        self.world = build_pair(region, eips=2)
        self.client = cli.client
        net = PAIR_NET[tree]
        addresses = {"lb-a": f"{net}.1", "lb-b": f"{net}.2"}
        port = free_udp_port(addresses["lb-a"])
        key = tmp / f"monitor-{tree}.key"
        key.write_bytes(b"k" * 8 + bytes(range(40)))
        key.chmod(0o600)
        self.members: dict[str, Member] = {}
        for name, n in self.world.nodes.items():
            imds = ImdsDouble(
                node_metadata(
                    n.instance_id,
                    self.world.region,
                    f"{self.world.region}a",
                    [(n.mac, n.eni_id, 0, n.primary_ip, n.secondary_ips, n.subnet_cidr)],
                )
            ).start()
            stack.callback(imds.stop)
            config = tmp / f"monitor-{tree}-{name}.yaml"
            config.write_text(json.dumps(self.config(name, addresses, port, key)))
            probe = tmp / f"monitor-{tree}-{name}.probe"
            key_id = f"BENCH{tree.upper()}{name.replace('-', '').upper()}"
            env = cli.env(tree, probe) | {
                "AWS_ACCESS_KEY_ID": key_id,
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint,
                "EIPHA_CONFIG": str(config),
                "EIPHA_RUN_DIR": str(tmp / f"run-monitor-{tree}-{name}"),
            }
            member = Member(name, env, probe, tmp / f"monitor-{tree}-{name}.log", key_id)
            stack.callback(member.kill, signal.SIGTERM)
            self.members[name] = member

    def config(self, me: str, addresses: dict[str, str], port: int, key: Path) -> dict[str, Any]:
        return {
            "node_name": me,
            "region": self.world.region,
            "timeout": 10,
            "nodes": self.world.nodes_section(addresses),
            "eips": self.world.eips_section(),
            "monitor": {
                "port": port,
                "key_file": str(key),
                # a TCP connect to the simulated EC2 API: loopback, and no ICMP needed
                "quorum": [f"127.0.0.1:{self.region.port}"],
                "health_check": {"command": "true", "interval": 0.5, "fall": 1, "rise": 1},
                "auto_failback": True,
                **FAST,
            },
        }

    def where(self, eip: str) -> str | None:
        address = self.client.describe_addresses(
            AllocationIds=[self.world.eips[eip].allocation_id]
        )["Addresses"][0]
        ip: str | None = address.get("PrivateIpAddress")
        return ip

    def wait_home(self, timeout: float = 30) -> None:
        homes = {"web-a": "lb-a", "web-b": "lb-b"}
        wait(
            f"{self.tree}: both EIPs home",
            lambda: all(self.where(e) == self.world.nodes[n].primary_ip for e, n in homes.items()),
            timeout,
        )

    def associated(self, eip: str, ip: str, since: float) -> float | None:
        """When the first AssociateAddress of ``eip`` to ``ip`` after ``since`` arrived."""
        allocation = self.world.eips[eip].allocation_id
        for request in self.region.calls("AssociateAddress"):
            if (
                request.started >= since
                and request.status == 200
                and request.params.get("AllocationId") == allocation
                and request.params.get("PrivateIpAddress") == ip
            ):
                return request.started
        return None

    def takeover(self) -> tuple[float, float]:
        """SIGKILL lb-b's monitor: (decision -> AssociateAddress, kill -> AssociateAddress);
        then lb-b comes back and web-b goes home."""
        a, b = self.members["lb-a"], self.members["lb-b"]
        target = self.world.nodes["lb-a"].secondary_ips[0]
        killed = time.monotonic()
        b.kill(signal.SIGKILL)
        arrived = wait(
            f"{self.tree}: web-b's AssociateAddress to lb-a",
            lambda: self.associated("web-b", target, killed),
            30,
        )
        decided = Events.read(a.probe).first_log(killed, "web-b", TAKEOVER_WORDS)
        if decided is None:
            raise SystemExit(f"{self.tree}: no log line saying lb-a takes web-b over ({a.log})")
        b.start()
        self.wait_home()
        return arrived - decided, arrived - killed


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait(what: str, check: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def monitors(
    region: SimulatedRegion, cli: Cli, tmp: Path, idle: float, takeovers: int
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {t: {} for t in TREES}
    with ExitStack() as stack:
        pairs = {t: Pair(t, region, cli, stack, tmp) for t in TREES}
        began = time.monotonic()
        for pair in pairs.values():
            for member in pair.members.values():
                member.start()
        for pair in pairs.values():
            pair.wait_home()
        time.sleep(2.0)  # the reconcile that follows the start-up decisions
        since = time.monotonic()
        time.sleep(idle)
        until = time.monotonic()
        for tree, pair in pairs.items():
            sessions = startup = reconciles = 0
            for m in pair.members.values():
                events = Events.read(m.probe)
                sessions += len(events.of("session", since, until))
                startup += len(events.of("session", began, since))
                reconciles += sum(
                    1
                    for r in region.calls("DescribeAddresses")
                    if r.client == m.key_id and since <= r.started <= until
                )
            if reconciles == 0:
                raise SystemExit(f"{tree}: no reconcile in the {idle:g} s idle window")
            out[tree] |= {
                "idle_window_s": round(until - since, 1),
                "idle_sessions": sessions,
                "idle_reconciles": reconciles,
                "sessions_per_reconcile": sessions / reconciles,
                "sessions_per_hour": sessions / reconciles * RECONCILES_PER_HOUR,
                "startup_sessions_per_monitor": startup / len(pair.members),
            }
        times: dict[str, list[tuple[float, float]]] = {t: [] for t in TREES}
        for i in range(takeovers):
            for tree in TREES if i % 2 == 0 else TREES[::-1]:
                times[tree].append(pairs[tree].takeover())
                time.sleep(1.0)
        for tree in TREES:
            out[tree] |= {
                "decision_to_associate_s": [d for d, _ in times[tree]],
                "kill_to_associate_s": [k for _, k in times[tree]],
            }
    return out


# -- the report -----------------------------------------------------------------------------


@dataclass
class Metric:
    name: str
    before: float
    after: float
    unit: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.before else self.after / self.before


def med(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return "" if low == high else f"varied {low:g}-{high:g}"


def metrics(
    counted: dict[str, dict[str, list[Count]]],
    timed: dict[str, dict[str, list[float]]],
    monitor: dict[str, dict[str, Any]],
) -> list[Metric]:
    rows: list[Metric] = []

    def per_call(title: str, call: str, attribute: str) -> None:
        values = {t: [float(getattr(c, attribute)) for c in counted[call][t]] for t in TREES}
        note = "; ".join(f"{t} {s}" for t in TREES if (s := spread(values[t])))
        rows.append(
            Metric(f"{title}: {call}", med(values["before"]), med(values["after"]), "", note)
        )

    per_call("threads started", "start web-b (takeover)", "threads")
    for call in counted:
        per_call("IMDS requests", call, "imds")
    for call in ("ocf monitor", "ocf start"):
        per_call("config loads", call, "config_opens")
    per_call("botocore sessions", "start web-b (takeover)", "sessions")
    for key, title in (
        ("sessions_per_reconcile", "monitor: botocore sessions per reconcile (idle)"),
        ("sessions_per_hour", "monitor: botocore sessions per hour (idle, x120)"),
        ("startup_sessions_per_monitor", "monitor: botocore sessions at start-up"),
    ):
        rows.append(Metric(title, monitor["before"][key], monitor["after"][key]))
    for key, title in (
        ("decision_to_associate_s", "monitor: takeover decision -> AssociateAddress"),
        ("kill_to_associate_s", "monitor: peer SIGKILL -> AssociateAddress"),
    ):
        values = {t: monitor[t][key] for t in TREES}
        rows.append(
            Metric(
                title,
                med(values["before"]),
                med(values["after"]),
                "s",
                f"median of {len(values['before'])}",
            )
        )
    for call, values in timed.items():
        rows.append(
            Metric(
                f"cold wall: {call}",
                med(values["before"]),
                med(values["after"]),
                "s",
                f"median of {len(values['before'])}, interleaved; fastest "
                f"{min(values['before']):.3f} / {min(values['after']):.3f} s",
            )
        )
    return rows


def table(rows: Sequence[Metric], before: str, after: str) -> str:
    def num(value: float, unit: str) -> str:
        if unit == "s":
            return f"{value:.3f} s"
        return f"{value:g}" if value == int(value) else f"{value:.2f}"

    header = ("metric", f"before ({before})", f"after ({after})", "after/before", "note")
    cells = [header] + [
        (
            r.name,
            num(r.before, r.unit),
            num(r.after, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells
    )


@contextmanager
def trees(before: str, after: str | None) -> Iterator[dict[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="eipha-trees-") as tmp:
        srcs = {
            "before": export(before, Path(tmp) / "before"),
            "after": ROOT / "src" if after is None else export(after, Path(tmp) / "after"),
        }
        for src in srcs.values():
            compileall.compile_dir(src / "eipha", quiet=1)
        yield srcs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="c297f38", metavar="REV", help="(default c297f38)")
    parser.add_argument(
        "--after", metavar="REV", help="a revision instead of the working tree's src/"
    )
    parser.add_argument("--repeat", type=int, default=9, help="cold runs per wall time (median)")
    parser.add_argument("--counts", type=int, default=2, help="probed runs per call (median)")
    parser.add_argument("--idle", type=float, default=31.0, help="idle monitor window, s (>30)")
    parser.add_argument("--takeovers", type=int, default=3, help="monitor takeovers per tree")
    parser.add_argument("--json", metavar="FILE", help="also write every number as JSON")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with (
        trees(args.before, args.after) as srcs,
        tempfile.TemporaryDirectory() as tmp,
        SimulatedRegion() as region,
    ):
        cli = Cli(region, Path(tmp), srcs)
        try:
            for tree, src in srcs.items():
                check_tree(src, cli.env(tree))
            after = args.after or srcs["after"]
            print(f"layering: {args.before} vs {after}, on {region.endpoint} ...", file=sys.stderr)
            counted = counts(cli, args.counts)
            timed = walls(cli, args.repeat)
            monitor = monitors(region, cli, Path(tmp), args.idle, args.takeovers)
        finally:
            cli.imds.stop()
    rows = metrics(counted, timed, monitor)
    print(table(rows, args.before, args.after or "src/"))
    for tree in TREES:
        names = counted["start web-b (takeover)"][tree][0].thread_names
        print(f"threads of one start, {tree}: {', '.join(names) or 'none'}")
    print(f"\n(total {time.perf_counter() - began:.0f} s; python {sys.version.split()[0]})")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "before": args.before,
                    "metrics": [asdict(r) | {"ratio": r.ratio} for r in rows],
                    "counts": {
                        call: {t: [asdict(c) for c in cs] for t, cs in by.items()}
                        for call, by in counted.items()
                    },
                    "walls": timed,
                    "monitor": monitor,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
