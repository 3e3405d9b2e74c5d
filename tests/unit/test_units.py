"""The systemd units shipped in src/eipha/resource_agents/systemd pass systemd-analyze verify."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "src" / "eipha" / "resource_agents" / "systemd"


def test_units_verify(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: scripts/test.sh installs systemd")
    eipha = Path(sys.executable).parent / "eipha"
    names = sorted(p.name for p in UNITS.glob("eipha-*"))
    assert names, "no units shipped"
    for name in names:
        text = (UNITS / name).read_text().replace("/usr/local/bin/eipha", str(eipha))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == ""


def test_the_monitor_restarts_and_keeps_one_capability():
    unit = (UNITS / "eipha-monitor.service").read_text()
    assert "Restart=always" in unit
    assert "ExecStart=/usr/local/bin/eipha monitor" in unit
    assert "CapabilityBoundingSet=CAP_NET_RAW\n" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def test_the_timer_runs_the_service_every_minute():
    timer = (UNITS / "eipha-secondary-ips.timer").read_text()
    assert "OnUnitActiveSec=60s" in timer
    service = (UNITS / "eipha-secondary-ips.service").read_text()
    assert "ExecStart=/usr/local/bin/eipha secondary-ips" in service
    assert "After=network-online.target" in service
