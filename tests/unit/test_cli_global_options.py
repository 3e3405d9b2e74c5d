"""Global options (--config, --region, -v, -q) work after the command as well as before it,
for every command the group has (and any added later); the one after the command wins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from eipha import program
from eipha.cli import cli, main
from eipha.cli.common import Group, options

GLOBAL = ("--config", "--region", "--verbose", "--quiet")
A1 = "eipalloc-0000000a"
A2 = "eipalloc-0000000b"


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


EVERY_COMMAND = sorted(commands(cli))


def test_the_tree_is_walked():
    assert ("status",) in EVERY_COMMAND
    assert ("keepalived", "notify") in EVERY_COMMAND
    assert ("config", "check") in EVERY_COMMAND


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(p))
def test_every_command_shows_the_global_options_in_its_help(path, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    for option in GLOBAL:
        assert option in out, (path, option)


def test_a_command_added_later_gets_them_too():
    """What `cli.add_command(x)` does for a command written without a thought for them."""
    group = Group()
    seen: list[tuple[str | None, str | None]] = []

    @click.command()
    @click.pass_context
    def later(ctx: click.Context) -> None:
        seen.append((options(ctx).config_path, options(ctx).region))

    group.add_command(later)
    group.main(["later", "--config", "x.yaml", "--region", "eu-west-3"], standalone_mode=False)
    assert seen == [("x.yaml", "eu-west-3")]


def config_file(path: Path, allocation_id: str) -> Path:
    path.write_text(f"eips:\n  web-a: {{allocation_id: {allocation_id}, home: lb-a}}\n")
    return path


def policy(capsys) -> tuple[list[str], str]:
    document = json.loads(capsys.readouterr().out)
    moves = document["Statement"][1]["Resource"]
    return [r.rsplit("/", 1)[1] for r in moves if ":elastic-ip/" in r], moves[0].split(":")[3]


def test_config_and_region_after_the_command(tmp_path: Path, capsys):
    one = config_file(tmp_path / "one.yaml", A1)
    assert main(["iam-policy", "--config", str(one), "--region", "eu-central-1"]) == 0
    assert policy(capsys) == ([A1], "eu-central-1")


def test_the_option_after_the_command_wins(tmp_path: Path, capsys):
    one = config_file(tmp_path / "one.yaml", A1)
    two = config_file(tmp_path / "two.yaml", A2)
    args = ["--config", str(one), "--region", "us-east-1", "iam-policy"]
    assert main([*args, "--config", str(two), "--region", "eu-central-1"]) == 0
    assert policy(capsys) == ([A2], "eu-central-1")
    assert main([*args]) == 0
    assert policy(capsys) == ([A1], "us-east-1")


def test_a_bad_region_after_the_command_is_a_usage_error(capsys):
    assert main(["iam-policy", "--region", "eu west 1"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("eipha: error: ")
    assert "not an AWS region name" in line


def test_missing_config_after_the_command_is_not_configured(tmp_path: Path, capsys):
    assert main(["iam-policy", "--config", str(tmp_path / "nope.yaml")]) == 6
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"eipha: error: config file {tmp_path / 'nope.yaml'} not found"


BACKUP = ["INSTANCE", "VI_1", "BACKUP", "100"]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["keepalived", "notify", "--config", "{c}", *BACKUP], True),
        (["keepalived", "notify", "-q", "--config", "{c}", *BACKUP], False),
        (["-q", "keepalived", "notify", "--config", "{c}", *BACKUP], False),
        (["-q", "keepalived", "notify", "-v", "--config", "{c}", *BACKUP], True),
        (["-v", "keepalived", "notify", "-q", "--config", "{c}", *BACKUP], False),
        (["keepalived", "-q", "notify", "--config", "{c}", *BACKUP], False),
        (["-q", "-v", "keepalived", "notify", "--config", "{c}", *BACKUP], False),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_quiet_and_verbose_on_either_side(tmp_path: Path, capsys, args, shown):
    """-q before the command and -v after it: the one after wins; on one side, -q does."""
    config = config_file(tmp_path / "c.yaml", A1)
    assert main([str(config) if a == "{c}" else a for a in args]) == 0
    err = capsys.readouterr().err
    assert ("nothing to do" in err) is shown, err


@pytest.mark.parametrize(
    ("argv", "plain"),
    [
        (["heartbeat", "web-a", "start"], True),
        (["keepalived", "notify", "INSTANCE", "VI_1", "MASTER", "100"], True),
        (["keepalived", "notify", "--mine", "-x", "INSTANCE", "VI_1", "MASTER", "100"], True),
        (["keepalived", "fifo", "/run/keepalived.fifo"], True),
        (["ocf", "monitor"], True),
        # the manager's own words after the first argument are not options of eipha's
        (["heartbeat", "web-a", "start", "--config", "x"], True),
        (["keepalived", "notify", "INSTANCE", "-v", "MASTER", "100"], True),
        # global options right after the command: click reads them
        (["heartbeat", "--config", "x", "web-a", "start"], False),
        (["heartbeat", "--region=eu-west-1", "web-a", "start"], False),
        (["keepalived", "notify", "-q", "INSTANCE", "VI_1", "MASTER", "100"], False),
        (["keepalived", "notify", "--mine", "-vv", "INSTANCE", "VI_1", "MASTER", "100"], False),
        (["keepalived", "fifo", "/run/keepalived.fifo", "--verbose"], False),
        (["ocf", "start", "--config", "x"], False),
        (["keepalived", "--config", "x", "notify", "INSTANCE", "VI_1", "MASTER", "100"], False),
        (["--config", "x", "heartbeat", "web-a", "start"], False),
        (["heartbeat", "web-a", "start", "--help"], False),
        (["status", "web-a"], False),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_which_agent_calls_take_the_short_way_in(argv, plain):
    assert program.plain_agent_call(argv) is plain


def test_an_agent_call_through_click_reads_the_options_after_the_command(tmp_path, capsys):
    """The long way in for `eipha keepalived notify --config FILE ...`: the file is read
    (an instance it does not list is an error naming it)."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"eips:\n  web-a: {{allocation_id: {A1}, home: lb-a}}\n"
        "keepalived:\n  instances: {VI_WEB: [web-a]}\n"
    )
    args = ["keepalived", "notify", "--config", str(config), "INSTANCE", "VI_A", "MASTER", "1"]
    assert program.main(args) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert f"VI_A is not in keepalived.instances of {config} (it lists VI_WEB; " in line
