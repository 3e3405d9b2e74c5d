"""No silent no-op: a cluster manager's call that the config cannot carry out is an error,
logged at ERROR on stderr and to syslog, naming what is wrong and the config file.

keepalived ignores a notify script's exit code and Heartbeat and Pacemaker show little of
stderr, so the syslog line is what an operator finds; here /dev/log is a socket this test
reads, inside a private mount namespace of the call (nothing outside it changes). The calls
go through the real shims with the bare environment the managers give them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, Result
from tests.integration.test_agents import (
    ASSOCIATE,
    DESCRIBE,
    EIPHA_BIN,
    INSTANCES,
    SHIMS,
    binding,
    defaults_file,
    fifo_reader,
    ocf,
    open_writer,
    reasons,
)
from tests.integration.test_cli_more import error_lines, on, one_error_line
from tests.reliability.test_secrets import PRIVATE_DEV, Syslog

HEARTBEAT = SHIMS / "heartbeat" / "eipha"
OCF = SHIMS / "ocf" / "eipha"
NOTIFY = SHIMS / "keepalived" / "eipha-notify"


@pytest.fixture
def syslog() -> Iterator[Syslog]:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("capturing syslog needs root (a private mount namespace), and CI is root")
        pytest.skip("capturing syslog needs root (a private mount namespace)")
    capture = Syslog()
    try:
        yield capture
    finally:
        capture.close()


def run_logged(
    lab: Lab, syslog: Syslog, shim: Path, *args: str, **env: str
) -> tuple[Result, list[str]]:
    """Run a shim as its manager does (bare environment, /etc/default/eipha; lb-a, whose
    config maps keepalived's VI_WEB and VI_B), /dev/log captured: the result, and the
    syslog lines of this call."""
    config = lab.config("lb-a", **INSTANCES)
    defaults = defaults_file(lab, "lb-a", config, lab.tmp / "run")
    bare = ["PATH=/usr/bin:/bin", f"EIPHA_BIN={EIPHA_BIN}", f"EIPHA_DEFAULTS={defaults}"]
    bare += [f"{k}={v}" for k, v in env.items()]
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_DEV, "sh"]
    since = len(syslog.received)
    mark = lab.region.mark()
    proc = subprocess.run(
        [*private, str(syslog.path), "env", "-i", *bare, str(shim), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr, lab.region.actions(mark))
    return result, logged(syslog, since, "ERROR" if proc.returncode else "eipha[")


def logged(syslog: Syslog, since: int, text: str, wait: float = 5.0) -> list[str]:
    """The syslog lines since the ``since``-th datagram, once one holds ``text`` (a
    datagram sent before the process exited may still be on its way to the reader)."""
    end = time.monotonic() + wait
    while True:
        lines = [d.decode("utf-8", "replace") for d in syslog.received[since:]]
        if any(text in line for line in lines) or time.monotonic() > end:
            return lines


def errors_in(lines: list[str]) -> list[str]:
    """Syslog lines at priority err (user facility: <11>) from eipha."""
    return [line for line in lines if line.startswith("<11>eipha[") and " ERROR " in line]


# --------------------------------------------------------------------------- keepalived


def test_master_for_an_instance_the_config_does_not_list_is_an_error(lab: Lab, syslog: Syslog):
    """The README's config said VI_WEB, its keepalived.conf VI_A: the failover used to exit
    0 with "nothing to do"."""
    result, lines = run_logged(lab, syslog, NOTIFY, "INSTANCE", "VI_A", "MASTER", "150")
    assert (result.code, result.calls) == (1, [])
    config = lab.tmp / "lb-a.yaml"
    line = one_error_line(result.err)
    assert line == (
        f"eipha: error: keepalived: INSTANCE VI_A is MASTER (priority 150): VI_A is not in "
        f"keepalived.instances of {config} (it lists VI_B, VI_WEB; add VI_A there, or use one "
        "of those names in keepalived.conf)"
    )
    [logged_line] = errors_in(lines)
    assert logged_line.rstrip("\x00").endswith(line.removeprefix("eipha: error: "))
    assert on(lab, "web-a") == (None, None)


def test_backup_for_an_instance_the_config_does_not_list_warns(lab: Lab, syslog: Syslog):
    result, lines = run_logged(lab, syslog, NOTIFY, "INSTANCE", "VI_A", "BACKUP", "100")
    assert (result.code, result.calls) == (0, [])
    assert error_lines(result.err) == []
    [warning] = [x for x in result.err.splitlines() if x.startswith("eipha: warning: ")]
    assert "VI_A is not in keepalived.instances of" in warning
    assert warning.endswith("; a MASTER for it would fail")
    assert any("<12>eipha[" in x and "a MASTER for it would fail" in x for x in lines)


def test_the_fifo_reader_logs_an_unlisted_instance_and_goes_on(lab: Lab):
    config = lab.config("lb-a", **INSTANCES)
    path = lab.tmp / "keepalived.fifo"
    with fifo_reader(lab, path, config) as proc:
        writer = open_writer(path, proc)
        lines = ['INSTANCE "VI_A" MASTER 150', 'INSTANCE "VI_B" MASTER 150']
        os.write(writer, "".join(f"{line}\n" for line in lines).encode())
        os.close(writer)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    [line] = error_lines(err)
    assert line.startswith(
        "eipha: error: keepalived: INSTANCE VI_A is MASTER (priority 150): VI_A is not in "
        f"keepalived.instances of {config} (it lists VI_B, VI_WEB; "
    )
    assert on(lab, "web-b") == binding(lab, "lb-a", "10.0.0.12")  # the next line was handled
    assert "trying again" not in err  # a config error is not retried


# --------------------------------------------------------------------------- Heartbeat


def test_heartbeat_start_of_an_eip_the_config_does_not_know(lab: Lab, syslog: Syslog):
    result, lines = run_logged(lab, syslog, HEARTBEAT, "web-c", "start")
    assert (result.code, result.out, result.calls) == (6, "", [])
    line = one_error_line(result.err)
    config = lab.tmp / "lb-a.yaml"
    assert line.startswith("eipha: error: unknown EIP 'web-c' (did you mean 'web-a' or 'web-b'?")
    assert f"{config} names web-a, web-b" in line
    assert [x for x in errors_in(lines) if "unknown EIP 'web-c'" in x]


def test_heartbeat_status_of_an_unknown_eip_is_not_configured_and_not_running(lab: Lab):
    result = lab.run("lb-a", "heartbeat", "web-c", "status")
    assert (result.code, result.out, result.calls) == (6, "not running\n", [])
    assert "unknown EIP 'web-c'" in one_error_line(result.err)


def test_heartbeat_stop_of_an_unknown_eip_succeeds_with_an_error_line(lab: Lab, syslog: Syslog):
    """A failed stop reboots the node: stop succeeds unless the EIP is provably here, but
    the line says what is wrong, at ERROR, with the config file."""
    lab.associate("web-a", "lb-a")
    result, lines = run_logged(lab, syslog, HEARTBEAT, "web-c", "stop")
    assert (result.code, result.calls) == (0, [])
    line = one_error_line(result.err)
    assert "unknown EIP 'web-c'" in line
    assert str(lab.tmp / "lb-a.yaml") in line
    assert line.endswith("nothing proves web-c is on this node, so the stop succeeds")
    assert [x for x in errors_in(lines) if "unknown EIP 'web-c'" in x]
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")


def test_heartbeat_binding_that_contradicts_the_rule(lab: Lab):
    """haresources "eipha::web-a::secondary" on lb-a, web-a's home (rule: primary IP)."""
    config = lab.tmp / "lb-a.yaml"
    for action, out in (("start", ""), ("status", "not running\n")):
        result = lab.run("lb-a", "heartbeat", "web-a", "secondary", action)
        assert (result.code, result.out) == (6, out), result.err
        assert ASSOCIATE not in result.calls
        assert one_error_line(result.err) == (
            f"eipha: error: web-a: the private IP given (secondary, 10.0.0.12) contradicts "
            f"{config} (its binding rule puts web-a on 10.0.0.11, the primary IP of lb-a, as "
            "lb-a is its home; give none, so that the config decides, or set "
            "eips.web-a.private_ips.lb-a there)"
        )
    assert on(lab, "web-a") == (None, None)
    agrees = lab.run("lb-a", "heartbeat", "web-a", "primary", "start")
    assert agrees.code == 0, agrees.err
    assert on(lab, "web-a") == binding(lab, "lb-a", "10.0.0.11")


# --------------------------------------------------------------------------- OCF


def test_ocf_resource_whose_private_ip_contradicts_the_rule(lab: Lab, syslog: Syslog):
    """private_ip=primary for web-b on lb-a: web-b's home is lb-b, so the rule gives lb-a a
    secondary IP here. validate-all (no network) says so, start and monitor too."""
    config = lab.tmp / "lb-a.yaml"
    rule = (
        f"web-b: the private IP given (primary) contradicts {config} (its binding rule puts "
        "web-b on a secondary IP of lb-a, as its home is lb-b; give none, so that the "
        "config decides, or set eips.web-b.private_ips.lb-a there)"
    )
    for action in ("validate-all", "start", "monitor"):
        env = {"OCF_RESKEY_eip": "web-b", "OCF_RESKEY_private_ip": "primary"}
        result, lines = run_logged(lab, syslog, OCF, action, **env)
        assert (result.code, result.calls) == (6, []), result.err
        assert reasons(result.err) == [rule]
        assert [x for x in errors_in(lines) if rule in x]
    assert on(lab, "web-b") == (None, None)


def test_ocf_private_ip_that_restates_the_rule_is_fine(lab: Lab):
    assert ocf(lab, "lb-a", "validate-all", eip="web-b", private_ip="secondary").code == 0
    started = ocf(lab, "lb-a", "start", eip="web-b", private_ip="10.0.0.12")
    assert (started.code, started.calls) == (0, [DESCRIBE, ASSOCIATE, DESCRIBE]), started.err
    assert ocf(lab, "lb-a", "monitor", eip="web-b", private_ip="secondary").code == 0
    wrong = ocf(lab, "lb-a", "monitor", eip="web-b", private_ip="10.0.0.11")
    assert (wrong.code, wrong.calls) == (6, [])
    assert "puts web-b on 10.0.0.12, a secondary IP of lb-a" in reasons(wrong.err)[0]


def test_ocf_unknown_eip(lab: Lab, syslog: Syslog):
    config = lab.tmp / "lb-a.yaml"
    for action in ("validate-all", "start", "monitor"):
        result, lines = run_logged(lab, syslog, OCF, action, OCF_RESKEY_eip="web-c")
        assert (result.code, result.calls) == (6, [])
        [reason] = reasons(result.err)
        assert reason.startswith("unknown EIP 'web-c' (did you mean 'web-a' or 'web-b'?; ")
        assert f"{config} names web-a, web-b" in reason
        assert [x for x in errors_in(lines) if "unknown EIP 'web-c'" in x]
    stop, lines = run_logged(lab, syslog, OCF, "stop", OCF_RESKEY_eip="web-c")
    assert (stop.code, stop.calls, reasons(stop.err)) == (0, [], [])
    assert [x for x in errors_in(lines) if "unknown EIP 'web-c'" in x and "stop succeeds" in x]


# --------------------------------------------------------------------------- syslog only


def test_with_stderr_closed_the_error_still_reaches_syslog(lab: Lab, syslog: Syslog):
    """A manager may start a script with no stderr at all: the line goes to syslog."""
    result, lines = run_logged(
        lab, syslog, Path("/bin/sh"), "-c", f"exec {NOTIFY} INSTANCE VI_A MASTER 150 2>&-"
    )
    assert (result.code, result.err, result.calls) == (1, "", [])
    assert [x for x in errors_in(lines) if "VI_A is not in keepalived.instances" in x]
