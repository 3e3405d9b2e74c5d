"""Every command has --help, and cheap paths never load boto3/botocore."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eipha.cli import cli, main

COMMANDS = [
    ["start"],
    ["stop"],
    ["status"],
    ["show"],
    ["config"],
    ["config", "check"],
    ["drill"],
    ["validate"],
    ["iam-policy"],
    ["secondary-ips"],
]


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "eipha")
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: eipha")


def test_root_help_lists_every_command_and_exit_codes(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for name in cli.commands:
        assert name in out
    assert "Exit codes" in out


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["start", "--help"],
        ["status", "--help"],
        ["config", "check", "--help"],
        ["drill", "--help"],
        ["iam-policy", "--help"],
    ],
)
def test_help_does_not_import_boto(args):
    code = (
        "import sys\n"
        "from eipha.cli import main\n"
        f"rc = main({args!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'pyroute2', 'moto'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    result = run_isolated(code)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_python_m_eipha_works():
    result = subprocess.run(
        [sys.executable, "-m", "eipha", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert "eipha" in result.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["start"], 2),
        (["bogus"], 2),
        (["status", "--timeout", "x", "web-a"], 2),
        (["start", "--private-ip", "nowhere", "eipalloc-0123456789abcdef0"], 2),
        (["--nope"], 2),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, code, capsys):
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("eipha: error: ")


@pytest.mark.parametrize(
    "args",
    [["keepalived", "notify", "INSTANCE", "VI_1", "BACKUP", "100"], ["ocf", "meta-data"]],
)
def test_agent_calls_skip_click_and_boto(args):
    """What cluster managers run most takes the short way in (eipha.program)."""
    code = (
        "import sys\n"
        "from eipha.program import main\n"
        f"rc = main({args!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'boto3', 'botocore'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    result = run_isolated(code)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_agent_help_still_goes_through_click(capsys):
    from eipha.program import main as entry_main

    assert entry_main(["heartbeat", "--help"]) == 0
    assert "Heartbeat v1 resource script" in capsys.readouterr().out
