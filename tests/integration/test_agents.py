"""The cluster-manager front ends against the simulated region, as the managers run them:
``eipha heartbeat|keepalived|ocf`` as subprocesses, and the shell shims of
``resource_agents/`` with a bare environment (``env -i``) and ``/etc/default/eipha`` given by
``EIPHA_DEFAULTS``, the way Heartbeat, keepalived and Pacemaker start scripts.

What each manager relies on: Heartbeat reads status *text* and reboots on a failed stop;
keepalived's BACKUP/FAULT/STOP must make no API call and overlapping notify scripts must
not interleave; Pacemaker needs OCF codes, ``ocf-exit-reason:`` and ``ocf-tester``'s
approval.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import groupby, pairwise
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, Result
from tests.integration.test_cli_more import Launch, finish, on, processes

DESCRIBE, ASSOCIATE, DISASSOCIATE = "DescribeAddresses", "AssociateAddress", "DisassociateAddress"
ADDRESS_ACTIONS = {DESCRIBE, ASSOCIATE, DISASSOCIATE}
CLOSED = "http://127.0.0.1:9"  # port 9 on loopback: connection refused at once
REPO = Path(__file__).resolve().parents[2]
SHIMS = REPO / "src" / "eipha" / "resource_agents"
EIPHA_BIN = Path(sys.executable).with_name("eipha")
INSTANCES = {"keepalived": {"instances": {"VI_WEB": ["web-a", "web-b"], "VI_B": ["web-b"]}}}
REASON = "ocf-exit-reason:"


def binding(lab: Lab, node: str, ip: str) -> tuple[str, str]:
    return lab.world.nodes[node].eni_id, ip


def reasons(err: str, prefix: str = REASON) -> list[str]:
    return [line[len(prefix) :] for line in err.splitlines() if line.startswith(prefix)]


# --------------------------------------------------------------------------- the shims


def defaults_file(lab: Lab, node: str, config: Path | None, run_dir: Path) -> Path:
    """What an operator puts in /etc/default/eipha, here pointing at the lab."""
    values = {
        "AWS_ENDPOINT_URL_EC2": lab.region.endpoint,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": lab.imds[node].endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "NO_PROXY": "127.0.0.1,localhost",
        "EIPHA_RUN_DIR": str(run_dir),
        **({"EIPHA_CONFIG": str(config)} if config else {}),
    }
    path = lab.tmp / f"default-eipha-{node}"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def run_shim(lab: Lab, node: str, shim: Path, *args: str, **env: str) -> Result:
    """Run a shim as a cluster manager does: nothing in the environment but PATH, the shim's
    own two variables and what the manager passes (``env``)."""
    config = lab.config(node, **INSTANCES)
    defaults = defaults_file(lab, node, config, lab.tmp / "run")
    bare = ["PATH=/usr/bin:/bin", f"EIPHA_BIN={EIPHA_BIN}", f"EIPHA_DEFAULTS={defaults}"]
    bare += [f"{k}={v}" for k, v in env.items()]
    mark = lab.region.mark()
    proc = subprocess.run(
        ["env", "-i", *bare, str(shim), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, lab.region.actions(mark))


@pytest.mark.parametrize(
    "shim", ["heartbeat/eipha", "ocf/eipha", "keepalived/eipha-notify"], ids=str
)
def test_shims_are_executable_posix_sh(shim: str):
    path = SHIMS / shim
    assert path.read_text().startswith("#!/bin/sh\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert 'EIPHA_BIN="${EIPHA_BIN:-/usr/local/bin/eipha}"' in path.read_text()


def test_shims_pass_shellcheck():
    shims = [str(SHIMS / s) for s in ("heartbeat/eipha", "ocf/eipha", "keepalived/eipha-notify")]
    result = subprocess.run(
        ["shellcheck", *shims], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_heartbeat_shim_with_a_bare_environment(lab: Lab):
    shim = SHIMS / "heartbeat" / "eipha"
    assert run_shim(lab, "lb-a", shim, "web-a", "status").out == "not running\n"
    started = run_shim(lab, "lb-a", shim, "web-a", "start")
    assert started.code == 0, started.err
    assert started.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")
    here = run_shim(lab, "lb-a", shim, "web-a", "status")
    assert (here.code, here.out) == (0, "running\n")
    stopped = run_shim(lab, "lb-a", shim, "web-a", "stop")
    assert (stopped.code, stopped.calls) == (0, [DESCRIBE, DISASSOCIATE])


def test_heartbeat_shim_without_the_defaults_file_cannot_reach_the_lab(lab: Lab):
    """The control: the same bare environment minus /etc/default/eipha knows no endpoints,
    so status is unknown (and still prints "not running")."""
    shim = SHIMS / "heartbeat" / "eipha"
    bare = ["PATH=/usr/bin:/bin", f"EIPHA_BIN={EIPHA_BIN}", f"EIPHA_DEFAULTS={lab.tmp}/none"]
    env = [
        "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9/",
        "AWS_EC2_METADATA_DISABLED=true",
        "AWS_REGION=eu-west-1",
    ]
    args = [str(lab.alloc("web-a")), "primary", "status"]
    proc = subprocess.run(
        ["env", "-i", *bare, *env, str(shim), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (4, "not running\n"), proc.stderr


def test_keepalived_shim_rx_lower_pri_line_reclaims_the_eips(lab: Lab):
    """keepalived.conf: notify_master_rx_lower_pri "/etc/keepalived/eipha-notify INSTANCE
    VI_WEB MASTER_RX_LOWER_PRI" — the peer took the EIPs during a split; we take them back."""
    lab.associate("web-a", "lb-b", "10.0.0.22")
    lab.associate("web-b", "lb-b")
    shim = SHIMS / "keepalived" / "eipha-notify"
    result = run_shim(lab, "lb-a", shim, "INSTANCE", "VI_WEB", "MASTER_RX_LOWER_PRI")
    assert result.code == 0, result.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    assert sorted(result.calls).count(ASSOCIATE) == 2
    assert "MASTER_RX_LOWER_PRI" in result.err


def test_ocf_shim_passes_the_action_and_the_parameters(lab: Lab):
    shim = SHIMS / "ocf" / "eipha"
    monitor = run_shim(lab, "lb-a", shim, "monitor", OCF_RESKEY_eip="web-b")
    assert (monitor.code, monitor.calls) == (7, [DESCRIBE]), monitor.err
    started = run_shim(lab, "lb-a", shim, "start", OCF_RESKEY_eip="web-b")
    assert started.code == 0, started.err
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    assert run_shim(lab, "lb-a", shim, "monitor", OCF_RESKEY_eip="web-b").code == 0
    meta = run_shim(lab, "lb-a", shim, "meta-data")
    assert meta.code == 0
    assert meta.out.startswith('<?xml version="1.0"?>')
    assert meta.calls == []


# --------------------------------------------------------------------------- Heartbeat


def test_heartbeat_start_status_stop(lab: Lab):
    before = lab.run("lb-a", "heartbeat", "web-b", "status")
    assert (before.code, before.out, before.calls) == (3, "not running\n", [DESCRIBE])
    started = lab.run("lb-a", "heartbeat", "web-b", "start")
    assert (started.code, started.out) == (0, ""), started.err
    assert started.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")  # web-b's spare on lb-a
    again = lab.run("lb-a", "heartbeat", "web-b", "start")
    assert (again.code, again.calls) == (0, [DESCRIBE])
    here = lab.run("lb-a", "heartbeat", "web-b", "status")
    assert (here.code, here.out) == (0, "running\n")
    # the peer does not hold it: its status says so, and its stop touches nothing
    peer = lab.run("lb-b", "heartbeat", "web-b", "status")
    assert (peer.code, peer.out) == (3, "not running\n")
    peer_stop = lab.run("lb-b", "heartbeat", "web-b", "stop")
    assert (peer_stop.code, peer_stop.calls) == (0, [DESCRIBE])
    stopped = lab.run("lb-a", "heartbeat", "web-b", "stop")
    assert (stopped.code, stopped.out, stopped.calls) == (0, "", [DESCRIBE, DISASSOCIATE])
    assert on(lab, "web-b") == (None, None)
    twice = lab.run("lb-a", "heartbeat", "web-b", "stop")
    assert (twice.code, twice.calls) == (0, [DESCRIBE])


def test_heartbeat_binding_argument_without_a_config(lab: Lab):
    """haresources "lb-a eipha::eipalloc-…::secondary": no config needed."""
    alloc = lab.alloc("web-a")
    started = lab.run("lb-a", "heartbeat", alloc, "secondary", "start", config=None)
    assert started.code == 0, started.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.12")
    status = lab.run("lb-a", "heartbeat", alloc, "secondary", "status", config=None)
    assert (status.code, status.out) == (0, "running\n")
    primary = lab.run("lb-a", "heartbeat", alloc, "primary", "status", config=None)
    assert (primary.code, primary.out) == (3, "not running\n")


@pytest.mark.parametrize(
    ("case", "code"),
    [("imds down", 4), ("api down", 4), ("unknown eip", 6), ("bad binding", 2)],
)
def test_heartbeat_status_prints_not_running_whatever_happens(lab: Lab, case: str, code: int):
    lab.associate("web-a", "lb-a")
    args, env = ["web-a", "status"], {}
    if case == "imds down":
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": CLOSED + "/"}
    elif case == "api down":
        env = {"AWS_ENDPOINT_URL_EC2": CLOSED}
    elif case == "unknown eip":
        args = ["web-z", "status"]
    else:
        args = ["web-a", "elsewhere", "status"]
    result = lab.run("lb-a", "heartbeat", *args, env=env)
    assert (result.code, result.out) == (code, "not running\n"), result.err
    assert "Traceback" not in result.err


def test_heartbeat_usage_error(lab: Lab):
    result = lab.run("lb-a", "heartbeat", "web-a", "restart")
    assert (result.code, result.out, result.calls) == (2, "", [])
    assert "usage: eipha heartbeat EIP" in result.err


def test_heartbeat_stop_when_the_api_is_unreachable_succeeds(lab: Lab):
    lab.associate("web-a", "lb-a")
    result = lab.run("lb-a", "heartbeat", "web-a", "stop", env={"AWS_ENDPOINT_URL_EC2": CLOSED})
    assert result.code == 0, result.err
    assert "the stop succeeds" in result.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")  # untouched, as it must be


def test_heartbeat_stop_fails_when_the_eip_is_provably_still_here(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.region.inject(DISASSOCIATE, "InternalError", times=None)
    result = lab.run("lb-a", "heartbeat", "web-a", "stop")
    assert result.code == 1, result.err
    assert result.calls[0] == DESCRIBE
    assert DISASSOCIATE in result.calls
    assert result.calls[-1] == DESCRIBE  # the re-read that proves it
    assert "still on this node" in result.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")


def test_heartbeat_stop_succeeds_when_the_failed_stop_cannot_be_checked(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.region.inject(DISASSOCIATE, "InternalError", times=None)
    lab.region.inject(DESCRIBE, "InternalError", times=None, skip=1)  # the re-read fails
    result = lab.run("lb-a", "heartbeat", "web-a", "stop")
    assert result.code == 0, result.err
    assert "cannot tell" in result.err


# --------------------------------------------------------------------------- keepalived


def test_keepalived_master_starts_the_instances_eips(lab: Lab):
    config = lab.config("lb-a", **INSTANCES)
    result = lab.run(
        "lb-a", "keepalived", "notify", "INSTANCE", "VI_WEB", "MASTER", "150", config=config
    )
    assert result.code == 0, result.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    assert result.calls[0] == DESCRIBE  # one batched read for both
    assert sorted(result.calls) == [ASSOCIATE, ASSOCIATE, DESCRIBE, DESCRIBE, DESCRIBE]
    assert "INSTANCE VI_WEB is MASTER (priority 150): starting web-a, web-b" in result.err


def test_keepalived_master_without_a_mapping_starts_every_eip(lab: Lab):
    result = lab.run("lb-b", "keepalived", "notify", "--mine", "GROUP", "G1", "MASTER", "0")
    assert result.code == 0, result.err
    assert on(lab, "web-a") == binding(lab, "lb-b", "10.0.0.22")
    assert on(lab, "web-b") == binding(lab, "lb-b", "10.0.0.21")


@pytest.mark.parametrize("state", ["BACKUP", "FAULT", "STOP", "DELETED"])
def test_keepalived_leaving_master_makes_no_api_call(lab: Lab, state: str):
    lab.associate("web-a", "lb-a")
    config = lab.config("lb-a", **INSTANCES)
    result = lab.run(
        "lb-a", "keepalived", "notify", "INSTANCE", "VI_WEB", state, "100", config=config
    )
    assert (result.code, result.calls) == (0, [])
    assert f"INSTANCE VI_WEB is {state} (priority 100): nothing to do" in result.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")


def test_keepalived_instance_not_in_the_mapping_is_an_error(lab: Lab):
    """Never "nothing to do": see test_no_silent_noop for the line and syslog."""
    config = lab.config("lb-a", **INSTANCES)
    result = lab.run(
        "lb-a", "keepalived", "notify", "INSTANCE", "VI_DB", "MASTER", "100", config=config
    )
    assert (result.code, result.calls) == (1, [])
    assert "VI_DB is not in keepalived.instances" in result.err


def test_keepalived_failure_and_usage_codes(lab: Lab):
    lab.region.inject(ASSOCIATE, "UnauthorizedOperation", times=None)
    failed = lab.run("lb-a", "keepalived", "notify", "INSTANCE", "VI_1", "MASTER", "100")
    assert failed.code == 1
    assert "UnauthorizedOperation" in failed.err
    usage = lab.run("lb-a", "keepalived", "notify", "MASTER")
    assert (usage.code, usage.calls) == (2, [])


def test_overlapping_notify_processes_do_not_interleave(lab: Lab, run_dir: Path):
    """Different instances (different EIPs, so the per-EIP locks alone would let them
    interleave) MASTER at once, with a slow API: the keepalived-wide lock makes every
    process's calls one contiguous block in the region's request log."""
    config = lab.config(
        "lb-a", timeout=30, keepalived={"instances": {"VI_A": ["web-a"], "VI_B": ["web-b"]}}
    )
    launches: list[Launch] = [
        (
            "lb-a",
            config,
            f"notify{i}",
            {},
            ("keepalived", "notify", "INSTANCE", f"VI_{'AB'[i % 2]}", "MASTER", "100"),
        )
        for i in range(6)
    ]
    lab.region.latency = 0.1
    mark = lab.region.mark()
    try:
        with processes(lab, launches) as procs:
            done = finish(procs, launches)
    finally:
        lab.region.latency = 0.0
    for proc in done:
        assert proc.code == 0, (proc.key, proc.err)
    calls = sorted(
        (r for r in lab.region.calls(since=mark) if r.action in ADDRESS_ACTIONS),
        key=lambda r: r.started,
    )
    blocks = [list(group) for _, group in groupby(calls, key=lambda r: r.client)]
    clients = [block[0].client for block in blocks]
    assert len(clients) == len(set(clients)), f"interleaved: {clients}"
    for before, after in pairwise(blocks):
        assert before[-1].ended <= after[0].started
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")


# --------------------------------------------------------------------------- keepalived FIFO


@contextmanager
def fifo_reader(lab: Lab, path: Path, config: Path) -> Iterator[subprocess.Popen[str]]:
    os.mkfifo(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "eipha", "keepalived", "fifo", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=lab.env("lb-a", config),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def open_writer(path: Path, proc: subprocess.Popen[str], wait: float = 30) -> int:
    """The write end, once the reader has opened the FIFO (ENXIO until then)."""
    end = time.monotonic() + wait
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the reader never opened the FIFO"
            time.sleep(0.02)


def test_fifo_mode_handles_lines_in_order_until_eof(lab: Lab):
    config = lab.config("lb-a", **INSTANCES)
    path = lab.tmp / "keepalived.fifo"
    mark = lab.region.mark()
    with fifo_reader(lab, path, config) as proc:
        writer = open_writer(path, proc)
        lines = [
            'INSTANCE "VI_WEB" MASTER 150',
            'garbage "unterminated',
            'RS "10.0.0.1:80" UP',
            "",
            'INSTANCE "VI_WEB" BACKUP 100',
            'INSTANCE "VI_B" MASTER_RX_LOWER_PRI 150',
        ]
        os.write(writer, "".join(f"{line}\n" for line in lines).encode())
        os.close(writer)  # end of file: the reader handles what it has, then exits
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    actions = lab.region.actions(mark)
    assert actions.count(ASSOCIATE) == 2
    assert DISASSOCIATE not in actions
    assert err.count("ignoring FIFO line") == 2
    order = [
        "INSTANCE VI_WEB is MASTER (priority 150): starting web-a, web-b",
        "INSTANCE VI_WEB is BACKUP (priority 100): nothing to do",
        "INSTANCE VI_B is MASTER_RX_LOWER_PRI (priority 150): starting web-b",
        "end of file; exiting",
    ]
    positions = [err.index(text) for text in order]
    assert positions == sorted(positions), err


def test_fifo_mode_exits_0_on_sigterm(lab: Lab):
    config = lab.config("lb-a", **INSTANCES)
    path = lab.tmp / "keepalived.fifo"
    with fifo_reader(lab, path, config) as proc:
        writer = open_writer(path, proc)  # kept open: no end of file
        try:
            os.write(writer, b'INSTANCE "VI_WEB" BACKUP 100\n')
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            os.close(writer)
    assert proc.returncode == 0, err
    assert "SIGTERM; exiting" in err


def test_fifo_reader_through_the_shim_is_ready_before_the_first_event(lab: Lab):
    """vrrp_notify_fifo_script "/etc/keepalived/eipha-notify fifo": keepalived starts the
    shim once, with its own bare environment, and appends the FIFO's path. Before the first
    line the reader has its EC2 client, its IMDS token and who this node is, so a MASTER
    costs the start's own calls: its three EC2 calls, and for this takeover onto a secondary
    IP one IMDS read of the ENI's private IPs (no token request)."""
    config = lab.config("lb-a", **INSTANCES)
    defaults = defaults_file(lab, "lb-a", config, lab.tmp / "run")
    bare = ["PATH=/usr/bin:/bin", f"EIPHA_BIN={EIPHA_BIN}", f"EIPHA_DEFAULTS={defaults}"]
    path, log = lab.tmp / "keepalived.fifo", lab.tmp / "reader.log"
    os.mkfifo(path)
    shim = SHIMS / "keepalived" / "eipha-notify"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            ["env", "-i", *bare, str(shim), "fifo", str(path)], stderr=stderr, text=True
        )
    try:
        writer = open_writer(path, proc)
        end = time.monotonic() + 30
        while "ready in" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < end, f"the reader never got ready: {log.read_text()}"
            time.sleep(0.02)
        imds, mark = len(lab.imds["lb-a"].requests), lab.region.mark()
        os.write(writer, b'INSTANCE "VI_B" MASTER 100\n')
        os.close(writer)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert lab.region.actions(mark) == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    event = [
        (method, item.rsplit("/", 1)[-1]) for method, item, _ in lab.imds["lb-a"].requests[imds:]
    ]
    assert event == [("GET", "local-ipv4s")]  # the rest of who this node is was kept
    assert f"{path}: ready in" in err
    assert err.index("ready in") < err.index("INSTANCE VI_B is MASTER (priority 100)")


# --------------------------------------------------------------------------- OCF


def ocf(
    lab: Lab, node: str, action: str, *, cfg: Path | bool | None = True, **params: str
) -> Result:
    """``eipha ocf ACTION`` with ``OCF_RESKEY_<name>`` for each of ``params``; ``cfg`` is
    the config lab.run uses (through EIPHA_CONFIG), not the OCF ``config`` parameter."""
    env = {f"OCF_RESKEY_{k}": v for k, v in params.items()}
    return lab.run(node, "ocf", action, config=cfg, env=env)


def test_ocf_lifecycle(lab: Lab):
    assert ocf(lab, "lb-a", "validate-all", eip="web-b").code == 0
    probe = ocf(lab, "lb-a", "monitor", eip="web-b")
    assert (probe.code, probe.calls, reasons(probe.err)) == (7, [DESCRIBE], [])
    started = ocf(lab, "lb-a", "start", eip="web-b")
    assert (started.code, started.out) == (0, ""), started.err
    assert started.calls == [DESCRIBE, ASSOCIATE, DESCRIBE]
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")
    assert ocf(lab, "lb-a", "monitor", eip="web-b").code == 0
    assert ocf(lab, "lb-a", "status", eip="web-b").code == 0
    assert ocf(lab, "lb-b", "monitor", eip="web-b").code == 7
    stopped = ocf(lab, "lb-a", "stop", eip="web-b")
    assert (stopped.code, stopped.calls) == (0, [DESCRIBE, DISASSOCIATE])
    assert ocf(lab, "lb-a", "stop", eip="web-b").code == 0
    assert ocf(lab, "lb-a", "monitor", eip="web-b").code == 7


def test_ocf_validate_all_needs_no_network(lab: Lab):
    down = {"AWS_ENDPOINT_URL_EC2": CLOSED, "AWS_EC2_METADATA_SERVICE_ENDPOINT": CLOSED + "/"}
    ok = lab.run("lb-a", "ocf", "validate-all", env={"OCF_RESKEY_eip": "web-a", **down})
    assert (ok.code, ok.calls, reasons(ok.err)) == (0, [], [])
    unknown = ocf(lab, "lb-a", "validate-all", eip="web-z")
    assert unknown.code == 6
    assert "web-z" in reasons(unknown.err)[0]
    missing = ocf(lab, "lb-a", "validate-all")
    assert missing.code == 6
    assert reasons(missing.err) == ["parameter eip is not set (set it to the EIP to move)"]
    bad = ocf(lab, "lb-a", "validate-all", eip="web-a", private_ip="nowhere")
    assert bad.code == 6
    assert "private_ip" in reasons(bad.err)[0]
    # without a config an EIP means nothing unless private_ip says where it goes
    alloc = lab.alloc("web-a")
    assert ocf(lab, "lb-a", "validate-all", cfg=None, eip="web-a").code == 6
    assert ocf(lab, "lb-a", "validate-all", cfg=None, eip=alloc).code == 6
    assert ocf(lab, "lb-a", "validate-all", cfg=None, eip=alloc, private_ip="secondary").code == 0


def test_ocf_config_parameter_names_the_file(lab: Lab):
    config = lab.config("lb-a")
    result = ocf(lab, "lb-a", "validate-all", cfg=None, eip="web-a", config=str(config))
    assert result.code == 0, result.err
    absent = ocf(lab, "lb-a", "validate-all", eip="web-a", config=str(lab.tmp / "nope.yaml"))
    assert absent.code == 6
    assert "not found" in reasons(absent.err)[0]


def test_ocf_monitor_when_imds_is_down_is_unknown_not_stopped(lab: Lab):
    env = {"OCF_RESKEY_eip": "web-a", "AWS_EC2_METADATA_SERVICE_ENDPOINT": CLOSED + "/"}
    result = lab.run("lb-a", "ocf", "monitor", env=env)
    assert result.code == 1
    [reason] = reasons(result.err)
    assert "IMDS" in reason


def test_ocf_start_failure_has_an_exit_reason(lab: Lab):
    lab.region.inject(ASSOCIATE, "UnauthorizedOperation")
    env = {"OCF_RESKEY_eip": "web-a", "OCF_EXIT_REASON_PREFIX": "why:"}
    result = lab.run("lb-a", "ocf", "start", env=env)
    assert result.code == 4
    [reason] = reasons(result.err, "why:")
    assert "UnauthorizedOperation" in reason
    assert reasons(result.err) == []


def test_ocf_stop_when_the_api_is_unreachable_succeeds(lab: Lab):
    lab.associate("web-a", "lb-a")
    env = {"OCF_RESKEY_eip": "web-a", "AWS_ENDPOINT_URL_EC2": CLOSED}
    result = lab.run("lb-a", "ocf", "stop", env=env)
    assert result.code == 0, result.err
    assert reasons(result.err) == []


def test_ocf_stop_fails_when_the_eip_is_provably_still_here(lab: Lab):
    lab.associate("web-a", "lb-a")
    lab.region.inject(DISASSOCIATE, "InternalError", times=None)
    result = ocf(lab, "lb-a", "stop", eip="web-a")
    assert result.code == 1
    assert "still on this node" in reasons(result.err)[0]


@pytest.mark.parametrize("action", ["notify", "promote", "demote", "migrate_to", "reload"])
def test_ocf_unimplemented_actions(lab: Lab, action: str):
    result = ocf(lab, "lb-a", action, eip="web-a")
    assert (result.code, result.calls) == (3, [])


def test_ocf_deadline_keeps_clear_of_pacemakers_timeout(lab: Lab):
    """An operation timeout of 4 s leaves a 1.5 s deadline: with EC2 answering in 3 s, the
    monitor gives up (1) before Pacemaker would have killed it."""
    lab.region.latency = 3.0
    try:
        began = time.monotonic()
        env = {"OCF_RESKEY_eip": "web-a", "OCF_RESKEY_CRM_meta_timeout": "4000"}
        result = lab.run("lb-a", "ocf", "monitor", env=env)
        wall = time.monotonic() - began
    finally:
        lab.region.latency = 0.0
    assert result.code == 1
    assert "deadline" in reasons(result.err)[0]
    assert wall < 4.0


# --------------------------------------------------------------------------- ocf-tester


def test_ocf_tester_approves_the_agent(lab: Lab, request: pytest.FixtureRequest):
    """ocf-tester runs the agent through its whole sequence (validate-all, probes, start,
    monitor, start twice, stop twice, the optional actions) with a bare environment plus
    EIPHA_BIN and EIPHA_DEFAULTS.

    As root it also runs meta-data as the user nobody: the shim answers that itself (the
    XML is embedded, see tools/gen_ocf_agent.py), so it passes wherever eipha lives."""
    # a directory anyone may enter (pytest's own are owner-only), so that the check as
    # nobody tests the agent, not the test's temporary directory
    shared = Path(tempfile.mkdtemp(prefix="eipha-ocf-tester-"))
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    shared.chmod(0o755)
    agent = shared / "eipha"
    shutil.copy(SHIMS / "ocf" / "eipha", agent)
    agent.chmod(0o755)
    config = lab.config("lb-a")
    config.chmod(0o644)
    defaults = defaults_file(lab, "lb-a", None, lab.tmp / "run")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "EIPHA_BIN": str(EIPHA_BIN),
        "EIPHA_DEFAULTS": str(defaults),
    }
    mark = lab.region.mark()
    proc = subprocess.run(
        ["ocf-tester", "-n", "eipha-test", "-o", "eip=web-a", "-o", f"config={config}", str(agent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    failures = [line for line in output.splitlines() if line.startswith("* rc=")]
    assert failures == [], output
    assert proc.returncode == 0, output
    assert "passed all tests" in output
    # it really moved the EIP: starts, stops and monitors reached the region
    actions = lab.region.actions(mark)
    assert actions.count(ASSOCIATE) >= 2
    assert actions.count(DISASSOCIATE) >= 2
    assert on(lab, "web-a") == (None, None)
