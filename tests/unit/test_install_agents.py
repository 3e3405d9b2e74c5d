"""``eipha install-agents``: every shipped file in place with its mode and the eipha path
written in; a second run changes nothing and says so; bad input is one line and its code."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eipha import install_agents
from eipha.cli import main

EIPHA = "/opt/eipha/bin/eipha"
EXPECTED = {
    "etc/ha.d/resource.d/eipha": 0o755,
    "etc/keepalived/eipha-notify": 0o755,
    "usr/lib/ocf/resource.d/eipha/eipha": 0o755,
    "etc/systemd/system/eipha-secondary-ips.service": 0o644,
    "etc/systemd/system/eipha-secondary-ips.timer": 0o644,
    "etc/systemd/system/eipha-monitor.service": 0o644,
}
ALL = ["heartbeat", "keepalived", "ocf", "systemd"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["install-agents", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def files(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_every_manager_installs_its_files_with_modes_and_the_eipha_path(tmp_path, capsys):
    code, out, _ = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, *ALL)
    assert code == 0
    assert files(tmp_path) == EXPECTED
    for shim in ("etc/ha.d/resource.d/eipha", "etc/keepalived/eipha-notify"):
        text = (tmp_path / shim).read_text()
        assert f'EIPHA_BIN="${{EIPHA_BIN:-{EIPHA}}}"' in text
        assert "/usr/local/bin/eipha" not in text
    ocf = (tmp_path / "usr/lib/ocf/resource.d/eipha/eipha").read_text()
    assert f'EIPHA_BIN="${{EIPHA_BIN:-{EIPHA}}}"' in ocf
    for unit in ("eipha-secondary-ips.service", "eipha-monitor.service"):
        text = (tmp_path / "etc/systemd/system" / unit).read_text()
        assert f"\nExecStart={EIPHA} " in text
        assert "/usr/local/bin" not in text
    assert out[-1] == f"6 files: 6 installed, 0 updated, 0 unchanged (eipha is {EIPHA})"
    assert out[0] == (
        f"installed {tmp_path}/etc/ha.d/resource.d/eipha (Heartbeat resource script, 0755)"
    )
    for directory in (tmp_path / "usr/lib/ocf/resource.d/eipha", tmp_path / "etc/keepalived"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755


def test_a_second_run_changes_nothing_and_says_so(tmp_path, capsys):
    run(capsys, "--root", str(tmp_path), "--bin", EIPHA, *ALL)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    code, out, _ = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, *ALL)
    assert code == 0
    assert out[-1] == f"6 files: nothing to change (eipha is {EIPHA})"
    assert all(line.startswith("unchanged ") for line in out[:-1])
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_changed_file_a_wrong_mode_or_another_bin_is_updated(tmp_path, capsys):
    run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "heartbeat", "keepalived")
    shim = tmp_path / "etc/ha.d/resource.d/eipha"
    shim.write_text("#!/bin/sh\necho edited\n")
    (tmp_path / "etc/keepalived/eipha-notify").chmod(0o775)
    code, out, _ = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "heartbeat", "keepalived")
    assert code == 0
    assert out[-1] == f"2 files: 0 installed, 2 updated, 0 unchanged (eipha is {EIPHA})"
    assert files(tmp_path) == {
        "etc/ha.d/resource.d/eipha": 0o755,
        "etc/keepalived/eipha-notify": 0o755,
    }
    assert shim.read_bytes() == install_agents.render(install_agents.AGENTS[0], EIPHA)
    code, out, _ = run(capsys, "--root", str(tmp_path), "--bin", "/usr/bin/eipha", "heartbeat")
    assert out[-1] == "1 file: 0 installed, 1 updated, 0 unchanged (eipha is /usr/bin/eipha)"
    assert 'EIPHA_BIN="${EIPHA_BIN:-/usr/bin/eipha}"' in shim.read_text()


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n")
    dest = tmp_path / "root/etc/ha.d/resource.d/eipha"
    dest.parent.mkdir(parents=True)
    dest.symlink_to(elsewhere)
    code, out, _ = run(capsys, "--root", str(tmp_path / "root"), "--bin", EIPHA, "heartbeat")
    assert code == 0
    assert out[0].startswith("updated ")
    assert not dest.is_symlink()
    assert elsewhere.read_text() == "not yours\n"


def test_dry_run_writes_nothing_and_prints_the_plan(tmp_path, capsys):
    code, out, _ = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "--dry-run", "ocf")
    assert code == 0
    assert out == [
        f"would install {tmp_path}/usr/lib/ocf/resource.d/eipha/eipha "
        "(Pacemaker resource agent ocf:eipha:eipha, 0755)",
        f"dry run: 1 file: 1 would install, 0 would update, 0 unchanged (eipha is {EIPHA})",
    ]
    assert list(tmp_path.iterdir()) == []


def test_next_steps_go_to_stderr_for_what_changed_only(tmp_path, capsys):
    _, out, err = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "systemd")
    assert err.startswith("eipha: next, systemd: systemctl daemon-reload && systemctl enable")
    assert "eipha-secondary-ips.service eipha-secondary-ips.timer" in err
    assert not any(line.startswith(("next", "eipha:")) for line in out)
    _, out, err = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "systemd")
    assert err == ""


def test_the_default_bin_is_the_eipha_of_this_installation(tmp_path, capsys):
    code, out, _ = run(capsys, "--root", str(tmp_path), "heartbeat")
    assert code == 0
    beside = Path(sys.executable).parent / "eipha"
    assert out[-1].endswith(f"(eipha is {beside})")
    text = (tmp_path / "etc/ha.d/resource.d/eipha").read_text()
    assert f'EIPHA_BIN="${{EIPHA_BIN:-{beside}}}"' in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus"], "'bogus' is not one of 'heartbeat', 'keepalived', 'ocf', 'systemd'"),
        ([], "Missing argument 'MANAGER...'"),
        (["--bin", "eipha", "ocf"], "--bin 'eipha' is not an absolute path"),
        (["--bin", "/opt/my eipha/bin/eipha", "ocf"], "characters a shell script"),
        (["--bin", "/opt/$(reboot)/eipha", "ocf"], "characters a shell script"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    code, out, err = run(capsys, "--root", str(tmp_path), *args)
    assert code == 2
    assert out == []
    assert len(err.splitlines()) == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_directory_must_go_is_exit_6(tmp_path, capsys):
    (tmp_path / "etc").write_text("a file, not a directory\n")
    code, out, err = run(capsys, "--root", str(tmp_path), "--bin", EIPHA, "heartbeat")
    assert code == 6
    assert out == []
    assert err.startswith(f"eipha: error: cannot install {tmp_path}/etc/ha.d/resource.d/eipha (")
    assert len(err.splitlines()) == 1


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def as_nobody() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")  # the root-run CI covers it
    return [*NOBODY, sys.executable, "-m", "eipha"]


def test_without_root_it_refuses_to_write_into_the_system(as_nobody):
    result = subprocess.run(
        [*as_nobody, "install-agents", "heartbeat"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr == (
        "eipha: error: install-agents writes into /etc and /usr/lib "
        "(run it as root, or stage with --root DIR)\n"
    )


def test_a_root_it_cannot_write_is_exit_4_naming_the_path(tmp_path, as_nobody):
    tmp_path.chmod(0o755)  # others may look, not write
    result = subprocess.run(
        [*as_nobody, "install-agents", "--root", str(tmp_path), "--bin", EIPHA, "ocf"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith(
        f"eipha: error: cannot write {tmp_path}/usr/lib/ocf/resource.d/eipha/eipha "
        "(Permission denied; run as root, or stage with --root DIR)"
    )
    assert len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
