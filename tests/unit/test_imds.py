"""The IMDSv2 client against an in-memory transport (no HTTP, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from eipha.clock import Deadline
from eipha.errors import DeadlineExceeded, MetadataError, MetadataNotFound, NotConfigured
from eipha.imds import (
    DEFAULT_ENDPOINT,
    TOKEN_HEADER,
    TOKEN_PATH,
    TTL_HEADER,
    ImdsClient,
    endpoint_from_env,
)
from eipha.local_interface import local_interface, read_mac

MAC0 = "0a:00:00:00:00:01"
MAC1 = "0a:00:00:00:00:02"
MACS = "meta-data/network/interfaces/macs/"

DATA = {
    "meta-data/instance-id": "i-0123456789abcdef0",
    "meta-data/placement/region": "eu-west-1",
    "meta-data/placement/availability-zone": "eu-west-1b",
    "meta-data/mac": MAC0.upper(),
    "meta-data/local-ipv4": "10.0.0.11",
    MACS: f"{MAC0}/\n{MAC1}/\n",
    f"{MACS}{MAC0}/interface-id": "eni-a",
    f"{MACS}{MAC0}/device-number": "0",
    f"{MACS}{MAC0}/local-ipv4s": "10.0.0.11\n10.0.0.12\n",
    f"{MACS}{MAC0}/subnet-ipv4-cidr-block": "10.0.0.0/24",
    f"{MACS}{MAC1}/interface-id": "eni-b",
    f"{MACS}{MAC1}/device-number": "1",
    # The primary (10.0.0.31) is NOT first; the order must not matter.
    f"{MACS}{MAC1}/local-ipv4s": "10.0.0.10\n10.0.0.20\n10.0.0.31\n10.0.0.9\n",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Scripted = int | tuple[int, bytes] | OSError


class FakeTransport:
    """IMDS in memory: tokens, data, and scripted answers per (method, path)."""

    endpoint = "http://imds.test/"

    def __init__(self, data: Mapping[str, str], clock: FakeClock | None = None) -> None:
        self.data = dict(data)
        self.clock = clock
        self.calls: list[tuple[str, str, dict[str, str], float]] = []
        self.scripts: dict[tuple[str, str], list[Scripted]] = {}
        self.tokens: set[str] = set()
        self.issued = 0

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        self.scripts.setdefault((method, path), []).extend(answers)

    def request(
        self, method: str, path: str, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        self.calls.append((method, path, dict(headers), timeout))
        queue = self.scripts.get((method, path))
        if queue:
            return self._scripted(queue.pop(0), timeout)
        if method == "PUT" and path == TOKEN_PATH:
            self.issued += 1
            token = f"token-{self.issued}"
            self.tokens.add(token)
            return 200, token.encode()
        if headers.get(TOKEN_HEADER) not in self.tokens:
            return 401, b""
        item = path.removeprefix("/latest/")
        return (200, self.data[item].encode()) if item in self.data else (404, b"")

    def _scripted(self, answer: Scripted, timeout: float) -> tuple[int, bytes]:
        if isinstance(answer, OSError):
            if self.clock is not None and isinstance(answer, TimeoutError):
                self.clock.now += timeout
            raise answer
        return (answer, b"") if isinstance(answer, int) else answer

    def methods(self, method: str) -> list[str]:
        return [path for m, path, _, _ in self.calls if m == method]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transport(clock: FakeClock) -> FakeTransport:
    return FakeTransport(DATA, clock)


def make_client(transport: FakeTransport, clock: FakeClock, **kwargs: object) -> ImdsClient:
    return ImdsClient(transport, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def client(transport: FakeTransport, clock: FakeClock) -> ImdsClient:
    return make_client(transport, clock)


# -- endpoint --------------------------------------------------------------------------------


def test_endpoint_default_when_unset_or_blank() -> None:
    assert endpoint_from_env({}) == DEFAULT_ENDPOINT
    assert endpoint_from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": ""}) == DEFAULT_ENDPOINT


def test_endpoint_ignores_metadata_disabled() -> None:
    assert endpoint_from_env({"AWS_EC2_METADATA_DISABLED": "true"}) == DEFAULT_ENDPOINT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://localhost/", "http://localhost/"),
        ("http://[::1]:9000/", "http://[::1]:9000/"),
    ],
)
def test_endpoint_from_env(value: str, expected: str) -> None:
    assert endpoint_from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": value}) == expected


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:8080",
        "https://127.0.0.1/",
        "ftp://127.0.0.1/",
        "http://",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:port/",
        "http://127.0.0.1/latest/",
        "http://user@127.0.0.1/",
    ],
)
def test_endpoint_invalid_names_the_variable(value: str) -> None:
    with pytest.raises(MetadataError, match="AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        endpoint_from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": value})


# -- token -----------------------------------------------------------------------------------


def test_token_fetched_once_and_reused(client: ImdsClient, transport: FakeTransport) -> None:
    assert client.instance_id() == "i-0123456789abcdef0"
    assert client.local_ipv4() == "10.0.0.11"
    assert client.region() == "eu-west-1"
    assert transport.methods("PUT") == [TOKEN_PATH]
    put = transport.calls[0]
    assert put[2] == {TTL_HEADER: "300"}
    gets = [call for call in transport.calls if call[0] == "GET"]
    assert len(gets) == 3
    assert all(call[2] == {TOKEN_HEADER: "token-1"} for call in gets)


def test_token_renewed_before_expiry(
    client: ImdsClient, transport: FakeTransport, clock: FakeClock
) -> None:
    client.instance_id()
    clock.now += 269
    client.instance_id()
    assert transport.issued == 1
    clock.now += 2  # 271 s > 300 - 30
    client.instance_id()
    assert transport.issued == 2
    assert transport.calls[-1][2] == {TOKEN_HEADER: "token-2"}


def test_token_ttl_is_sent_and_validated(transport: FakeTransport, clock: FakeClock) -> None:
    make_client(transport, clock, token_ttl=21600).instance_id()
    assert transport.calls[0][2] == {TTL_HEADER: "21600"}
    for bad in (0, 21601):
        with pytest.raises(ValueError, match="token_ttl"):
            make_client(transport, clock, token_ttl=bad)


def test_401_renews_token_and_retries_once(client: ImdsClient, transport: FakeTransport) -> None:
    client.instance_id()
    transport.tokens.clear()  # revoked behind our back
    assert client.instance_id() == "i-0123456789abcdef0"
    assert [(m, p) for m, p, _, _ in transport.calls][2:] == [
        ("GET", "/latest/meta-data/instance-id"),
        ("PUT", TOKEN_PATH),
        ("GET", "/latest/meta-data/instance-id"),
    ]
    assert transport.calls[-1][2] == {TOKEN_HEADER: "token-2"}


def test_401_twice_is_an_error(client: ImdsClient, transport: FakeTransport) -> None:
    transport.script("GET", "/latest/meta-data/instance-id", 401, 401)
    with pytest.raises(MetadataError, match="HTTP 401") as info:
        client.instance_id()
    assert "meta-data/instance-id" in str(info.value)
    assert transport.issued == 2


@pytest.mark.parametrize("status", [403, 404, 405, 501])
def test_imdsv1_only_is_refused_without_any_get(
    client: ImdsClient, transport: FakeTransport, status: int
) -> None:
    transport.script("PUT", TOKEN_PATH, status)
    with pytest.raises(MetadataError, match="IMDSv2") as info:
        client.instance_id()
    assert f"HTTP {status} from http://imds.test/latest/api/token" in str(info.value)
    assert "IMDSv1" in str(info.value)
    assert transport.methods("GET") == []
    assert len(transport.calls) == 1  # a refusal is not retried


def test_token_put_silence_names_endpoint_and_hop_limit(
    client: ImdsClient, transport: FakeTransport
) -> None:
    transport.script("PUT", TOKEN_PATH, TimeoutError(), TimeoutError(), TimeoutError())
    with pytest.raises(MetadataError, match=r"did not answer at http://imds\.test/") as info:
        client.instance_id()
    assert "hop limit" in str(info.value)
    assert transport.methods("PUT") == [TOKEN_PATH] * 3
    assert transport.methods("GET") == []


@pytest.mark.parametrize(("status", "why"), [(400, "HTTP 400"), (200, "empty token")])
def test_token_put_other_failures(
    client: ImdsClient, transport: FakeTransport, status: int, why: str
) -> None:
    transport.script("PUT", TOKEN_PATH, status)
    with pytest.raises(MetadataError, match=why):
        client.instance_id()
    assert transport.methods("GET") == []


# -- errors and retries ----------------------------------------------------------------------


def test_404_raises_not_found_and_optional_is_none(client: ImdsClient) -> None:
    with pytest.raises(MetadataNotFound, match="meta-data/nothing not found"):
        client.get("meta-data/nothing")
    assert client.get_optional("meta-data/nothing") is None
    assert client.get_optional("meta-data/instance-id") == "i-0123456789abcdef0"


def test_get_optional_raises_on_other_errors(client: ImdsClient, transport: FakeTransport) -> None:
    transport.script("GET", "/latest/meta-data/x", 403)
    with pytest.raises(MetadataError, match="HTTP 403") as info:
        client.get_optional("meta-data/x")
    assert not isinstance(info.value, MetadataNotFound)


@pytest.mark.parametrize(
    "error", [TimeoutError(), ConnectionRefusedError(111, "refused"), OSError()]
)
def test_network_errors_retried_then_error(
    client: ImdsClient, transport: FakeTransport, clock: FakeClock, error: OSError
) -> None:
    client.instance_id()
    transport.script("GET", "/latest/meta-data/local-ipv4", error, error, error)
    with pytest.raises(MetadataError, match="meta-data/local-ipv4 could not be read") as info:
        client.local_ipv4()
    assert "no answer from http://imds.test/" in str(info.value)
    assert transport.methods("GET").count("/latest/meta-data/local-ipv4") == 3
    assert len(clock.sleeps) == 2
    assert 0.05 <= clock.sleeps[0] <= 0.1
    assert 0.1 <= clock.sleeps[1] <= 0.2


def test_network_error_then_success(client: ImdsClient, transport: FakeTransport) -> None:
    transport.script("GET", "/latest/meta-data/local-ipv4", TimeoutError())
    assert client.local_ipv4() == "10.0.0.11"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_retried(client: ImdsClient, transport: FakeTransport, status: int) -> None:
    transport.script("GET", "/latest/meta-data/instance-id", status, status)
    assert client.instance_id() == "i-0123456789abcdef0"
    assert transport.methods("GET").count("/latest/meta-data/instance-id") == 3


def test_server_errors_exhausted(client: ImdsClient, transport: FakeTransport) -> None:
    transport.script("GET", "/latest/meta-data/instance-id", 500, 500, 500)
    with pytest.raises(MetadataError, match=r"HTTP 500 from http://imds\.test/latest/meta-data"):
        client.instance_id()


def test_token_put_5xx_retried(client: ImdsClient, transport: FakeTransport) -> None:
    transport.script("PUT", TOKEN_PATH, 503, TimeoutError())
    assert client.instance_id() == "i-0123456789abcdef0"
    assert len(transport.methods("PUT")) == 3


def test_empty_value_is_an_error_not_an_answer(
    client: ImdsClient, transport: FakeTransport
) -> None:
    transport.data["meta-data/instance-id"] = "\n"
    with pytest.raises(MetadataError, match="empty"):
        client.instance_id()


# -- deadline --------------------------------------------------------------------------------


def test_request_timeout_capped_by_deadline(transport: FakeTransport, clock: FakeClock) -> None:
    deadline = Deadline(0.3, clock=clock)
    make_client(transport, clock, deadline=deadline, timeout=1.0).instance_id()
    assert [call[3] for call in transport.calls] == pytest.approx([0.3, 0.3])


def test_deadline_stops_retries(transport: FakeTransport, clock: FakeClock) -> None:
    deadline = Deadline(1.5, clock=clock)
    client = make_client(transport, clock, deadline=deadline, timeout=1.0, attempts=10)
    transport.script("PUT", TOKEN_PATH, *[TimeoutError() for _ in range(10)])
    with pytest.raises(DeadlineExceeded, match="reading instance metadata") as info:
        client.instance_id()
    # the reason the retries were needed is not lost
    assert "last try: PUT http://imds.test/latest/api/token: timed out" in str(info.value)
    assert len(transport.calls) == 2  # 1.0 s, then what is left of 1.5 s
    assert transport.calls[1][3] <= 0.5
    assert clock.now - 1000.0 == pytest.approx(1.5)


def test_expired_deadline_sends_nothing(transport: FakeTransport, clock: FakeClock) -> None:
    deadline = Deadline(1.0, clock=clock)
    clock.now += 2
    with pytest.raises(DeadlineExceeded):
        make_client(transport, clock, deadline=deadline).instance_id()
    assert transport.calls == []


# -- typed reads -----------------------------------------------------------------------------


def test_identity_reads(client: ImdsClient) -> None:
    assert client.mac() == MAC0
    assert client.macs() == (MAC0, MAC1)
    assert client.get_lines(MACS) == (f"{MAC0}/", f"{MAC1}/")


def test_region_falls_back_to_availability_zone(
    client: ImdsClient, transport: FakeTransport
) -> None:
    del transport.data["meta-data/placement/region"]
    assert client.region() == "eu-west-1"


def test_device0_interface(client: ImdsClient) -> None:
    eni = client.interface(MAC0.upper())
    assert eni.eni_id == "eni-a"
    assert eni.mac == MAC0
    assert eni.primary_ip == "10.0.0.11"
    assert eni.secondary_ips == ("10.0.0.12",)
    assert eni.device_number == 0
    assert eni.subnet_cidr == "10.0.0.0/24"


def test_a_binding_needs_only_the_eni_id_and_with_secondaries_its_private_ips(
    client: ImdsClient, transport: FakeTransport
) -> None:
    brief = client.interface(MAC0, "10.0.0.11", details=False, secondaries=False)
    assert (brief.eni_id, brief.primary_ip, brief.secondary_ips) == ("eni-a", "10.0.0.11", ())
    assert not brief.secondaries_known
    with_ips = client.interface(MAC0, "10.0.0.11", details=False)
    assert with_ips.secondary_ips == ("10.0.0.12",)
    assert with_ips.secondaries_known
    completed = client.with_secondaries(brief)
    assert completed == with_ips
    read = [call[1].split("/")[-1] for call in transport.calls if call[0] == "GET"]
    assert read == ["interface-id", "interface-id", "local-ipv4s", "local-ipv4s"]


def test_primary_not_first_secondaries_sorted_numerically(client: ImdsClient) -> None:
    eni = client.interface(MAC1, "10.0.0.31")
    assert eni.primary_ip == "10.0.0.31"
    assert eni.secondary_ips == ("10.0.0.9", "10.0.0.10", "10.0.0.20")
    assert eni.device_number == 1
    assert eni.subnet_cidr is None


def test_first_line_is_not_taken_as_primary(client: ImdsClient) -> None:
    eni = client.interface(MAC1, "10.0.0.9")
    assert eni.secondary_ips == ("10.0.0.10", "10.0.0.20", "10.0.0.31")


def test_primary_missing_from_local_ipv4s(client: ImdsClient) -> None:
    with pytest.raises(MetadataError, match="inconsistent") as info:
        client.interface(MAC1, "10.0.0.99")
    assert "10.0.0.99" in str(info.value)


def test_empty_local_ipv4s_is_an_error(client: ImdsClient, transport: FakeTransport) -> None:
    transport.data[f"{MACS}{MAC0}/local-ipv4s"] = ""
    with pytest.raises(MetadataError, match="inconsistent"):
        client.interface(MAC0)


def test_local_ipv4s_error_is_not_an_empty_list(
    client: ImdsClient, transport: FakeTransport
) -> None:
    transport.script("GET", f"/latest/{MACS}{MAC0}/local-ipv4s", 500, 500, 500)
    with pytest.raises(MetadataError, match="HTTP 500"):
        client.interface(MAC0)


def test_bad_device_number(client: ImdsClient, transport: FakeTransport) -> None:
    transport.data[f"{MACS}{MAC1}/device-number"] = "one"
    with pytest.raises(MetadataError, match="device-number"):
        client.interface(MAC1, "10.0.0.31")


def test_primary_needed_for_non_device0(client: ImdsClient) -> None:
    with pytest.raises(ValueError, match="primary IP"):
        client.interface(MAC1)


def test_nothing_is_cached_but_the_token(client: ImdsClient, transport: FakeTransport) -> None:
    assert client.interface(MAC0).secondary_ips == ("10.0.0.12",)
    transport.data[f"{MACS}{MAC0}/local-ipv4s"] = "10.0.0.11\n10.0.0.13\n10.0.0.12"
    assert client.interface(MAC0).secondary_ips == ("10.0.0.12", "10.0.0.13")
    assert transport.issued == 1


# -- local interfaces ------------------------------------------------------------------------


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    for name, mac in (("eth0", MAC0.upper()), ("ens6", MAC1), ("ens7", "0a:00:00:00:00:99")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "address").write_text(mac + "\n")
    return tmp_path


def test_read_mac(sysfs: Path) -> None:
    assert read_mac("eth0", sysfs) == MAC0
    assert read_mac("ens6", sysfs) == MAC1
    assert read_mac("eth9", sysfs) is None
    assert read_mac("../eth0", sysfs) is None
    assert read_mac("", sysfs) is None


def test_local_interface_default_is_device0(client: ImdsClient, sysfs: Path) -> None:
    eni = local_interface(client, None, sysfs=sysfs)
    assert (eni.eni_id, eni.primary_ip, eni.secondary_ips) == ("eni-a", "10.0.0.11", ("10.0.0.12",))


def test_local_interface_device0_by_name(client: ImdsClient, sysfs: Path) -> None:
    def never(eni_id: str) -> str:
        raise AssertionError(eni_id)

    eni = local_interface(client, "eth0", primary_ip_for=never, sysfs=sysfs)
    assert (eni.eni_id, eni.primary_ip) == ("eni-a", "10.0.0.11")


def test_local_interface_other_eni_asks_for_primary(client: ImdsClient, sysfs: Path) -> None:
    asked: list[str] = []

    def primary_ip_for(eni_id: str) -> str:
        asked.append(eni_id)
        return "10.0.0.31"

    eni = local_interface(client, "ens6", primary_ip_for=primary_ip_for, sysfs=sysfs)
    assert asked == ["eni-b"]
    assert eni.eni_id == "eni-b"
    assert eni.primary_ip == "10.0.0.31"
    assert eni.secondary_ips == ("10.0.0.9", "10.0.0.10", "10.0.0.20")


def test_local_interface_absent(client: ImdsClient, sysfs: Path) -> None:
    with pytest.raises(NotConfigured, match="interface eth9 not found"):
        local_interface(client, "eth9", sysfs=sysfs)


def test_local_interface_unknown_to_imds(client: ImdsClient, sysfs: Path) -> None:
    with pytest.raises(NotConfigured, match="no ENI known to the instance metadata") as info:
        local_interface(client, "ens7", primary_ip_for=lambda eni: "10.0.0.1", sysfs=sysfs)
    assert not isinstance(info.value, MetadataError)


def test_local_interface_other_eni_needs_primary_ip_for(client: ImdsClient, sysfs: Path) -> None:
    with pytest.raises(ValueError, match="primary_ip_for"):
        local_interface(client, "ens6", sysfs=sysfs)
