"""The peer monitor's probes: health hysteresis, real command/URL checks, quorum, gateway."""

from __future__ import annotations

import http.server
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eipha.config import HealthCheck
from eipha.monitor import health as health_checks
from eipha.monitor import quorum as quorum_probes
from eipha.monitor.health import Health
from eipha.monitor.quorum import Quorum, QuorumTarget
from eipha.sim import serving


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def command_check(fall: int = 2, rise: int = 3, interval: float = 1.0) -> HealthCheck:
    return HealthCheck(command="true", url=None, interval=interval, fall=fall, rise=rise)


def wait_until(predicate: object, timeout: float = 3.0) -> bool:
    assert callable(predicate)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


# --------------------------------------------------------------------------- health: hysteresis


def test_health_before_the_first_result_is_healthy_but_unknown() -> None:
    health = Health(command_check(), clock=FakeClock())
    assert (health.healthy, health.known, health.transitions) == (True, False, 0)
    assert health.last_detail == "not checked yet"
    assert health.checked_at is None


def test_no_health_check_is_always_healthy_and_starts_nothing() -> None:
    health = Health(None)
    health.start()
    assert (health.healthy, health.known) == (True, True)
    assert health.last_detail == "no health check configured"
    assert not health.check_once()
    health.stop()
    assert not any(t.name == "eipha-health" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        pytest.param("S", "H", id="first-success-healthy"),
        pytest.param("F", "U", id="first-failure-unhealthy-at-once"),
        pytest.param("SF", "HH", id="one-failure-is-not-enough"),
        pytest.param("SFF", "HHU", id="fall-2-needs-two-failures"),
        pytest.param("SFSF", "HHHH", id="a-success-resets-the-fall-count"),
        pytest.param("FSS", "UUU", id="two-successes-are-not-enough"),
        pytest.param("FSSS", "UUUH", id="rise-3-needs-three-successes"),
        pytest.param("FSSFSS", "UUUUUU", id="a-failure-resets-the-rise-count"),
        pytest.param("SFFSSSFF", "HHUUUHHU", id="down-up-down"),
        pytest.param("SFFFFF", "HHUUUU", id="stays-unhealthy"),
        pytest.param("SFSFSFSFSFSFSFSF", "H" * 16, id="flapping-from-healthy-never-turns"),
        pytest.param("FSFSFSFSFSFSFSFS", "U" * 16, id="flapping-from-unhealthy-never-turns"),
    ],
)
def test_health_fall_2_rise_3(results: str, expected: str) -> None:
    health = Health(command_check(fall=2, rise=3), clock=FakeClock())
    seen = ""
    for result in results:
        health.step(result == "S", "exit 0" if result == "S" else "exit 1")
        seen += "H" if health.healthy else "U"
    assert seen == expected
    turns = sum(a != b for a, b in zip("H" + expected, expected, strict=False))
    assert health.transitions == turns
    assert health.known


def test_health_fall_1_rise_1_follows_every_result() -> None:
    health = Health(command_check(fall=1, rise=1), clock=FakeClock())
    for ok in (True, False, True, False):
        assert health.step(ok, "x") == (ok is False or health.transitions > 0)
        assert health.healthy is ok
    assert health.transitions == 3


def test_health_step_says_whether_it_turned_and_records_detail_and_time() -> None:
    clock = FakeClock(5.0)
    health = Health(command_check(fall=2, rise=3), clock=clock)
    assert not health.step(True, "exit 0")
    clock.now = 7.0
    assert not health.step(False, "exit 1")
    assert health.step(False, "timed out after 1 s")
    assert (health.healthy, health.last_detail, health.checked_at) == (
        False,
        "timed out after 1 s",
        7.0,
    )


def test_health_check_once_uses_the_injected_check() -> None:
    results = iter([(False, "HTTP 503"), (True, "HTTP 200")])
    health = Health(command_check(fall=1, rise=1), check=lambda: next(results))
    assert health.check_once()
    assert (health.healthy, health.last_detail) == (False, "HTTP 503")
    assert health.check_once()
    assert (health.healthy, health.last_detail) == (True, "HTTP 200")


def test_a_check_that_raises_is_a_failure_not_a_dead_thread() -> None:
    def check() -> tuple[bool, str]:
        raise RuntimeError("bug")

    health = Health(command_check(fall=1), check=check)
    assert health.check_once()
    assert (health.healthy, health.last_detail) == (False, "probe failed: RuntimeError('bug')")


def test_health_thread_checks_until_stopped() -> None:
    calls: list[float] = []

    def check() -> tuple[bool, str]:
        calls.append(time.monotonic())
        return False, "exit 1"

    health = Health(command_check(interval=0.02, fall=1), check=check)
    health.start()
    health.start()  # idempotent
    assert wait_until(lambda: len(calls) >= 3)
    health.stop()
    count = len(calls)
    time.sleep(0.06)
    assert len(calls) == count
    assert not health.healthy
    assert not any(t.name == "eipha-health" for t in threading.enumerate())


# --------------------------------------------------------------------------- health: real checks


def test_command_true_is_success() -> None:
    assert health_checks.run_command("true", 2) == (True, "exit 0")


def test_command_false_is_failure() -> None:
    assert health_checks.run_command("false", 2) == (False, "exit 1")
    assert health_checks.run_command("exit 7", 2) == (False, "exit 7")


def test_command_killed_by_a_signal() -> None:
    assert health_checks.run_command("kill -TERM $$", 2) == (False, "killed by SIGTERM")


def test_command_gets_no_stdin_and_its_output_goes_nowhere(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert health_checks.run_command("echo out; echo err >&2; read line", 2) == (False, "exit 1")
    assert capfd.readouterr() == ("", "")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # killed; reaping it is its new parent's business


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    began = time.monotonic()
    result = health_checks.run_command(f"sleep 5 & echo $! > {pid_file}; wait", 0.2)
    assert result == (False, "timed out after 0.2 s")
    assert time.monotonic() - began < 1.5
    sleeper = int(pid_file.read_text())
    assert wait_until(lambda: _gone(sleeper), 1.0)


def test_health_runs_a_real_command() -> None:
    spec = HealthCheck(command="exit 3", url=None, interval=1.0, fall=1, rise=1)
    health = Health(spec)
    health.check_once()
    assert (health.healthy, health.last_detail) == (False, "exit 3")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.5)
        status = {"/ok": 200, "/moved": 302, "/bad": 503, "/slow": 200}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = serving.serve_in_thread(server, "probe-web")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    serving.shut_down(server, thread)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ok", (True, "HTTP 200")),
        ("/moved", (True, "HTTP 302")),
        ("/bad", (False, "HTTP 503")),
        ("/missing", (False, "HTTP 404")),
    ],
)
def test_url_check_status(web: str, path: str, expected: tuple[bool, str]) -> None:
    assert health_checks.get_url(web + path, 2) == expected


def test_url_check_goes_direct_not_through_a_proxy(
    web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    assert health_checks.get_url(web + "/ok", 2) == (True, "HTTP 200")


def test_url_check_bad_url_is_a_failure() -> None:
    assert health_checks.get_url("http://127.0.0.1:99999/", 1) == (
        False,
        "bad URL (Port out of range 0-65535)",
    )


def test_https_check_to_a_plain_http_server_is_a_tls_error(web: str) -> None:
    ok, detail = health_checks.get_url(web.replace("http:", "https:") + "/ok", 2)
    assert not ok
    assert detail.startswith("TLS error: "), detail


def test_url_check_closed_port_is_refused() -> None:
    assert health_checks.get_url(f"http://127.0.0.1:{closed_port()}/", 2) == (
        False,
        "connection refused",
    )


def test_url_check_times_out(web: str) -> None:
    assert health_checks.get_url(web + "/slow", 0.2) == (False, "timed out after 0.2 s")


def test_health_runs_a_real_url_check(web: str) -> None:
    spec = HealthCheck(command=None, url=web + "/bad", interval=2.0, fall=2, rise=3)
    health = Health(spec)
    health.check_once()
    assert (health.healthy, health.last_detail) == (False, "HTTP 503")


def test_check_timeout_is_the_interval_up_to_5_s(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    def run_command(_command: str, timeout: float) -> tuple[bool, str]:
        seen.append(timeout)
        return True, "exit 0"

    monkeypatch.setattr(health_checks, "run_command", run_command)
    for interval in (0.5, 5.0, 30.0):
        health_checks.check_of(command_check(interval=interval))()
    assert seen == [0.5, 5.0, 5.0]


# --------------------------------------------------------------------------- quorum: logic


def quorum(targets: list[str], clock: FakeClock, **kwargs: object) -> Quorum:
    return Quorum(targets, interval=1.0, window=3.0, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_quorum_is_not_reached_before_any_answer() -> None:
    q = quorum(["10.0.0.1"], FakeClock())
    assert not q.ok
    assert q.detail == "not probed yet"


def test_quorum_holds_for_the_window_after_an_answer() -> None:
    clock = FakeClock(10.0)
    q = quorum(["10.0.0.1"], clock)
    q.step(True, 10.0, by="10.0.0.1")
    assert q.ok
    assert q.detail == "10.0.0.1 answered 0.0 s ago"
    q.step(False, 11.0, "no answer from 10.0.0.1: no echo reply in 1 s")
    clock.now = 13.0
    assert q.ok  # a failed round does not cancel a recent answer
    assert q.detail == "10.0.0.1 answered 3.0 s ago"
    assert (q.ok_at(13.0), q.ok_at(13.01)) == (True, False)
    clock.now = 13.5
    assert not q.ok_at(clock.now)
    assert q.detail == "no answer from 10.0.0.1: no echo reply in 1 s"
    q.step(True, 14.0, by="10.0.0.1")
    assert q.ok_at(16.9)


def test_quorum_round_stops_at_the_first_answer() -> None:
    asked: list[QuorumTarget] = []

    def probe(target: QuorumTarget) -> tuple[bool, str]:
        asked.append(target)
        return target.port == 443, "connected" if target.port == 443 else "no echo reply in 1 s"

    clock = FakeClock(50.0)
    q = quorum(["10.0.0.1", "10.0.0.2:443", "10.0.0.3"], clock, probe=probe)
    q.probe_once()
    assert asked == [QuorumTarget("10.0.0.1"), QuorumTarget("10.0.0.2", 443)]
    assert q.ok
    assert q.detail == "10.0.0.2:443 answered 0.0 s ago"


def test_quorum_round_with_no_answer_says_why() -> None:
    q = quorum(["10.0.0.1", "10.0.0.2:22"], FakeClock(), probe=lambda t: (False, f"no {t.port}"))
    q.probe_once()
    assert not q.ok
    assert q.detail == "no answer from 10.0.0.1: no None; 10.0.0.2:22: no 22"


ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
DEFAULT = "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
DEFAULT_2 = "eth1\t00000000\t0100000A\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
NO_GATEWAY_FLAG = "wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(ROUTES + DEFAULT, "192.0.2.1", id="default-route"),
        pytest.param(ROUTES, None, id="no-default-route"),
        pytest.param(ROUTES + NO_GATEWAY_FLAG, None, id="default-without-gateway-flag"),
        pytest.param(ROUTES + NO_GATEWAY_FLAG + DEFAULT, "192.0.2.1", id="first-with-gateway"),
        pytest.param(ROUTES + DEFAULT_2 + DEFAULT, "10.0.0.1", id="first-of-two"),
        pytest.param(ROUTES + "junk\n\teth0 zz\n" + DEFAULT, "192.0.2.1", id="junk-skipped"),
        pytest.param("", None, id="empty"),
    ],
)
def test_default_gateway(tmp_path: Path, text: str, expected: str | None) -> None:
    route_file = tmp_path / "route"
    route_file.write_text(text)
    assert quorum_probes.default_gateway(route_file) == expected


def test_default_gateway_without_the_file(tmp_path: Path) -> None:
    assert quorum_probes.default_gateway(tmp_path / "missing") is None


def test_default_gateway_of_this_machine_is_an_address_or_none() -> None:
    found = quorum_probes.default_gateway()
    assert found is None or socket.inet_aton(found)


def test_empty_quorum_probes_the_default_gateway(tmp_path: Path) -> None:
    route_file = tmp_path / "route"
    route_file.write_text(ROUTES + DEFAULT)
    asked: list[QuorumTarget] = []

    def probe(target: QuorumTarget) -> tuple[bool, str]:
        asked.append(target)
        return True, "echo reply"

    q = quorum([], FakeClock(), probe=probe, route_file=route_file)
    q.probe_once()
    assert asked == [QuorumTarget("192.0.2.1")]
    assert q.ok


def test_empty_quorum_without_a_default_route_is_never_reached(tmp_path: Path) -> None:
    route_file = tmp_path / "route"
    route_file.write_text(ROUTES)
    q = quorum(
        [], FakeClock(), probe=lambda t: pytest.fail("nothing to probe"), route_file=route_file
    )
    q.probe_once()
    assert not q.ok
    assert q.detail == "no default route; the quorum cannot be reached"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.1", QuorumTarget("10.0.0.1")), ("10.0.0.1:443", QuorumTarget("10.0.0.1", 443))],
)
def test_target_parse(text: str, expected: QuorumTarget) -> None:
    assert QuorumTarget.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text", ["gateway", "10.0.0", "::1", "10.0.0.1:0", "10.0.0.1:x", "1.2.3.4:"]
)
def test_target_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        QuorumTarget.parse(text)


# --------------------------------------------------------------------------- quorum: real probes


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_tcp_quorum_target_listening_is_reached(listener: int) -> None:
    assert quorum_probes.tcp_connect("127.0.0.1", listener) == (True, "connected")
    q = Quorum([f"127.0.0.1:{listener}"], interval=1.0, window=3.0)
    q.probe_once()
    assert q.ok


def test_tcp_quorum_target_refusing_is_not_reached() -> None:
    port = closed_port()
    assert quorum_probes.tcp_connect("127.0.0.1", port) == (False, "connection refused")
    q = Quorum([f"127.0.0.1:{port}"], interval=1.0, window=3.0)
    q.probe_once()
    assert not q.ok
    assert q.detail == f"no answer from 127.0.0.1:{port}: connection refused"


def test_quorum_thread_probes_until_stopped(listener: int) -> None:
    q = Quorum([f"127.0.0.1:{listener}"], interval=0.02, window=1.0)
    q.start()
    q.start()  # idempotent
    assert wait_until(lambda: q.ok)
    q.stop()
    assert not any(t.name == "eipha-quorum" for t in threading.enumerate())


def test_checksum_rfc_1071_example() -> None:
    assert quorum_probes.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert quorum_probes.checksum(b"\x01") == quorum_probes.checksum(b"\x01\x00")


def test_echo_request_is_well_formed() -> None:
    packet = quorum_probes.echo_request(0x1234, 7, b"hello")
    kind, code, _checksum, ident, seq = struct.unpack("!BBHHH", packet[:8])
    assert (kind, code, ident, seq) == (8, 0, 0x1234, 7)
    assert packet[8:] == b"hello"
    assert quorum_probes.checksum(packet) == 0


def test_echo_reply_matching() -> None:
    reply = bytes([0]) + quorum_probes.echo_request(9, 7, b"hi")[1:]
    assert quorum_probes._is_reply(reply, 9, 7, b"hi")
    assert quorum_probes._is_reply(reply, None, 7, b"hi")  # unprivileged: the kernel sets the id
    assert not quorum_probes._is_reply(reply, 8, 7, b"hi")
    assert not quorum_probes._is_reply(reply, 9, 6, b"hi")
    assert not quorum_probes._is_reply(reply, 9, 7, b"ho")
    request = quorum_probes.echo_request(9, 7, b"hi")
    assert not quorum_probes._is_reply(request, 9, 7, b"hi")  # a request, not a reply
    assert not quorum_probes._is_reply(b"\0\0", 9, 7, b"")


def _can_open_icmp() -> bool:
    try:
        sock, _raw = quorum_probes.open_icmp_socket()
    except OSError:
        return False
    sock.close()
    return True


def test_icmp_echo_to_loopback_is_answered() -> None:
    if not _can_open_icmp():
        assert os.geteuid() != 0, "root can always open a raw ICMP socket"
        pytest.skip("no ICMP socket here (ping_group_range excludes us, no CAP_NET_RAW)")
    assert quorum_probes.icmp_echo("127.0.0.1") == (True, "echo reply")
    q = Quorum(["127.0.0.1"], interval=1.0, window=3.0)
    q.probe_once()
    assert q.ok
    assert q.detail.startswith("127.0.0.1 answered")
