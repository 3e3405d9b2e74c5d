"""``eipha sandbox`` without a sandbox: the shell lines it prints, its usage errors, --help."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eipha.cli import main
from eipha.cli.sandbox_cmd import DEFAULT_PORT as CLI_DEFAULT_PORT
from eipha.sim import sandbox as sim
from eipha.sim.sandbox_log import short_params
from eipha.sim.sandbox_ports import port_error


def test_the_lines_give_a_posix_shell_exactly_the_values_even_in_an_odd_directory(tmp_path):
    directory = tmp_path / 'it\'s a "dir" with $HOME and `spaces`'
    layout = sim.Layout(directory, 7780)
    env = sim.node_env(layout, "eu-west-1", "lb-b", 7782)
    state = {
        "pid": 1,
        "region": "eu-west-1",
        "nodes": {"lb-b": {"instance_id": "i-0123", "primary_ip": "10.0.0.21", "env": env}},
    }
    lines = sim.shell_lines(state, "lb-b")
    names = " ".join(env)
    script = f'eval "$LINES"; for n in {names}; do printf "%s=%s\\0" "$n" "$(printenv "$n")"; done'
    result = subprocess.run(
        ["sh", "-c", script],
        env={"LINES": lines, "PATH": "/usr/bin:/bin", "AWS_PROFILE": "real-one"},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = dict(item.split("=", 1) for item in result.stdout.split("\0") if item)
    assert seen == env
    assert seen["EIPHA_CONFIG"] == str(directory / "lb-b.yaml")
    assert seen["AWS_ENDPOINT_URL_EC2"] == "http://127.0.0.1:7780"
    assert seen["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == "http://127.0.0.1:7782/"
    # a profile the empty config file lacks would make botocore fail: it is unset
    check = subprocess.run(
        ["sh", "-c", 'eval "$LINES"; echo "profile=${AWS_PROFILE-unset}"'],
        env={"LINES": lines, "PATH": "/usr/bin:/bin", "AWS_PROFILE": "real-one"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "profile=unset"


def test_each_node_signs_with_a_key_of_its_own(tmp_path):
    layout = sim.Layout(tmp_path)
    keys = {sim.node_env(layout, "eu-west-1", n, 1)["AWS_ACCESS_KEY_ID"] for n in sim.NODES}
    assert keys == {"sandbox-lb-a", "sandbox-lb-b"}


def test_the_request_log_names_the_ids_it_knows():
    names = {"eipalloc-1": "web-a", "eipalloc-2": "web-b", "i-1": "lb-a", "i-2": "lb-b"}
    params = {
        "Action": "DescribeNetworkInterfaces",
        "Version": "2016-11-15",
        "Filter.1.Name": "attachment.instance-id",
        "Filter.1.Value.1": "i-2",
        "Filter.1.Value.2": "i-1",
        "AllocationId.1": "eipalloc-2",
        "AllocationId.2": "eipalloc-1",
        "DryRun": "false",
    }
    assert short_params(params, names) == (
        "attachment.instance-id=lb-b,lb-a AllocationId=web-b,web-a"
    )
    assert short_params({"DryRun": "true", "PublicIp.1": "x"}, names) == "DryRun=true PublicIp=x"


def test_the_default_port_is_the_same_in_help_and_in_the_sandbox():
    assert CLI_DEFAULT_PORT == sim.DEFAULT_PORT


def test_the_default_directory(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert sim.default_dir() == Path("/run/user/1000/eipha-sandbox")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert sim.default_dir() == Path(f"/tmp/eipha-sandbox-{os.geteuid()}")


def test_env_without_a_running_sandbox_is_one_line_exit_3(tmp_path, capsys):
    assert main(["sandbox", "--dir", str(tmp_path / "none"), "--env", "lb-a"]) == 3
    captured = capsys.readouterr()
    assert captured.out == sim.disarm_lines("lb-a") + "\n"
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"eipha: error: no eipha sandbox is running in {tmp_path}/none")
    assert f"--dir {tmp_path}/none" in lines[0]
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["sandbox", "--env", "lb-c"],
        ["sandbox", "--env", "lb-a", "--for", "3"],
        ["sandbox", "--env", "lb-a", "--port", "9000"],
        ["sandbox", "--port", "65534"],
        ["sandbox", "--port", "0"],
        ["sandbox", "--for", "0"],
        ["sandbox", "--for", "nan"],
        ["--config", "/etc/eipha/eipha.yaml", "sandbox"],
    ],
)
def test_usage_errors_are_one_line_exit_2(args, tmp_path, capsys):
    assert main([*args, "--dir", str(tmp_path / "sb")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("eipha: error: ")
    assert not (tmp_path / "sb").exists()


def test_help_is_cheap_and_says_how_to_use_it():
    code = (
        "import sys\n"
        "from eipha.cli import main\n"
        "rc = main(['sandbox', '--help'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'moto', 'werkzeug', 'yaml'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert 'eval "$(eipha sandbox --env lb-a)"' in result.stdout
    assert "--for SECONDS" in result.stdout


def test_a_port_that_needs_root_is_a_privilege_error_exit_4():
    from eipha.exitcodes import CLI, lookup

    denied = OSError(errno.EACCES, os.strerror(errno.EACCES))
    error = port_error([(80, "the simulated EC2 API", denied)])
    assert int(lookup(CLI, error)) == 4
    assert str(error) == (
        "cannot listen on 127.0.0.1 port 80 (the simulated EC2 API) (a port below 1024 needs "
        "root; choose another base port with --port N (the sandbox uses N to N+3))"
    )


def test_ports_in_use_are_listed_in_one_line_exit_1():
    from eipha.exitcodes import CLI, lookup

    busy = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    error = port_error([(7780, sim.ROLES[0], busy), (7783, sim.ROLES[3], busy)])
    assert int(lookup(CLI, error)) == 1
    assert str(error).startswith(
        "cannot start the sandbox: 127.0.0.1 ports 7780 (the simulated EC2 API) and 7783 "
        "(the router) are in use (by another eipha sandbox, or another program: stop it, or "
    )


def test_a_failed_env_leaves_an_eval_ing_shell_pointed_at_a_closed_loopback_port(tmp_path):
    """eval cannot see --env's exit code: a shell that had real AWS settings must not keep
    them, or the next `eipha show` would talk to AWS (or 169.254.169.254)."""
    script = (
        "export AWS_PROFILE=prod AWS_ENDPOINT_URL_EC2=https://ec2.eu-west-1.amazonaws.com; "
        f'eval "$({sys.executable} -m eipha sandbox --dir {tmp_path}/none --env lb-a)"; '
        'echo "$AWS_ENDPOINT_URL_EC2 $AWS_EC2_METADATA_SERVICE_ENDPOINT ${AWS_PROFILE-unset}"'
    )
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert result.stdout == "http://127.0.0.1:9 http://127.0.0.1:9/ unset\n"
    assert "no eipha sandbox is running" in result.stderr
