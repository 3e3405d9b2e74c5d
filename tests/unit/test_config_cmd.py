"""``eipha config check [FILE]`` in-process: which file it reads, what it prints, its exit code,
and that it never touches the network (Ansible runs it as ``validate: eipha config check %s``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from eipha.cli import main
from eipha.config import locate

A1 = "eipalloc-0123456789abcdef0"
A2 = "eipalloc-0fedcba9876543210"
A3 = "eipalloc-0aaaaaaaaaaaaaaa3"

VALID = f"""\
node_name: lb-a
timeout: 20
nodes:
  lb-a: {{instance_id: i-0aaaaaaaaaaaaaaaa, address: 10.0.0.11}}
  lb-b: {{instance_id: i-0bbbbbbbbbbbbbbbb, address: 10.0.0.21}}
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b}}
"""

NO_NODES = f"""\
eips:
  web-a: {{allocation_id: {A1}, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b}}
  web-c: {{allocation_id: {A3}, home: lb-b, private_ips: {{lb-a: 10.0.0.13, lb-b: 10.0.0.23}}}}
"""

# exactly three problems: a timeout out of range, a malformed id, an unknown key
THREE_PROBLEMS = f"""\
timeout: 0
eips:
  web-a: {{allocation_id: eipalloc-xyz, home: lb-a}}
  web-b: {{allocation_id: {A2}, home: lb-b, colour: red}}
"""
PROBLEMS = (
    "timeout: must be > 0",
    "eips.web-a.allocation_id: 'eipalloc-xyz' is not an allocation id",
    "eips.web-b.colour: unknown key 'colour'",
)


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any attempt to open a connection fails the test: at teardown, and through the exit
    code, since main() turns the exception into an error exit."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise NetworkUsed(f"config check opened a connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("EIPHA_CONFIG", raising=False)
    yield attempts
    assert attempts == []


@pytest.fixture
def default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point eipha's default config path into the test's own directory."""
    path = tmp_path / "etc" / "eipha.yaml"
    monkeypatch.setattr(locate, "DEFAULT_PATH", str(path))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("eipha: error: ")]


def test_valid_file_says_what_it_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(tmp_path / "eipha.yaml", VALID)
    assert main(["config", "check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{path}: valid (2 EIPs, 2 nodes)\n"
    assert error_lines(captured.err) == []


def test_counts_eips_and_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write(tmp_path / "three.yaml", NO_NODES)
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid (3 EIPs, 0 nodes)\n"


def test_every_problem_is_printed_with_the_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write(tmp_path / "bad.yaml", THREE_PROBLEMS)
    assert main(["config", "check", str(path)]) == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    [error] = error_lines(captured.err)
    assert str(path) in error
    assert "3 problems" in error
    problems = [line for line in captured.err.splitlines() if not line.startswith("eipha: ")]
    assert len(problems) == 3, captured.err
    for line, expected in zip(problems, PROBLEMS, strict=True):
        assert line.startswith(f"{path}: {expected}"), line


def test_missing_explicit_file_is_not_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "nowhere" / "eipha.yaml"
    assert main(["config", "check", str(path)]) == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    [error] = error_lines(captured.err)
    assert f"{path} not found" in error


def test_a_directory_is_not_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["config", "check", str(tmp_path)]) == 6
    [error] = error_lines(capsys.readouterr().err)
    assert str(tmp_path) in error


def test_global_config_option_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    good = write(tmp_path / "good.yaml", VALID)
    bad = write(tmp_path / "bad.yaml", THREE_PROBLEMS)
    assert main(["--config", str(good), "config", "check"]) == 0
    assert capsys.readouterr().out == f"{good}: valid (2 EIPs, 2 nodes)\n"
    assert main(["--config", str(bad), "config", "check"]) == 6
    assert str(bad) in error_lines(capsys.readouterr().err)[0]


def test_eipha_config_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    good = write(tmp_path / "env.yaml", VALID)
    monkeypatch.setenv("EIPHA_CONFIG", str(good))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out == f"{good}: valid (2 EIPs, 2 nodes)\n"
    monkeypatch.setenv("EIPHA_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["config", "check"]) == 6
    assert "missing.yaml not found" in error_lines(capsys.readouterr().err)[0]


def test_file_argument_beats_config_option_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    good = write(tmp_path / "good.yaml", VALID)
    bad = write(tmp_path / "bad.yaml", THREE_PROBLEMS)
    monkeypatch.setenv("EIPHA_CONFIG", str(bad))
    assert main(["--config", str(bad), "config", "check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: valid (2 EIPs, 2 nodes)\n"


def test_config_option_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    good = write(tmp_path / "good.yaml", VALID)
    monkeypatch.setenv("EIPHA_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["--config", str(good), "config", "check"]) == 0
    assert capsys.readouterr().out == f"{good}: valid (2 EIPs, 2 nodes)\n"


def test_default_file_is_checked_when_nothing_is_named(
    default_path: Path, capsys: pytest.CaptureFixture[str]
):
    # a missing default file means "no config" to the other commands, but there is
    # nothing to check: config check says so
    assert main(["config", "check"]) == 6
    assert f"{default_path} not found" in error_lines(capsys.readouterr().err)[0]
    write(default_path, VALID)
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out == f"{default_path}: valid (2 EIPs, 2 nodes)\n"


def test_no_network_even_with_an_endpoint_pointing_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_network: list[object],
):
    # the root conftest points AWS_ENDPOINT_URL_EC2 and IMDS at a closed loopback port; make
    # the endpoint something that could not even resolve, and remove the region
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://no-such-host.invalid:1")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://no-such-host.invalid:1/")
    path = write(tmp_path / "eipha.yaml", VALID)
    assert main(["-vv", "config", "check", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid (2 EIPs, 2 nodes)\n"
    assert no_network == []
