"""The package as a user gets it: the sdist and wheel built from the checkout (offline), their
metadata checked by twine, the wheel installed into a fresh virtualenv with no package index,
and the shims and units put in place from it by ``eipha install-agents``.

Everything here is offline: the build uses this environment's setuptools (no isolation), and
pip installs from ``build/wheelhouse`` (made by ``scripts/test.sh``) with ``--no-index``.
"""

from __future__ import annotations

import email
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

from tests.unit.test_install_agents import EXPECTED as INSTALLED

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "build" / "wheelhouse"
SHIPPED = REPO / "src" / "eipha" / "resource_agents"
AGENT_FILES = sorted(str(p.relative_to(SHIPPED)) for p in SHIPPED.rglob("*") if p.is_file())
# pip with no index and no configuration but the wheelhouse: nothing leaves this machine
OFFLINE_PIP = {
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": str(WHEELHOUSE),
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, f"{cmd}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, then the wheel built from that sdist (so the sdist must be complete)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)])
    return out


def one(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_twine_accepts_both_distributions(dist: Path):
    files = [str(one(dist, "eipha-*.tar.gz")), str(one(dist, "eipha-*.whl"))]
    result = run([sys.executable, "-m", "twine", "check", "--strict", *files])
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_carries_the_shims_units_and_license(dist: Path):
    with zipfile.ZipFile(one(dist, "eipha-*.whl")) as archive:
        names = set(archive.namelist())
        for name in AGENT_FILES:
            member = f"eipha/resource_agents/{name}"
            assert member in names
            assert archive.read(member) == (SHIPPED / name).read_bytes()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
        assert "eipha/py.typed" in names


def test_the_sdist_carries_what_a_build_needs(dist: Path):
    with tarfile.open(one(dist, "eipha-*.tar.gz")) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in ("LICENSE", "README.md", "pyproject.toml", "src/eipha/__init__.py"):
        assert needed in names
    for name in AGENT_FILES:
        assert f"src/eipha/resource_agents/{name}" in names


def test_metadata_declares_only_what_eipha_imports(dist: Path):
    meta = metadata(one(dist, "eipha-*.whl"))
    required = sorted(
        r.split(">")[0].split("=")[0].strip().lower()
        for r in meta.get_all("Requires-Dist", [])
        if "extra ==" not in r
    )
    assert required == ["botocore", "click", "pyroute2", "pyyaml"]
    extras = set(meta.get_all("Provides-Extra", []))
    assert {"simulate", "metrics"} <= extras
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.11"
    urls = {u.split(",")[0] for u in meta.get_all("Project-URL", [])}
    assert {"Homepage", "Documentation", "Source", "Issues"} <= urls
    classifiers = meta.get_all("Classifier", [])
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Intended Audience :: System Administrators" in classifiers


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed, offline."""
    assert (WHEELHOUSE / ".").is_dir(), "run scripts/test.sh: it makes build/wheelhouse"
    home = tmp_path_factory.mktemp("venv") / "eipha"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(home)])
    env = {**os.environ, **OFFLINE_PIP}
    run([str(home / "bin/pip"), "install", str(one(dist, "eipha-*.whl"))], env=env)
    return home


def test_the_installed_eipha_runs_without_boto3(venv: Path):
    result = run([str(venv / "bin/eipha"), "--version"])
    assert result.stdout == "eipha, version 0.1.0\n"
    probe = "import importlib.util as u; print(u.find_spec('boto3'), u.find_spec('eipha').origin)"
    where = run([str(venv / "bin/python"), "-c", probe]).stdout.split()
    assert where[0] == "None"
    assert where[1].startswith(str(venv))


def test_install_agents_from_the_wheel_puts_every_file_in_place_once(venv: Path, tmp_path: Path):
    eipha = venv / "bin/eipha"
    managers = ["heartbeat", "keepalived", "ocf", "systemd"]
    first = run([str(eipha), "install-agents", "--root", str(tmp_path), *managers])
    assert first.stdout.splitlines()[-1] == (
        f"6 files: 6 installed, 0 updated, 0 unchanged (eipha is {eipha})"
    )
    found = {
        str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    assert found == INSTALLED
    for shim in ("etc/ha.d/resource.d/eipha", "usr/lib/ocf/resource.d/eipha/eipha"):
        assert f'EIPHA_BIN="${{EIPHA_BIN:-{eipha}}}"' in (tmp_path / shim).read_text()
    unit = (tmp_path / "etc/systemd/system/eipha-monitor.service").read_text()
    assert f"\nExecStart={eipha} monitor\n" in unit
    second = run([str(eipha), "install-agents", "--root", str(tmp_path), *managers])
    assert second.stdout.splitlines()[-1] == f"6 files: nothing to change (eipha is {eipha})"
    assert second.stderr == ""


def test_the_installed_heartbeat_shim_reaches_the_venvs_eipha(venv: Path, tmp_path: Path):
    """Heartbeat runs the script with a bare environment: the path written in is all it has."""
    run([str(venv / "bin/eipha"), "install-agents", "--root", str(tmp_path), "heartbeat"])
    shim = tmp_path / "etc/ha.d/resource.d/eipha"
    result = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", f"EIPHA_DEFAULTS={tmp_path}/none", str(shim), "bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("eipha: error: heartbeat: cannot use 'bogus'")


def test_a_missing_extra_is_exit_5_naming_the_pip_command(venv: Path):
    """The plain wheel has no simulate extra: the simulation says what to install."""
    result = subprocess.run(
        [str(venv / "bin/eipha"), "drill", "--simulate"], capture_output=True, text=True
    )
    assert result.returncode == 5
    assert result.stdout == ""
    assert result.stderr == (
        "eipha: error: eipha drill --simulate needs the 'simulate' extra, which is not "
        "installed (no module moto, flask, flask_cors, werkzeug) (pip install 'eipha[simulate]')\n"
    )


def test_the_sdist_carries_the_docs_and_the_manual_page(dist: Path):
    with tarfile.open(one(dist, "eipha-*.tar.gz")) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    docs = {str(p.relative_to(REPO)) for p in (REPO / "docs").iterdir() if p.is_file()}
    assert "docs/eipha.1" in docs
    assert docs <= names
