"""Errors that say what to do next, from the real command line against the simulated region
and the IMDSv2 doubles: a missing extra, global options after the command, "did you mean",
no config found, IMDS refusing connections, and an id EC2 does not know in this region."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Lab
from tests.integration.test_cli_more import error_lines, one_error_line
from tests.integration.test_monitor import Monitors

CLOSED = "http://127.0.0.1:9/"  # loopback port 9: connection refused at once


def hiding(tmp_path: Path, module: str) -> dict[str, str]:
    """The environment of a real `python -m eipha` in which ``module`` cannot be imported,
    as if its extra were not installed: a sitecustomize, first on the path, hides it."""
    shadow = tmp_path / f"no-{module}"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text(f"import sys\n\nsys.modules[{module!r}] = None\n")
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))
    }


@pytest.fixture
def without_moto(tmp_path: Path) -> dict[str, str]:
    return hiding(tmp_path, "moto")


def test_drill_simulate_without_the_extra_names_the_pip_command(
    lab: Lab, without_moto: dict[str, str]
):
    result = lab.run("lb-a", "drill", "--simulate", env=without_moto)
    assert (result.code, result.out, result.calls) == (5, "", []), result.err
    line = one_error_line(result.err)
    assert result.err == line + "\n"
    assert line == (
        "eipha: error: eipha drill --simulate needs the 'simulate' extra, which is not "
        "installed (no module moto) (pip install 'eipha[simulate]')"
    )


def test_the_control_without_moto_what_does_not_need_it_runs(
    lab: Lab, without_moto: dict[str, str]
):
    """moto really is hidden from that process, and nothing else is."""
    lab.associate("web-a", "lb-a")
    result = lab.run("lb-a", "status", "web-a", env=without_moto)
    assert (result.code, result.out) == (0, "running\n"), result.err
    check = "import importlib.util as u; print(u.find_spec('moto'), u.find_spec('botocore'))"
    env = {**lab.env("lb-a", None), **without_moto}
    proc = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.stdout.startswith("None ModuleSpec(name='botocore'"), proc.stderr


def test_monitor_metrics_without_the_extra_names_the_pip_command(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for name, value in hiding(tmp_path, "prometheus_client").items():
        monkeypatch.setenv(name, value)  # the monitor's environment is a copy of ours
    monitors = Monitors(lab)
    try:
        proc = monitors.start("lb-a", metrics={"textfile": str(tmp_path / "eipha.prom")})
        assert proc.wait(timeout=30) == 5
    finally:
        monitors.stop()
    assert error_lines(monitors.log("lb-a")) == [
        "eipha: error: monitor.metrics needs the 'metrics' extra, which is not installed "
        "(no module prometheus_client) (pip install 'eipha[metrics]')"
    ]


def test_status_with_config_after_the_command(lab: Lab):
    """`eipha status --config FILE EIP`: the option after the command (it used to be
    "No such option '--config'")."""
    lab.associate("web-a", "lb-a")
    config = lab.config("lb-a")
    result = lab.run("lb-a", "status", "--config", str(config), "web-a", config=None)
    assert (result.code, result.out) == (0, "running\n"), result.err
    elsewhere = lab.run("lb-b", "status", "web-a", "--config", str(lab.config("lb-b")))
    assert (elsewhere.code, elsewhere.out) == (3, "not running\n"), elsewhere.err


def test_the_config_after_the_command_wins_over_the_environment_and_the_one_before(lab: Lab):
    lab.associate("web-a", "lb-a")
    wrong = lab.tmp / "wrong.yaml"
    wrong.write_text("eips: {}\n")
    right = lab.config("lb-a")
    result = lab.run("lb-a", "--config", str(wrong), "status", "web-a", "--config", str(right))
    assert (result.code, result.out) == (0, "running\n"), result.err


def test_an_agent_call_with_global_options_after_the_command(lab: Lab):
    """`eipha heartbeat --config FILE EIP status` goes through click, which reads --config;
    the manager's own words after it stay raw."""
    lab.associate("web-a", "lb-a")
    config = lab.config("lb-a")
    result = lab.run("lb-a", "heartbeat", "--config", str(config), "web-a", "status", config=None)
    assert (result.code, result.out) == (0, "running\n"), result.err
    notify = lab.run(
        "lb-a",
        "keepalived",
        "notify",
        "-q",
        "--config",
        str(config),
        "INSTANCE",
        "VI_1",
        "BACKUP",
        "100",
        config=None,
    )
    assert (notify.code, notify.err) == (0, "")


def test_unknown_eip_gets_did_you_mean(lab: Lab):
    config = lab.config("lb-a")
    result = lab.run("lb-a", "status", "web-c", config=config)
    assert (result.code, result.out, result.calls) == (6, "not running\n", [])
    line = one_error_line(result.err)
    assert line.startswith("eipha: error: unknown EIP 'web-c' (did you mean 'web-a' or 'web-b'?; ")
    assert f"{config} names web-a, web-b" in line
    far = one_error_line(lab.run("lb-a", "start", "database", config=config).err)
    assert "did you mean" not in far
    assert f"{config} names web-a, web-b" in far


def test_unknown_eip_without_a_config_says_none_was_loaded(lab: Lab):
    result = lab.run("lb-a", "status", "web-a", config=None)
    assert (result.code, result.out, result.calls) == (6, "not running\n", [])
    line = one_error_line(result.err)
    assert line.startswith(
        "eipha: error: unknown EIP 'web-a' (no config loaded: looked at /etc/eipha/eipha.yaml; "
        "set --config or EIPHA_CONFIG, or give an allocation id"
    )


def test_imds_refusing_connections_says_not_on_ec2(lab: Lab):
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": CLOSED}
    for args, code in ((("status", "web-a"), 4), (("start", "web-a"), 1)):
        result = lab.run("lb-a", *args, env=env)
        assert (result.code, result.calls) == (code, []), result.err
        line = one_error_line(result.err)
        assert f"IMDS did not answer at {CLOSED}" in line
        assert "not on EC2, or AWS_EC2_METADATA_SERVICE_ENDPOINT is wrong" in line
        assert "hop limit" not in line


def test_an_id_ec2_does_not_know_names_the_region_used(lab: Lab):
    absent = "eipalloc-0123456789abcdef0"
    result = lab.run("lb-a", "start", "--private-ip", "primary", absent)
    assert result.code == 6
    line = one_error_line(result.err)
    assert "InvalidAllocationID.NotFound" in line
    assert f"looked in region {lab.world.region}" in line
    assert "--region" in line
    assert "region: in the config" in line


def test_a_wrong_region_is_named_in_the_not_found_error(lab: Lab):
    """The configured EIPs live in the lab's region; --region sends eipha to another one."""
    other = "ap-southeast-2" if lab.world.region != "ap-southeast-2" else "eu-north-1"
    result = lab.run("lb-a", "status", "web-a", "--region", other)
    assert (result.code, result.out) == (6, "not running\n")
    line = one_error_line(result.err)
    assert "NotFound" in line
    assert f"looked in region {other}" in line
