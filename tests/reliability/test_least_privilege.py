"""Least privilege: start, stop and status need no root, and each shipped systemd unit keeps
only the capabilities its command needs — checked in the unit files against a table that
says why, and by running the command with exactly the unit's capability bounding set.

The unprivileged runs use setpriv (uid/gid 65534, no groups, no capabilities) inside a
private mount namespace whose /tmp is a directory of the test's: eipha's default run
directory for a non-root user without XDG_RUNTIME_DIR is /tmp/eipha-UID, and nothing may be
created in the machine's own /tmp. The capability runs build their own network namespaces."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from eipha.sim.imds_double import node_metadata
from eipha.sim.netns import Netns, NodeNetns
from tests.integration.conftest import Lab

UNITS = Path(__file__).resolve().parents[2] / "src" / "eipha" / "resource_agents" / "systemd"
NOBODY = 65534
NOBODY_DIR = f"eipha-{NOBODY}"  # eipha's run directory for uid 65534, under /tmp
SECONDARY_A = "10.0.0.12"

# mount the test's directory ("$1") on /tmp, keeping visible the paths in "$2" (":"-separated,
# those of the checkout and its virtualenv that lie under /tmp, as in a CI clone there), then
# become nobody with no capabilities at all
AS_NOBODY = (
    "set -e; tmp=$1; keep=$2; shift 2; IFS=:; for path in $keep; do "
    'mkdir -p "$tmp/${path#/tmp/}"; mount --bind "$path" "$tmp/${path#/tmp/}"; done; unset IFS; '
    'mount --rbind "$tmp" /tmp; '
    f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
    '--inh-caps=-all --bounding-set=-all --no-new-privs "$@"'
)


def under_tmp() -> str:
    """The checkout and the virtualenv, where they lie under /tmp (outermost only)."""
    tmp = Path("/tmp")
    paths = {p for p in (UNITS.parents[1], Path(sys.prefix).resolve()) if tmp in p.parents}
    outer = [p for p in paths if not any(q in p.parents for q in paths)]
    return ":".join(str(p) for p in sorted(outer))


@dataclass
class Result:
    code: int
    out: str
    err: str


class Unprivileged:
    """Runs commands as uid 65534 against the lab, with ``tmp`` as /tmp."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        tmp.mkdir()
        tmp.chmod(0o1777)  # like /tmp
        self.config = tmp / "eipha.yaml"
        self.config.write_text(self.lab.config("lb-a").read_text())
        self.config.chmod(0o644)  # root's file, readable by all, as /etc/eipha/eipha.yaml

    def env(self) -> dict[str, str]:
        env = self.lab.env("lb-a", Path("/tmp/eipha.yaml"))
        for name in ("EIPHA_RUN_DIR", "XDG_RUNTIME_DIR"):
            env.pop(name, None)  # eipha's own default, as under a cluster manager
        env["HOME"] = "/nonexistent"
        return env

    def argv(self, cmd: Sequence[str]) -> list[str]:
        prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", AS_NOBODY]
        return [*prefix, "sh", str(self.tmp), under_tmp(), *cmd]

    def run(self, *cmd: str) -> Result:
        proc = subprocess.run(
            self.argv(cmd), env=self.env(), capture_output=True, text=True, timeout=60, check=False
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def eipha(self, *args: str) -> Result:
        return self.run(sys.executable, "-m", "eipha", *args)


def mode(path: Path) -> str:
    st = path.lstat()
    return f"{st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):04o}"


# --------------------------------------------------------------------------- no root needed


def test_start_stop_and_status_need_no_root(lab: Lab, tmp_path: Path, root_only: None):
    nobody = Unprivileged(lab, tmp_path / "tmp")
    # who we really are in there: uid 65534, not one capability
    who = nobody.run("sh", "-c", "id -u; id -G; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status")
    assert who.code == 0, who.err
    uid, groups, *caps = who.out.split("\n")
    assert (uid, groups) == (str(NOBODY), str(NOBODY))
    assert all(line.endswith("0000000000000000") for line in caps if line), caps

    started = nobody.eipha("start", "web-a", "web-b")
    assert started.code == 0, started.err
    assert lab.placement("web-a") == ("lb-a", "10.0.0.11")
    assert lab.placement("web-b") == ("lb-a", SECONDARY_A)
    status = nobody.eipha("status", "web-b")
    assert (status.code, status.out) == (0, "running\n"), status.err
    stopped = nobody.eipha("stop", "web-b")
    assert stopped.code == 0, stopped.err
    assert lab.placement("web-b") == (None, None)
    status = nobody.eipha("status", "web-b")
    assert (status.code, status.out) == (3, "not running\n"), status.err

    # the locks went to /tmp/eipha-65534/locks, all of it owner-only and nobody's
    run_dir = nobody.tmp / NOBODY_DIR
    made = {p.relative_to(nobody.tmp).as_posix(): mode(p) for p in [run_dir, *run_dir.rglob("*")]}
    assert made == {
        NOBODY_DIR: f"{NOBODY}:{NOBODY} 0700",
        f"{NOBODY_DIR}/locks": f"{NOBODY}:{NOBODY} 0700",
        f"{NOBODY_DIR}/locks/{lab.alloc('web-a')}.lock": f"{NOBODY}:{NOBODY} 0600",
        f"{NOBODY_DIR}/locks/{lab.alloc('web-b')}.lock": f"{NOBODY}:{NOBODY} 0600",
    }
    mount_points = {Path(p).relative_to("/tmp").parts[0] for p in under_tmp().split(":") if p}
    names = sorted(p.name for p in nobody.tmp.iterdir() if p.name not in mount_points)
    assert names == [NOBODY_DIR, "eipha.yaml"]


def _hostile(tmp: Path, kind: str) -> None:
    """Someone else got to /tmp/eipha-65534 first."""
    target = tmp / NOBODY_DIR
    if kind == "root's, open to all":
        target.mkdir()
        target.chmod(0o777)
    elif kind == "nobody's, writable by others":
        target.mkdir()
        os.chown(target, NOBODY, NOBODY)
        target.chmod(0o757)
    else:  # a symlink to a directory of nobody's own
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        os.chown(elsewhere, NOBODY, NOBODY)
        target.symlink_to(elsewhere)


HOSTILE = ["root's, open to all", "nobody's, writable by others", "a symlink"]


def test_a_run_directory_someone_else_controls_is_refused(
    lab: Lab, tmp_path: Path, root_only: None
):
    cases = []
    for number, kind in enumerate(HOSTILE):
        nobody = Unprivileged(lab, tmp_path / f"tmp{number}")
        _hostile(nobody.tmp, kind)
        cases.append((kind, nobody))
    mark = lab.region.mark()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: case[1].eipha("start", "web-b"), cases))
    for (kind, _), result in zip(cases, results, strict=True):
        assert result.code == 4, (kind, result.err)  # insufficient privilege
        assert result.err.count("\n") == 1, (kind, result.err)
        assert f"eipha: error: unsafe run directory /tmp/{NOBODY_DIR}" in result.err, result.err
    assert "AssociateAddress" not in lab.region.actions(mark)
    assert lab.placement("web-b") == (None, None)


# --------------------------------------------------------------------------- the units


@dataclass(frozen=True)
class Needs:
    """What one unit's process needs, and why."""

    user: str | None  # None: root
    capabilities: frozenset[str]
    writable: frozenset[str]
    why: str


NEEDS = {
    "eipha-monitor.service": Needs(
        user=None,
        capabilities=frozenset({"CAP_NET_RAW"}),
        writable=frozenset({"/run/eipha", "-/var/lib/node_exporter"}),
        why="CAP_NET_RAW: ICMP echo to quorum targets opens a raw socket unless "
        "net.ipv4.ping_group_range admits the group (none is needed with A.B.C.D:PORT "
        "targets). Nothing else: as uid 0 it reads its root-owned 0600 key and config and "
        "writes its state in /run/eipha without CAP_DAC_OVERRIDE; EC2, IMDS and the peers "
        "are plain sockets on unprivileged ports (7694, 9694). Writable: /run/eipha (state, "
        "locks) and node_exporter's textfile directory, if it exists (monitor.metrics).",
    ),
    "eipha-secondary-ips.service": Needs(
        user=None,
        capabilities=frozenset({"CAP_NET_ADMIN"}),
        writable=frozenset(),
        why="CAP_NET_ADMIN: adding and removing addresses over netlink (RTM_NEWADDR, "
        "RTM_DELADDR). It reads IMDS and /sys and writes no file at all.",
    ),
}


def unit_settings(name: str) -> dict[str, list[str]]:
    """``[Service]`` settings of a unit file: name -> every value given, in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def words(settings: dict[str, list[str]], key: str) -> set[str]:
    return {word for value in settings.get(key, []) for word in value.split()}


def test_every_service_unit_is_in_the_table():
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(NEEDS)


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_each_unit_keeps_only_the_capabilities_it_needs(name: str):
    needs, unit = NEEDS[name], unit_settings(name)
    assert unit.get("User", [None])[-1] == needs.user
    assert words(unit, "CapabilityBoundingSet") == needs.capabilities, needs.why
    assert words(unit, "AmbientCapabilities") <= needs.capabilities
    assert unit["NoNewPrivileges"] == ["yes"]  # no setuid binary gets any more back
    assert unit["ProtectSystem"] == ["strict"]  # read-only, but for:
    assert words(unit, "ReadWritePaths") == needs.writable, needs.why


def exposure(name: str, tmp: Path) -> float:
    """systemd-analyze security's overall exposure (0 = locked down, 10 = unprotected)."""
    text = (UNITS / name).read_text().replace("/usr/local/bin/eipha", f"{sys.prefix}/bin/eipha")
    (tmp / name).write_text(text)
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: scripts/test.sh installs systemd"
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", name],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@pytest.mark.parametrize(
    ("name", "ceiling"), [("eipha-monitor.service", 4.5), ("eipha-secondary-ips.service", 4.5)]
)
def test_each_unit_is_sandboxed(name: str, ceiling: float, tmp_path: Path):
    # systemd 252 (Debian 12) scores the units 3.8 and 3.9 ("OK"); with only the
    # capability, ProtectSystem/Home and PrivateTmp settings they scored 6.1 and 6.2
    assert exposure(name, tmp_path) <= ceiling


def with_bounding_set(caps: AbstractSet[str], cmd: Sequence[str]) -> list[str]:
    """``cmd`` as root with exactly ``caps`` (as the unit gives them), no new privileges."""
    keep = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in sorted(caps))])
    return ["setpriv", f"--bounding-set={keep}", "--inh-caps=-all", "--no-new-privs", *cmd]


def test_secondary_ips_works_with_only_the_units_capability(root_only: None):
    caps = words(unit_settings("eipha-secondary-ips.service"), "CapabilityBoundingSet")
    mac, primary = "0a:00:00:00:00:0a", "10.0.0.11"
    data = node_metadata(
        "i-0aaaaaaaaaaaaaaaa",
        "eu-west-1",
        "eu-west-1a",
        [(mac, "eni-0aaaaaaaaaaaaaaaa", 0, primary, [SECONDARY_A], "10.0.0.0/24")],
    )
    with NodeNetns(mac, primary) as ns:
        ns.start_imds(data)
        env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=ns.imds_endpoint)
        config = ns.dir / "eipha.yaml"
        config.write_text(
            "eips: {web-a: {allocation_id: eipalloc-0123456789abcdef0, home: lb-a}}\n"
        )
        env["EIPHA_CONFIG"] = str(config)
        cmd = [sys.executable, "-m", "eipha", "secondary-ips"]
        without = ns.run(with_bounding_set(frozenset(), cmd), env=env)
        assert without.returncode == 4, without.stderr  # root, but not CAP_NET_ADMIN
        assert (SECONDARY_A, 32) not in ns.addresses("eth0")
        done = ns.run(with_bounding_set(caps, cmd), env=env)
        assert done.returncode == 0, done.stderr
        assert (SECONDARY_A, 32) in ns.addresses("eth0")


def test_the_monitor_needs_cap_net_raw_only_for_icmp_quorum(tmp_path: Path, root_only: None):
    """In a namespace whose ping_group_range admits nobody: with the unit's one capability
    the ICMP quorum target answers; without it the monitor runs on, and says what it lacks."""
    caps = words(unit_settings("eipha-monitor.service"), "CapabilityBoundingSet")
    key = tmp_path / "monitor.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    with Netns("eipha-caps") as ns:
        sysctl = ns.run(["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"])
        assert sysctl.returncode == 0, sysctl.stderr
        runs = {"with": caps, "without": frozenset()}
        for port, (label, keep) in enumerate(runs.items(), start=17694):
            config = tmp_path / f"{label}.yaml"
            config.write_text(yaml.safe_dump(_monitor_config(key, port)))
            env = dict(os.environ, EIPHA_CONFIG=str(config), EIPHA_RUN_DIR=str(tmp_path / label))
            log = (tmp_path / f"{label}.log").open("wb")
            ns.popen(
                with_bounding_set(keep, [sys.executable, "-m", "eipha", "monitor"]),
                env=env,
                stdout=log,
                stderr=log,
            )
            log.close()
        try:
            seen = {label: _quorum(tmp_path / label / "monitor.json") for label in runs}
        finally:
            for proc in ns.procs:
                proc.send_signal(signal.SIGTERM)
    assert seen["with"] == (True, "127.0.0.1 answered")
    assert seen["without"][0] is False
    assert "needs ping_group_range or CAP_NET_RAW" in seen["without"][1]


def _monitor_config(key: Path, port: int) -> dict[str, Any]:
    return {
        "node_name": "lb-a",
        "nodes": {
            "lb-a": {"instance_id": "i-0aaaaaaaaaaaaaaaa", "address": "127.0.0.11"},
            "lb-b": {"instance_id": "i-0bbbbbbbbbbbbbbbb", "address": "127.0.0.21"},
        },
        "eips": {
            "web-a": {"allocation_id": "eipalloc-0123456789abcdef0", "home": "lb-a"},
            "web-b": {"allocation_id": "eipalloc-0fedcba9876543210", "home": "lb-b"},
        },
        "monitor": {
            "port": port,
            "key_file": str(key),
            "interval": 0.3,
            "dead_after": 30.0,
            "init_dead": 30.0,
            "quorum": ["127.0.0.1"],
        },
    }


def _quorum(state: Path, timeout: float = 20) -> tuple[bool, str]:
    """(quorum, its detail) once the first probe round is in the state file."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            snapshot = json.loads(state.read_text())
        except (OSError, ValueError):
            snapshot = {}
        detail = str(snapshot.get("quorum_detail", "not probed yet"))
        if detail != "not probed yet":
            return bool(snapshot["quorum"]), re.sub(r" \d+\.\d s ago$", "", detail)
        time.sleep(0.05)
    raise AssertionError(f"no quorum verdict in {state}")
