"""Secrets never leave eipha: the monitor key, AWS secret keys and session tokens (from the
environment and from the instance role the IMDSv2 double serves) appear in no stream eipha
writes — stdout, stderr, syslog, the monitor's log, state file and metrics textfile, the
lock files — on success and on failure, with debug logging on. Key files open to group or
others are refused, a key written into the YAML is refused without being echoed, and what
eipha creates in its run directory is owner-only whatever the umask.

Syslog: eipha writes to /dev/log when stderr is not a terminal and the socket exists. As
root, every eipha here runs in a private mount namespace whose /dev is a small tmpfs with
/dev/log bound to a datagram socket this test reads, so syslog is captured too (this
machine may have no syslog at all); nothing outside that namespace changes."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime as dt
import functools
import itertools
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Lab, free_port, metadata_for

ROLE = "eipha-lb-role"
WINDOW = 12  # a leak of any 12 consecutive characters of a secret counts (clipped messages)
ADDRESS = {"lb-a": "127.0.0.11", "lb-b": "127.0.0.21"}
SECONDARY = {"lb-a": "10.0.0.12", "lb-b": "10.0.0.22"}


def _secret() -> str:
    return secrets.token_urlsafe(30)  # 40 random characters: no window of it is a word


# fresh for every session, and long enough that any WINDOW-long piece of one is unique
ENV_ACCESS_KEY = "AKIAENV" + secrets.token_hex(6).upper()
ENV_SECRET = _secret()
ENV_TOKEN = _secret()
ROLE_ACCESS_KEY = "ASIAROLE" + secrets.token_hex(6).upper()
ROLE_SECRET = _secret()
ROLE_TOKEN = _secret()
KEY_TEXT = secrets.token_hex(32)  # the monitor key as `openssl rand -hex 32` writes it


def key_forms(key: bytes) -> dict[str, bytes]:
    """The key as it might leak: itself, hex (either case), base64 (either alphabet)."""
    return {
        "raw": key,
        "hex": key.hex().encode(),
        "HEX": key.hex().upper().encode(),
        "base64": base64.b64encode(key),
        "base64url": base64.urlsafe_b64encode(key),
    }


SECRETS: dict[str, bytes] = {
    "AWS_SECRET_ACCESS_KEY": ENV_SECRET.encode(),
    "AWS_SESSION_TOKEN": ENV_TOKEN.encode(),
    "role SecretAccessKey": ROLE_SECRET.encode(),
    "role Token": ROLE_TOKEN.encode(),
    # the text key as eipha uses it, and the 32 bytes it encodes
    **{f"monitor key ({k})": v for k, v in key_forms(KEY_TEXT.encode()).items()},
    **{f"monitor key bytes ({k})": v for k, v in key_forms(bytes.fromhex(KEY_TEXT)).items()},
}


def leaks(streams: Mapping[str, bytes]) -> list[str]:
    """Which secret (any WINDOW-long piece of any of its forms) shows in which stream."""
    found = []
    for stream, data in streams.items():
        for name, form in SECRETS.items():
            pieces = {form[i : i + WINDOW] for i in range(len(form) - WINDOW + 1)}
            if any(piece in data for piece in pieces):
                found.append(f"{name} in {stream}")
    return found


def role_credentials() -> str:
    now = dt.datetime.now(dt.UTC)
    return json.dumps(
        {
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": ROLE_ACCESS_KEY,
            "SecretAccessKey": ROLE_SECRET,
            "Token": ROLE_TOKEN,
            "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Expiration": (now + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


class Syslog:
    """A datagram socket standing in for /dev/log; a thread keeps it drained (a full queue
    would block the sender)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eipha-syslog-"))  # short: sun_path <= 108
        self.path = self.dir / "log"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.path.chmod(0o666)
        self.sock.settimeout(0.05)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def text(self) -> bytes:
        time.sleep(0.1)  # the last datagrams of a process that just exited
        return b"\n".join(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


# /dev in the private mount namespace: a tmpfs with the few devices Python needs, and
# /dev/log bound to our socket ("$1"); then exec the command
PRIVATE_DEV = (
    "set -e; mount -t tmpfs -o mode=0755,size=64k eipha-dev /dev; "
    "mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; "
    "mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; "
    'ln -s /proc/self/fd /dev/fd; touch /dev/log; mount --bind "$1" /dev/log; '
    'shift; exec "$@"'
)


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Harness:
    """Runs eipha as node lb-a (of the lab, when there is one) and keeps every stream it
    wrote."""

    tmp: Path
    lab: Lab | None
    syslog: Syslog | None
    streams: dict[str, bytes] = field(default_factory=dict)
    run_dir: Path = field(init=False)
    port: int | None = None  # the monitor's
    runs: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.run_dir = self.tmp / "run-lb-a"  # eipha creates it

    def argv(self, args: tuple[str, ...]) -> list[str]:
        cmd = [sys.executable, "-m", "eipha", *args]
        if self.syslog is None:
            return cmd
        prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_DEV]
        return [*prefix, "sh", str(self.syslog.path), *cmd]

    def env(self, config: Path, creds: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = self.lab.env("lb-a", config) if self.lab else {**os.environ}
        env["EIPHA_CONFIG"] = str(config)
        env["EIPHA_RUN_DIR"] = str(self.run_dir)
        if creds == "env":
            env["AWS_ACCESS_KEY_ID"] = ENV_ACCESS_KEY
            env["AWS_SECRET_ACCESS_KEY"] = ENV_SECRET
            env["AWS_SESSION_TOKEN"] = ENV_TOKEN
        else:  # the instance role, from the IMDSv2 double (on loopback: checked here)
            assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].startswith("http://127.0.0.1:")
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                env.pop(name, None)
            env["AWS_EC2_METADATA_DISABLED"] = "false"
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        config: Path,
        creds: str = "env",
        extra: Mapping[str, str] | None = None,
        umask: int = 0o022,
    ) -> Result:
        proc = subprocess.run(
            self.argv(args),
            env=self.env(config, creds, extra),
            capture_output=True,
            timeout=60,
            check=False,
            umask=umask,
        )
        label = f"eipha {' '.join(args)} [{creds}, {config.name}, #{next(self.runs)}]"
        self.streams[f"stdout of {label}"] = proc.stdout
        self.streams[f"stderr of {label}"] = proc.stderr
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def popen(self, *args: str, config: Path, creds: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                self.argv(args), env=self.env(config, creds, None), stdout=out, stderr=out
            )

    def keep_files(self, where: Path, label: str) -> None:
        for path in [where, *where.rglob("*")] if where.is_dir() else [where]:
            if path.is_file():
                self.streams[f"{label} {path.relative_to(where.parent)}"] = path.read_bytes()

    def check(self) -> None:
        if self.syslog is not None:
            self.streams["syslog"] = self.syslog.text()
        assert leaks(self.streams) == []


@contextlib.contextmanager
def harness_for(tmp: Path, lab: Lab | None) -> Iterator[Harness]:
    syslog = Syslog() if os.geteuid() == 0 else None
    try:
        yield Harness(tmp, lab, syslog)
    finally:
        if syslog is not None:
            syslog.close()


@pytest.fixture
def harness(lab: Lab) -> Iterator[Harness]:
    """With the lab; lb-a's IMDSv2 double also serves an instance role's credentials."""
    data = {**metadata_for(lab.world, "lb-a")}
    data[f"meta-data/iam/security-credentials/{ROLE}"] = role_credentials()
    lab.imds["lb-a"].update(data)
    with harness_for(lab.tmp, lab) as h:
        yield h


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Harness]:
    """Without the lab: for what fails before eipha talks to anything. The monitor's port
    is taken, so a monitor that accepted what it must refuse stops at once (exit 6)."""
    with (
        harness_for(tmp_path, None) as h,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy,
    ):
        busy.bind((ADDRESS["lb-a"], 0))
        h.port = int(busy.getsockname()[1])
        yield h


def in_parallel(*calls: Callable[[], Result]) -> list[Result]:
    """Independent eipha runs, two at a time (this machine has two cores)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda call: call(), calls))


def owner_only(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) that group or others may use."""
    return [
        f"{p} {stat.S_IMODE(p.lstat().st_mode):04o}"
        for p in [root, *root.rglob("*")]
        if p.lstat().st_mode & 0o077
    ]


# --------------------------------------------------------------------------- the CLI


def test_commands_at_debug_level_show_no_credentials_from_the_environment(
    lab: Lab, harness: Harness
):
    config = lab.config("lb-a", keepalived={"instances": {"VI_WEB": ["web-a", "web-b"]}})
    mark = lab.region.mark()
    run = functools.partial(harness.run, config=config)
    assert run("-v", "start", "web-a", "web-b").code == 0
    assert lab.placement("web-b") == ("lb-a", SECONDARY["lb-a"])
    status, show, show_json, _validate = in_parallel(
        functools.partial(run, "-vv", "status", "web-a", "web-b"),
        functools.partial(run, "-v", "show"),
        functools.partial(run, "show", "--json"),
        functools.partial(run, "-v", "validate"),  # this host is no EC2 node: any verdict
    )
    assert (status.code, status.out) == (0, "web-a: running\nweb-b: running\n")
    assert (show.code, show_json.code) == (0, 0)
    assert run("-v", "stop", "web-b").code == 0
    assert lab.placement("web-b") == (None, None)
    # the cluster managers' ways in
    assert run("heartbeat", "web-b", "start").code == 0
    heartbeat, ocf, keepalived = in_parallel(
        functools.partial(run, "heartbeat", "web-b", "status"),
        functools.partial(run, "ocf", "monitor", extra={"OCF_RESKEY_eip": "web-b"}),
        functools.partial(run, "keepalived", "notify", "INSTANCE", "VI_WEB", "MASTER", "100"),
    )
    assert (heartbeat.out, ocf.code, keepalived.code) == ("running\n", 0, 0)

    # the secrets were really in use: EC2 saw the access key id that comes with them
    clients = {call.client for call in lab.region.calls(since=mark)} - {"testing"}  # the lab's
    assert clients == {ENV_ACCESS_KEY}
    # and debug logging really was on
    assert "this node is lb-a" in "".join(d.decode() for d in harness.streams.values())
    harness.keep_files(harness.run_dir, "run dir")
    harness.check()
    if harness.syslog is not None:  # syslog really was captured
        assert b"associated with" in harness.streams["syslog"]


def test_commands_at_debug_level_show_no_instance_role_credentials(lab: Lab, harness: Harness):
    config = lab.config("lb-a")
    mark = lab.region.mark()
    run = functools.partial(harness.run, config=config, creds="role")
    assert run("-v", "start", "web-a", "web-b").code == 0
    assert run("-vv", "status", "web-b").out == "running\n"
    assert run("-v", "show").code == 0
    assert run("-v", "stop", "web-b").code == 0
    clients = {call.client for call in lab.region.calls(since=mark)} - {"testing"}
    assert clients == {ROLE_ACCESS_KEY}  # the role's keys, from the IMDSv2 double
    harness.check()


def test_failures_show_no_credentials(lab: Lab, harness: Harness):
    config = lab.config("lb-a")
    run = functools.partial(harness.run, "-v", config=config)
    lab.region.inject(None, "AuthFailure", times=None)
    for failed in in_parallel(
        functools.partial(run, "status", "web-a", creds="env"),
        functools.partial(run, "status", "web-a", creds="role"),
    ):
        assert (failed.code, failed.out) == (4, "not running\n")
        assert "AuthFailure" in failed.err
    lab.region.clear_faults()
    lab.region.inject("AssociateAddress", "UnauthorizedOperation", times=None)
    failed = run("start", "web-b")
    assert failed.code == 4
    assert "UnauthorizedOperation" in failed.err
    lab.region.clear_faults()
    lab.imds["lb-a"].down = True  # IMDS answers 500 to everything
    status, start = in_parallel(
        functools.partial(run, "status", "web-a"),
        functools.partial(run, "start", "web-b", creds="role"),
    )
    assert (status.code, start.code) == (4, 1)
    lab.imds["lb-a"].down = False
    # the role's credentials cannot be had: no credentials, exit 4
    lab.imds["lb-a"].not_found.add(f"meta-data/iam/security-credentials/{ROLE}")
    assert run("start", "web-b", creds="role").code == 4
    assert lab.placement("web-b") == (None, None)  # nothing was done
    harness.check()


# --------------------------------------------------------------------------- the monitor


def monitor_config(
    tmp: Path, key: Path, lab: Lab | None = None, port: int | None = None, **extra: Any
) -> Path:
    """lb-a's config with a monitor section (the lab's pair, or a made-up one)."""
    nodes = {
        "lb-a": {"instance_id": "i-0aaaaaaaaaaaaaaaa", "address": ADDRESS["lb-a"]},
        "lb-b": {"instance_id": "i-0bbbbbbbbbbbbbbbb", "address": ADDRESS["lb-b"]},
    }
    eips = {
        "web-a": {"allocation_id": "eipalloc-0123456789abcdef0", "home": "lb-a"},
        "web-b": {"allocation_id": "eipalloc-0fedcba9876543210", "home": "lb-b"},
    }
    if lab is not None:
        for n in lab.world.nodes.values():
            nodes[n.name]["instance_id"] = n.instance_id
        eips = {
            e.name: {"allocation_id": e.allocation_id, "home": e.home}
            for e in lab.world.eips.values()
        }
    data = {
        "node_name": "lb-a",
        "timeout": 10,
        "nodes": nodes,
        "eips": eips,
        "monitor": {
            "port": port or free_port(socket.SOCK_DGRAM),
            "key_file": str(key),
            "interval": 0.5,
            "dead_after": 1.5,
            "init_dead": 1.5,
            "quorum": [f"127.0.0.1:{lab.region.port if lab else 9}"],
            **extra,
        },
    }
    path = tmp / f"lb-a-{key.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def port(config: Path) -> int:
    return int(yaml.safe_load(config.read_text())["monitor"]["port"])


def write_key(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


def wait_for(what: str, check: Callable[[], object], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_monitor_shows_no_key_and_no_credentials(lab: Lab, harness: Harness):
    key = write_key(lab.tmp / "monitor.key", KEY_TEXT.encode() + b"\n")
    metrics = lab.tmp / "eipha.prom"
    config = monitor_config(lab.tmp, key, lab, metrics={"textfile": str(metrics)})
    log = lab.tmp / "monitor.log"
    state = harness.run_dir / "monitor.json"
    proc = harness.popen("-v", "monitor", config=config, creds="role", log=log)
    try:
        # lb-b never speaks: after init_dead lb-a takes web-b over, with the role's keys
        wait_for("web-b on lb-a", lambda: lab.placement("web-b") == ("lb-a", SECONDARY["lb-a"]))
        wait_for("the state file", lambda: state.exists() and b"web-b" in state.read_bytes())
        wait_for("the metrics file", metrics.exists)
        # a forged heartbeat from the peer's address: rejected, and logged about
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ADDRESS["lb-b"], 0))
            forged = b"EIPHA1" + os.urandom(32) + b'{"node":"lb-b"}'
            s.sendto(forged, (ADDRESS["lb-a"], port(config)))
        for args in (("monitor", "--status"), ("monitor", "--status", "--json")):
            shown = harness.run(*args, config=config, creds="role")
            assert shown.code == 0, shown.err
        harness.keep_files(harness.run_dir, "run dir")
        harness.keep_files(metrics, "metrics")
        modes = owner_only(harness.run_dir)
        proc.send_signal(signal.SIGHUP)
        wait_for("the reload", lambda: b"reloaded" in log.read_bytes())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = log.read_text()
    assert "taking it over" in text, text
    assert "rejected a heartbeat" in text, text
    assert "Traceback" not in text, text
    harness.streams["monitor log"] = log.read_bytes()
    harness.check()
    assert modes == []  # the run directory, the state file and the locks
    # the metrics textfile is for node_exporter, which runs as its own user: readable by
    # others on purpose, but nobody else may change it
    assert metrics.stat().st_mode & 0o022 == 0


# --------------------------------------------------------------------------- key files


def test_key_files_open_to_group_or_others_are_refused(bare: Harness):
    modes = (0o640, 0o604, 0o620, 0o602)  # group or others may read, or write
    keys = [write_key(bare.tmp / f"{mode:o}.key", KEY_TEXT.encode(), mode) for mode in modes]
    results = in_parallel(
        *(
            functools.partial(
                bare.run, "monitor", config=monitor_config(bare.tmp, k, port=bare.port)
            )
            for k in keys
        )
    )
    for key, result in zip(keys, results, strict=True):
        assert result.code == 4, result.err  # insufficient privilege (docs/exit-codes.md)
        assert result.err.count("\n") == 1, result.err  # one line
        assert result.err.startswith(f"eipha: error: monitor key file {key} is open to group")
        assert f"chmod 600 {key}" in result.err
        assert result.out == ""
    bare.check()


def test_symlinked_keys_and_keys_of_other_users_are_refused(bare: Harness):
    real = write_key(bare.tmp / "real.key", KEY_TEXT.encode())
    link = bare.tmp / "link.key"
    link.symlink_to(real)
    cases = [(link, "is a symlink")]
    if os.geteuid() == 0:
        foreign = write_key(bare.tmp / "foreign.key", KEY_TEXT.encode())
        os.chown(foreign, 65534, 65534)
        cases.append((foreign, "is owned by uid 65534, not by uid 0"))
    results = in_parallel(
        *(
            functools.partial(
                bare.run, "monitor", config=monitor_config(bare.tmp, k, port=bare.port)
            )
            for k, _ in cases
        )
    )
    for (key, words), result in zip(cases, results, strict=True):
        assert (result.code, result.err.count("\n")) == (4, 1), result.err
        assert f"monitor key file {key} {words}" in result.err
    bare.check()


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("monitor.key", "monitor.key: unknown key 'key'"),
        ("monitor.key_file", "monitor.key_file: "),  # the key pasted where its path goes
        ("monitor.secret", "monitor.secret: unknown key 'secret'"),
        ("monitor_key", "monitor_key: unknown key 'monitor_key'"),
        ("aws_secret_access_key", "aws_secret_access_key: unknown key"),
    ],
)
def test_a_secret_in_the_yaml_is_refused_and_not_echoed(bare: Harness, where: str, words: str):
    key = write_key(bare.tmp / "monitor.key", KEY_TEXT.encode())
    config = monitor_config(bare.tmp, key, port=bare.port)
    data = yaml.safe_load(config.read_text())
    section, _, name = where.rpartition(".")
    (data[section] if section else data)[name] = KEY_TEXT if "key" in where else ENV_SECRET
    config.write_text(yaml.safe_dump(data))
    results = in_parallel(
        functools.partial(bare.run, "config", "check", str(config), config=config),
        functools.partial(bare.run, "monitor", config=config),
    )
    for result in results:
        assert result.code == 6, result.err  # not configured
        assert words in result.err, result.err
    bare.check()


# --------------------------------------------------------------------------- run directory


def test_what_eipha_creates_is_owner_only_whatever_the_umask(lab: Lab, harness: Harness):
    config = lab.config("lb-a", keepalived={"instances": {"VI_WEB": ["web-a", "web-b"]}})
    assert harness.run("start", "web-a", "web-b", config=config, umask=0).code == 0
    notify = ("keepalived", "notify", "INSTANCE", "VI_WEB", "BACKUP", "100")
    assert harness.run(*notify, config=config, umask=0).code == 0
    created = sorted(p.name for p in harness.run_dir.rglob("*"))
    assert "locks" in created, created
    assert f"{lab.alloc('web-b')}.lock" in created, created
    assert len(created) >= 5, created  # + web-a's lock, keepalived's lock and its ledger
    assert owner_only(harness.run_dir) == []
