"""keepalived (eipha keepalived notify|fifo): every argument form keepalived produces, FIFO
lines, which EIPs an instance carries, event ordering, and the FIFO reader itself."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from eipha import errors
from eipha.agents import keepalived, keepalived_fifo
from eipha.agents.keepalived import Event, Stamp
from eipha.agents.setup import Setup
from eipha.config import Config
from eipha.node import Node
from tests.fakes import FakeAdapters, FakeEc2
from tests.unit.test_agents_common import (
    A_PRIMARY,
    A_SECOND,
    CONFIG,
    LB_A,
    WEB_A,
    WEB_B,
    World,
    config,
)

MAPPED = CONFIG + "keepalived:\n  instances: {VI_WEB: [web-a, web-b], VI_B: [web-b]}\n"


@pytest.fixture
def world(run_dir: Path) -> World:
    return World()


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decision is one INFO line: let caplog see them (an in-process ``main()`` in
    another test may have set up eipha's logger to stop at its own handlers)."""
    monkeypatch.setattr(logging.getLogger("eipha"), "propagate", True)
    caplog.set_level(logging.INFO, logger="eipha")


def stamp(ticks: int, pid: int = 100, boot: str = "boot-1") -> Stamp:
    return Stamp(ticks, pid, boot)


# --------------------------------------------------------------------------- notify arguments


@pytest.mark.parametrize(
    ("args", "event"),
    [
        (["INSTANCE", "VI_1", "MASTER", "100"], Event("INSTANCE", "VI_1", "MASTER", 100)),
        (["INSTANCE", "VI_1", "BACKUP"], Event("INSTANCE", "VI_1", "BACKUP")),
        (["GROUP", "G1", "FAULT", "0"], Event("GROUP", "G1", "FAULT", 0)),
        (["INSTANCE", "VI_1", "STOP", "100"], Event("INSTANCE", "VI_1", "STOP", 100)),
        (["INSTANCE", "VI_1", "DELETED", "100"], Event("INSTANCE", "VI_1", "DELETED", 100)),
        # the user's own arguments come first; keepalived's are read from the end
        (
            ["--mine", "x", "INSTANCE", "VI_1", "MASTER", "150"],
            Event("INSTANCE", "VI_1", "MASTER", 150),
        ),
        (["my", "words", "INSTANCE", "VI_1", "MASTER"], Event("INSTANCE", "VI_1", "MASTER")),
        (
            ["INSTANCE", "GROUP", "INSTANCE", "VI_1", "BACKUP", "7"],
            Event("INSTANCE", "VI_1", "BACKUP", 7),
        ),
        # notify_master_rx_lower_pri gets no arguments: the line spells the event out
        (
            ["INSTANCE", "VI_WEB", "MASTER_RX_LOWER_PRI"],
            Event("INSTANCE", "VI_WEB", "MASTER_RX_LOWER_PRI"),
        ),
        # hand-written lines in lower case: keywords are upper-cased, names kept as written
        (
            ["instance", "vi_web", "master_rx_lower_pri"],
            Event("INSTANCE", "vi_web", "MASTER_RX_LOWER_PRI"),
        ),
        (["group", "g", "backup", "0"], Event("GROUP", "g", "BACKUP", 0)),
    ],
)
def test_parse_args(args: list[str], event: Event):
    assert keepalived.parse_args(args) == event


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["MASTER"],
        ["VI_1", "MASTER"],
        ["INSTANCE", "VI_1"],
        ["foo", "bar", "baz", "qux"],
        ["INSTANCE", "VI_1", "PRIMARY", "100"],  # not a keepalived state
        ["INSTANCE", "VI_1", "MASTER", "high"],  # 4th word neither priority nor state
        ["INSTANCE", "VI_1", "MASTER", "-1"],
        ["NODE", "VI_1", "MASTER", "100"],
        ["INSTANCE", "", "MASTER", "100"],
        ["INSTANCE", "VI_1", "MASTER", "100", "extra"],  # keepalived's words must be last
    ],
)
def test_parse_args_rejects(args: list[str]):
    with pytest.raises(errors.UsageError):
        keepalived.parse_args(args)


def test_notify_usage_is_exit_2_and_touches_nothing(world: World):
    assert keepalived.notify(["INSTANCE", "VI_1"], world.setup, None) == 2
    assert world.built == []
    assert world.ec2.calls == []


# --------------------------------------------------------------------------- FIFO lines


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ('INSTANCE "VI_1" MASTER 100', Event("INSTANCE", "VI_1", "MASTER", 100)),
        ('GROUP "G" BACKUP 0', Event("GROUP", "G", "BACKUP", 0)),
        (
            'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100',
            Event("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100),
        ),
        ('INSTANCE "VI with space" FAULT 50', Event("INSTANCE", "VI with space", "FAULT", 50)),
        ("INSTANCE VI_1 STOP 100\r", Event("INSTANCE", "VI_1", "STOP", 100)),
        ('  INSTANCE  "VI_1"  BACKUP  100  ', Event("INSTANCE", "VI_1", "BACKUP", 100)),
        # notify_priority_changes: read, and nothing to do
        ('INSTANCE "VI_1" MASTER_PRIORITY 90', Event("INSTANCE", "VI_1", "MASTER_PRIORITY", 90)),
        ('INSTANCE "VI_1" BACKUP_PRIORITY 80', Event("INSTANCE", "VI_1", "BACKUP_PRIORITY", 80)),
    ],
)
def test_parse_line(line: str, event: Event):
    assert keepalived.parse_line(line) == event


@pytest.mark.parametrize(
    "line",
    [
        'INSTANCE "VI_1 MASTER 100',  # unterminated quote
        'RS "10.0.0.1:80" UP',  # a checker line on the global FIFO
        'VS "10.0.0.10:80" DOWN',
        'INSTANCE "VI_1" PRIMARY 90',  # not a keepalived state
        'INSTANCE "VI_1"',
        'junk "VI_1" MASTER 100 and more',
        "\x00\x01binary",
        "",
    ],
)
def test_parse_line_rejects(line: str):
    with pytest.raises(errors.UsageError):
        keepalived.parse_line(line)


def test_handle_line_never_raises(world: World, caplog):
    warm = keepalived_fifo.Warm(world.setup)
    keepalived_fifo.handle_line('INSTANCE "VI_1 MASTER 100', warm)
    world.node = None  # IMDS down: the start fails, the reader goes on
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    assert "ignoring FIFO line" in caplog.text
    assert "IMDS did not answer" in caplog.text


# --------------------------------------------------------------------------- which EIPs


def test_eips_for():
    mapped = config(MAPPED)
    assert keepalived.eips_for("VI_WEB", mapped) == ("web-a", "web-b")
    assert keepalived.eips_for("VI_B", mapped) == ("web-b",)
    assert keepalived.eips_for("ANY", config()) == ("web-a", "web-b")


def test_eips_for_an_instance_the_mapping_leaves_out_is_not_configured():
    with pytest.raises(errors.NotConfigured) as info:
        keepalived.eips_for("VI_DB", config(MAPPED))
    assert str(info.value) == (
        "VI_DB is not in keepalived.instances of /etc/eipha/eipha.yaml (it lists VI_B, "
        "VI_WEB; add VI_DB there, or use one of those names in keepalived.conf)"
    )


def test_eips_for_without_a_config_is_not_configured():
    from eipha.config import EMPTY

    with pytest.raises(errors.NotConfigured):
        keepalived.eips_for("VI_1", EMPTY)


# --------------------------------------------------------------------------- handling


def test_master_starts_the_instances_eips(world: World):
    world.text = MAPPED
    assert keepalived.notify(["INSTANCE", "VI_B", "MASTER", "100"], world.setup, stamp(1)) == 0
    assert world.where(WEB_B) == A_SECOND
    assert world.where(WEB_A) is None


@pytest.mark.parametrize(
    "state", ["BACKUP", "FAULT", "STOP", "DELETED", "MASTER_PRIORITY", "BACKUP_PRIORITY"]
)
def test_other_states_build_nothing_and_call_nothing(world: World, state: str, caplog):
    world.ec2.put(WEB_A, A_PRIMARY)
    assert keepalived.notify(["INSTANCE", "VI_WEB", state, "100"], world.setup, stamp(1)) == 0
    assert world.built == []
    assert world.ec2.calls == []
    assert f"INSTANCE VI_WEB is {state} (priority 100): nothing to do" in caplog.text
    assert world.where(WEB_A) == A_PRIMARY


def test_unmapped_instance_is_an_error_not_nothing_to_do(world: World, caplog):
    world.text = MAPPED
    assert keepalived.notify(["INSTANCE", "VI_DB", "MASTER", "100"], world.setup, stamp(1)) == 1
    assert world.ec2.calls == []
    assert world.built == []
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith(
        "keepalived: INSTANCE VI_DB is MASTER (priority 100): VI_DB is not in "
        "keepalived.instances of /etc/eipha/eipha.yaml (it lists VI_B, VI_WEB; "
    )


def test_leaving_an_unmapped_instance_warns_and_does_nothing(world: World, caplog):
    world.text = MAPPED
    assert keepalived.notify(["INSTANCE", "VI_DB", "BACKUP", "100"], world.setup, stamp(1)) == 0
    assert (world.ec2.calls, world.built) == ([], [])
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING
    assert "VI_DB is not in keepalived.instances of /etc/eipha/eipha.yaml" in record.getMessage()
    assert record.getMessage().endswith("; a MASTER for it would fail")


def test_a_failed_start_is_exit_1(world: World):
    world.ec2.fail["AssociateAddress"] = errors.AwsError("AssociateAddress failed", "500")
    assert keepalived.notify(["INSTANCE", "VI_1", "MASTER", "100"], world.setup, stamp(1)) == 1


def test_a_config_error_is_exit_1(world: World):
    world.text = "eips: {}\n"
    assert keepalived.notify(["INSTANCE", "VI_1", "MASTER", "100"], world.setup, stamp(1)) == 1


def test_same_event_twice_is_harmless(world: World):
    args = ["INSTANCE", "VI_WEB", "MASTER", "100"]
    assert keepalived.notify(args, world.setup, stamp(1)) == 0
    calls = len(world.ec2.calls)
    assert keepalived.notify(args, world.setup, stamp(2)) == 0
    assert world.ec2.calls[calls:] == ["DescribeAddresses"]  # already there: one read
    assert world.where(WEB_A) == A_PRIMARY


# --------------------------------------------------------------------------- ordering


def test_a_stale_master_after_a_later_backup_is_skipped(world: World, caplog):
    """keepalived forked MASTER (tick 10) then BACKUP (tick 11); BACKUP got the lock first.
    The stale MASTER must not take the EIPs back."""
    assert keepalived.notify(["INSTANCE", "VI_WEB", "BACKUP", "100"], world.setup, stamp(11)) == 0
    assert keepalived.notify(["INSTANCE", "VI_WEB", "MASTER", "100"], world.setup, stamp(10)) == 0
    assert world.ec2.calls == []
    assert "skipped; a later event (BACKUP) was handled already" in caplog.text


def test_ordering_is_per_instance_boot_and_pid(world: World):
    world.text = CONFIG + "keepalived:\n  instances: {VI_WEB: [web-a], VI_B: [web-b]}\n"
    keepalived.notify(["INSTANCE", "VI_B", "BACKUP", "100"], world.setup, stamp(20, pid=500))
    # another instance is not overtaken
    assert keepalived.notify(["INSTANCE", "VI_WEB", "MASTER", "1"], world.setup, stamp(5)) == 0
    assert world.where(WEB_A) == A_PRIMARY
    # same tick: the PID breaks the tie
    keepalived.notify(["INSTANCE", "VI_B", "MASTER", "1"], world.setup, stamp(20, pid=499))
    assert world.where(WEB_B) is None
    # after a reboot the old record means nothing
    keepalived.notify(["INSTANCE", "VI_B", "MASTER", "1"], world.setup, stamp(3, boot="boot-2"))
    assert world.where(WEB_B) == A_SECOND


def test_without_a_stamp_every_event_counts(world: World):
    keepalived.notify(["INSTANCE", "VI_WEB", "BACKUP", "100"], world.setup, stamp(11))
    assert keepalived.notify(["INSTANCE", "VI_WEB", "MASTER", "100"], world.setup, None) == 0
    assert world.where(WEB_A) == A_PRIMARY


def test_a_broken_ledger_is_ignored(world: World, run_dir: Path):
    (run_dir / "locks").mkdir(parents=True)
    (run_dir / "locks" / keepalived.LEDGER).write_text("{not json")
    assert keepalived.notify(["INSTANCE", "VI_WEB", "MASTER", "1"], world.setup, stamp(1)) == 0
    assert world.where(WEB_A) == A_PRIMARY


def test_fork_stamp_reads_proc(tmp_path: Path):
    (tmp_path / "self").mkdir()
    fields = " ".join(str(n) for n in range(3, 30))  # field 22 (starttime) is "22"
    (tmp_path / "self" / "stat").write_text(f"4242 (eipha (x) y) {fields}\n")
    (tmp_path / "sys" / "kernel" / "random").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "random" / "boot_id").write_text("b00t\n")
    assert keepalived.fork_stamp(tmp_path) == Stamp(22, 4242, "b00t")
    assert keepalived.fork_stamp(tmp_path / "absent") is None


def test_fork_stamp_of_this_process():
    here = keepalived.fork_stamp()
    assert here is not None
    assert here.pid == os.getpid()
    assert here.boot


# --------------------------------------------------------------------------- the FIFO reader


def write_later(path: Path, chunks: list[bytes], close: bool = True) -> threading.Thread:
    def run() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until the reader has opened it
        for chunk in chunks:
            os.write(fd, chunk)
            time.sleep(0.02)
        if close:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_fifo_lines_until_eof(tmp_path: Path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    writer = write_later(path, [b'INSTANCE "VI_1" MAS', b"TER 100\nGROUP ", b'"G" BACKUP 0\nlast'])
    with keepalived_fifo.Fifo(str(path)) as reader:
        lines = list(reader.lines())
    writer.join(5)
    assert lines == ['INSTANCE "VI_1" MASTER 100', 'GROUP "G" BACKUP 0', "last"]
    assert not reader.stopping


def test_fifo_stops_on_sigterm_and_restores_the_handler(tmp_path: Path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    before = signal.getsignal(signal.SIGTERM)
    write_later(path, [b'INSTANCE "VI_1" BACKUP 100\n'], close=False)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with keepalived_fifo.Fifo(str(path)) as reader:
            lines = list(reader.lines())
    finally:
        timer.cancel()
    assert lines == ['INSTANCE "VI_1" BACKUP 100']
    assert reader.stopping
    assert signal.getsignal(signal.SIGTERM) == before


def test_fifo_that_cannot_be_opened_is_exit_1(world: World, tmp_path: Path):
    assert keepalived_fifo.fifo(str(tmp_path / "absent"), world.setup) == 1


def test_fifo_mode_handles_each_line(world: World, tmp_path: Path, caplog):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    world.text = MAPPED
    write_later(
        path, [b'INSTANCE "VI_B" MASTER 100\n', b"garbage\n", b'INSTANCE "VI_B" BACKUP 50\n']
    )
    assert keepalived_fifo.fifo(str(path), world.setup) == 0
    assert world.where(WEB_B) == A_SECOND
    assert "ignoring FIFO line 'garbage'" in caplog.text
    assert "end of file; exiting" in caplog.text


# --------------------------------------------------------------------------- the warm reader


def test_fifo_reader_prepares_one_node_and_keeps_it(world: World, tmp_path: Path, caplog):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    world.text = MAPPED
    lines = [b'INSTANCE "VI_B" MASTER 100\n', b'INSTANCE "VI_WEB" MASTER 150\n']
    write_later(path, lines)
    assert keepalived_fifo.fifo(str(path), world.setup) == 0
    # built once, before the first line, on a short deadline: who this node is was read
    # then, once; each start read only the secondary IPs its takeover needs
    assert [a.reads for a in world.built] == [["brief", "secondaries", "secondaries"]]
    assert world.built[0].deadlines == [keepalived_fifo.PREPARE, 5.0, 5.0]
    assert world.where(WEB_A) == A_PRIMARY
    assert world.where(WEB_B) == A_SECOND
    assert f"{path}: ready in" in caplog.text
    assert "lb-a (i-aaaaaaaa) in eu-west-1" in caplog.text


def kept(warm: keepalived_fifo.Warm) -> Node:
    assert warm.keeper.node is not None
    return warm.keeper.node


def test_a_kept_node_gets_the_whole_timeout_for_each_event(world: World):
    warm = keepalived_fifo.Warm(world.setup)
    warm.prepare("fifo")
    prepared = kept(warm)
    prepared.deadline.started -= 100  # long ago: that deadline has passed
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    assert kept(warm) is prepared
    assert len(world.built) == 1
    assert prepared.deadline.seconds == 5.0
    assert prepared.deadline.remaining() > 4.0
    assert world.where(WEB_A) == A_PRIMARY


def test_a_changed_config_gets_a_new_node(world: World):
    warm = keepalived_fifo.Warm(world.setup)
    warm.prepare("fifo")
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    world.text = MAPPED  # edited between two events
    keepalived_fifo.handle_line('INSTANCE "VI_B" MASTER 100', warm)
    assert len(world.built) == 2
    assert kept(warm).config == config(MAPPED)
    assert world.where(WEB_B) == A_SECOND


def test_a_start_that_fails_on_a_kept_node_is_tried_again_on_a_new_one(world: World, caplog):
    """What was kept (credentials, connection, token) may have gone stale since the last
    event, and keepalived sends no event twice."""
    warm = keepalived_fifo.Warm(world.setup)
    warm.prepare("fifo")
    prepared = kept(warm)
    adapters = prepared.adapters
    assert isinstance(adapters, FakeAdapters)
    adapters.ec2 = FakeEc2()  # its connection went somewhere that knows no EIP
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    assert world.where(WEB_A) == A_PRIMARY
    assert len(world.built) == 2
    assert kept(warm) is not prepared
    assert "EC2 does not know" in caplog.text
    assert "trying again with a new EC2 client and IMDS token" in caplog.text


def test_a_start_that_fails_on_a_new_node_is_not_repeated(world: World, caplog):
    world.node = None
    warm = keepalived_fifo.Warm(world.setup)
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)  # a second event: new again
    assert len(world.built) == 2
    assert warm.keeper.node is None
    assert world.where(WEB_A) is None
    assert "trying again" not in caplog.text


def test_a_failed_warm_up_is_said_and_events_still_work(world: World, caplog):
    world.node = None  # IMDS not there yet at boot
    warm = keepalived_fifo.Warm(world.setup)
    warm.prepare("/run/k.fifo")
    assert warm.keeper.node is None
    assert "/run/k.fifo: not prepared ahead (IMDS did not answer" in caplog.text
    world.node = LB_A
    keepalived_fifo.handle_line('INSTANCE "VI_1" MASTER 100', warm)
    assert world.where(WEB_A) == A_PRIMARY
    assert len(world.built) == 2


def test_a_reader_without_a_config_still_reads(tmp_path: Path, caplog):
    def load(path: str | None) -> Config:
        raise errors.NotConfigured("no EIPs to start", "there is no config file naming them")

    warm = keepalived_fifo.Warm(Setup(load, World().build))
    warm.prepare("fifo")
    assert warm.keeper.node is None
    assert "not prepared ahead (no EIPs to start" in caplog.text
