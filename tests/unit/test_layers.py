"""The import layers of pyproject.toml hold, and a violation of them fails the check.

``lint-imports`` (import-linter) reads every import of eipha's modules, those inside
functions and under ``TYPE_CHECKING`` included. The second test copies the package, makes the
core import an adapter, and expects the check to fail and name the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "eipha",
        tmp_path / "src" / "eipha",
        ignore=shutil.ignore_patterns("__pycache__", "_data", "resource_agents"),
    )
    return tmp_path


def test_the_layers_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        ("failover.py", "from eipha import wiring", "eipha.failover -> eipha.wiring"),
        ("node.py", "from eipha.cli import common", "eipha.node -> eipha.cli.common"),
        ("agents/heartbeat.py", "from eipha.sim import region", "eipha.agents.heartbeat"),
    ],
)
def test_a_violation_fails_and_is_named(copy: Path, module: str, line: str, named: str):
    path = copy / "src" / "eipha" / module
    text = path.read_text()
    path.write_text(
        text.replace(
            "from __future__ import annotations\n",
            f"from __future__ import annotations\n\n{line}  # noqa\n",
            1,
        )
    )
    result = lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert named in result.stdout
    assert "BROKEN" in result.stdout
