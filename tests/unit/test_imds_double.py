"""The real IMDSv2 client over HTTP against the IMDSv2 double, on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from eipha.errors import MetadataError, MetadataNotFound
from eipha.imds import (
    TOKEN_HEADER,
    TOKEN_PATH,
    TTL_HEADER,
    HttpTransport,
    ImdsClient,
)
from eipha.local_interface import local_interface
from eipha.sim.imds_double import SILENT, TOKEN_ITEM, ImdsDouble, listing, node_metadata

MAC0 = "0a:00:00:00:00:01"
MAC1 = "0a:00:00:00:00:02"
MACS = "meta-data/network/interfaces/macs/"
NODE = node_metadata(
    "i-0aaaaaaaaaaaaaaa1",
    "eu-west-1",
    "eu-west-1a",
    [
        (MAC0, "eni-a", 0, "10.0.0.11", ["10.0.0.12"], "10.0.0.0/24"),
        (MAC1, "eni-b", 1, "10.0.1.11", ["10.0.1.13", "10.0.1.12"], None),
    ],
)

MakeDouble = Callable[..., ImdsDouble]


@pytest.fixture
def make_double() -> Iterator[MakeDouble]:
    started: list[ImdsDouble] = []

    def make(data: dict[str, str] | None = None, **kwargs: object) -> ImdsDouble:
        double = ImdsDouble(NODE if data is None else data, **kwargs)  # type: ignore[arg-type]
        started.append(double)
        return double.start()

    yield make
    for double in started:
        double.stop()


@pytest.fixture
def double(make_double: MakeDouble) -> ImdsDouble:
    return make_double()


def client_for(double: ImdsDouble, **kwargs: object) -> ImdsClient:
    assert double.endpoint.startswith("http://127.0.0.1:")
    return ImdsClient(HttpTransport(double.endpoint), **kwargs)  # type: ignore[arg-type]


def raw(double: ImdsDouble, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(double.endpoint)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def token(double: ImdsDouble) -> str:
    status, body = raw(double, "PUT", TOKEN_PATH, {TTL_HEADER: "60"})
    assert status == 200
    return body


def test_full_identity_read(double: ImdsDouble, tmp_path: Path) -> None:
    imds = client_for(double)
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"
    assert imds.region() == "eu-west-1"
    assert imds.mac() == MAC0
    assert imds.local_ipv4() == "10.0.0.11"
    assert imds.macs() == (MAC0, MAC1)
    eni = local_interface(imds, None)
    assert (eni.eni_id, eni.primary_ip, eni.secondary_ips) == ("eni-a", "10.0.0.11", ("10.0.0.12",))
    assert eni.subnet_cidr == "10.0.0.0/24"
    (tmp_path / "ens6").mkdir()
    (tmp_path / "ens6" / "address").write_text(MAC1 + "\n")
    other = local_interface(imds, "ens6", primary_ip_for=lambda _: "10.0.1.11", sysfs=tmp_path)
    assert other.eni_id == "eni-b"
    assert other.secondary_ips == ("10.0.1.12", "10.0.1.13")
    assert [r for r in double.requests if r[0] == "PUT"] == [("PUT", TOKEN_PATH, 200)]


def test_token_renewed_after_expire_tokens(double: ImdsDouble) -> None:
    imds = client_for(double)
    imds.instance_id()
    double.expire_tokens()
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"
    path = "/latest/meta-data/instance-id"
    assert double.requests == [
        ("PUT", TOKEN_PATH, 200),
        ("GET", path, 200),
        ("GET", path, 401),
        ("PUT", TOKEN_PATH, 200),
        ("GET", path, 200),
    ]


@pytest.mark.parametrize("status", [403, 404])
def test_imdsv1_only_refused(make_double: MakeDouble, status: int) -> None:
    double = make_double(imdsv1_only=True, refuse_status=status)
    with pytest.raises(MetadataError, match="IMDSv2") as info:
        client_for(double).instance_id()
    assert f"HTTP {status} from {double.endpoint}latest/api/token" in str(info.value)
    assert [r[0] for r in double.requests] == ["PUT"]
    # The double does serve v1 reads, so "no GET" above is the client's doing.
    assert raw(double, "GET", "/latest/meta-data/instance-id", {})[0] == 200


def test_imdsv1_only_answers_the_token_put_as_a_missing_item(make_double: MakeDouble) -> None:
    double = make_double(imdsv1_only=True)  # the default: no token item at all (anchors D4)
    assert raw(double, "PUT", TOKEN_PATH, {TTL_HEADER: "60"})[0] == 404


def test_token_uses_expires_a_token_mid_run(double: ImdsDouble) -> None:
    double.token_uses = 2
    imds = client_for(double)
    assert [imds.instance_id(), imds.mac(), imds.local_ipv4()] == [
        "i-0aaaaaaaaaaaaaaa1",
        MAC0,
        "10.0.0.11",
    ]
    assert double.requests == [
        ("PUT", TOKEN_PATH, 200),
        ("GET", "/latest/meta-data/instance-id", 200),
        ("GET", "/latest/meta-data/mac", 200),
        ("GET", "/latest/meta-data/local-ipv4", 401),  # a token valid a moment ago
        ("PUT", TOKEN_PATH, 200),
        ("GET", "/latest/meta-data/local-ipv4", 200),
    ]


def test_token_uses_zero_refuses_every_token(double: ImdsDouble) -> None:
    double.token_uses = 0
    with pytest.raises(MetadataError, match="HTTP 401"):
        client_for(double).instance_id()
    assert [r[2] for r in double.requests] == [200, 401, 200, 401]


def test_fail_next_on_one_path_leaves_the_others_alone(double: ImdsDouble) -> None:
    double.fail_next(2, 503, path="meta-data/mac")
    imds = client_for(double, attempts=1)
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"
    with pytest.raises(MetadataError, match="HTTP 503"):
        imds.mac()
    assert client_for(double, backoff=0.01).mac() == MAC0  # the second failure, then through
    assert [r[2] for r in double.requests if r[1].endswith("/mac")] == [503, 503, 200]


def test_fail_next_on_the_token_put(double: ImdsDouble) -> None:
    double.fail_next(1, 500, path=TOKEN_ITEM)
    assert client_for(double, backoff=0.01).instance_id() == "i-0aaaaaaaaaaaaaaa1"
    assert double.requests[:2] == [("PUT", TOKEN_PATH, 500), ("PUT", TOKEN_PATH, 200)]


def test_silent_fault_times_out_then_recovers(double: ImdsDouble) -> None:
    double.fail_next(1, SILENT, path="meta-data/instance-id")
    imds = client_for(double, timeout=0.2, backoff=0.01)
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"
    path = "/latest/meta-data/instance-id"
    assert double.requests[1:] == [("GET", path, SILENT), ("GET", path, 200)]


@pytest.mark.parametrize(("status", "match"), [(500, "HTTP 500"), (SILENT, "no answer")])
def test_path_status_fails_one_path_for_good(double: ImdsDouble, status: int, match: str) -> None:
    double.path_status["meta-data/local-ipv4"] = status
    imds = client_for(double, timeout=0.2, attempts=2, backoff=0.01)
    assert imds.mac() == MAC0
    for _ in range(2):
        with pytest.raises(MetadataError, match=match):
            imds.local_ipv4()
    del double.path_status["meta-data/local-ipv4"]
    assert imds.local_ipv4() == "10.0.0.11"


def test_silent_put_fails_within_bounded_time(make_double: MakeDouble) -> None:
    double = make_double(silent_put=True)
    imds = client_for(double, timeout=0.2, attempts=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="did not answer") as info:
        imds.instance_id()
    assert time.monotonic() - started < 2.0
    assert "hop limit" in str(info.value)
    assert double.requests == [("PUT", TOKEN_PATH, 0), ("PUT", TOKEN_PATH, 0)]


def test_fail_next_recovered(double: ImdsDouble) -> None:
    double.fail_next(2, 500)
    imds = client_for(double, backoff=0.01)
    began = time.monotonic()
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"
    assert [r[2] for r in double.requests] == [500, 500, 200, 200]
    assert len(double.arrivals) == 4
    assert began <= double.arrivals[0] <= double.arrivals[-1] <= time.monotonic()
    assert double.arrivals == sorted(double.arrivals)


def test_fail_next_exhausts_retries(double: ImdsDouble) -> None:
    imds = client_for(double, backoff=0.01)
    imds.instance_id()
    double.fail_next(3, 503)
    with pytest.raises(MetadataError, match="HTTP 503"):
        imds.local_ipv4()


def test_directory_listings(double: ImdsDouble) -> None:
    imds = client_for(double)
    assert imds.get_lines(MACS) == (f"{MAC0}/", f"{MAC1}/")
    assert imds.get_lines(MACS.rstrip("/")) == (f"{MAC0}/", f"{MAC1}/")
    assert "network/" in imds.get_lines("meta-data/")
    assert "placement/" in imds.get_lines("meta-data")
    assert imds.get_lines(f"{MACS}{MAC1}/") == (
        "device-number",
        "interface-id",
        "local-ipv4s",
        "mac",
    )


def test_not_found_and_missing(double: ImdsDouble) -> None:
    imds = client_for(double)
    double.not_found.add("meta-data/placement/region")
    assert imds.region() == "eu-west-1"  # from the availability zone
    with pytest.raises(MetadataNotFound):
        imds.get("meta-data/no-such-thing")
    assert imds.get_optional("meta-data/no-such-thing/") is None


def test_update_replaces_data(double: ImdsDouble) -> None:
    imds = client_for(double)
    assert imds.interface(MAC0).secondary_ips == ("10.0.0.12",)
    data = dict(NODE)
    data[f"{MACS}{MAC0}/local-ipv4s"] = "10.0.0.11\n10.0.0.12\n10.0.0.13"
    double.update(data)
    assert imds.interface(MAC0).secondary_ips == ("10.0.0.12", "10.0.0.13")


def test_delay(make_double: MakeDouble) -> None:
    slow = make_double(delay=0.3)
    with pytest.raises(MetadataError, match="did not answer"):
        client_for(slow, timeout=0.1, attempts=1).instance_id()
    slow.delay = 0.05
    assert client_for(slow, timeout=1.0).instance_id() == "i-0aaaaaaaaaaaaaaa1"


def test_put_with_x_forwarded_for_is_forbidden(double: ImdsDouble) -> None:
    headers = {TTL_HEADER: "60", "X-Forwarded-For": "10.9.9.9"}
    assert raw(double, "PUT", TOKEN_PATH, headers)[0] == 403


@pytest.mark.parametrize("ttl", ["0", "21601", "abc", None])
def test_put_with_bad_ttl_is_400(double: ImdsDouble, ttl: str | None) -> None:
    headers = {} if ttl is None else {TTL_HEADER: ttl}
    assert raw(double, "PUT", TOKEN_PATH, headers)[0] == 400


def test_put_elsewhere_is_forbidden(double: ImdsDouble) -> None:
    assert raw(double, "PUT", "/2021-01-03/api/token", {TTL_HEADER: "60"})[0] == 403


def test_get_needs_a_valid_token(double: ImdsDouble) -> None:
    path = "/latest/meta-data/instance-id"
    assert raw(double, "GET", path, {})[0] == 401
    assert raw(double, "GET", path, {TOKEN_HEADER: "forged"})[0] == 401
    assert raw(double, "GET", path, {TOKEN_HEADER: token(double)}) == (200, "i-0aaaaaaaaaaaaaaa1")


def test_tokens_expire_after_their_ttl() -> None:
    now = [0.0]
    double = ImdsDouble(NODE, clock=lambda: now[0])
    headers = {TTL_HEADER: "60"}
    status, issued, _ = double.answer("PUT", TOKEN_PATH, headers) or (0, "", {})
    assert status == 200
    get = {TOKEN_HEADER.lower(): issued}
    assert double.answer("GET", "/latest/meta-data/mac", get) == (200, MAC0, {})
    now[0] = 60.0
    assert double.answer("GET", "/latest/meta-data/mac", get) == (401, "", {})


def test_node_metadata_shape() -> None:
    assert NODE["meta-data/mac"] == MAC0
    assert NODE["meta-data/local-ipv4"] == "10.0.0.11"
    assert NODE[f"{MACS}{MAC1}/local-ipv4s"] == "10.0.1.11\n10.0.1.13\n10.0.1.12"
    assert f"{MACS}{MAC1}/subnet-ipv4-cidr-block" not in NODE
    with pytest.raises(ValueError, match="device number 0"):
        node_metadata("i-1", "r", "ra", [(MAC1, "eni-b", 1, "10.0.1.11", [], None)])


def test_listing() -> None:
    data = {"a/b": "1", "a/c/d": "2", "e": "3"}
    assert listing(data, "") == ["a/", "e"]
    assert listing(data, "a/") == ["b", "c/"]
    assert listing(data, "x/") is None


def test_life_cycle() -> None:
    double = ImdsDouble(NODE)
    with pytest.raises(RuntimeError):
        _ = double.endpoint
    with double:
        assert double.endpoint.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError):
            double.start()
    double.stop()  # twice is fine
    with pytest.raises(RuntimeError):
        _ = double.endpoint


def test_from_env_uses_the_endpoint_variable(double: ImdsDouble) -> None:
    imds = ImdsClient.from_env({"AWS_EC2_METADATA_SERVICE_ENDPOINT": double.endpoint})
    assert imds.endpoint == double.endpoint
    assert imds.instance_id() == "i-0aaaaaaaaaaaaaaa1"


def test_nothing_listening_is_an_error() -> None:
    with socket.socket() as sock:  # a loopback port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    imds = ImdsClient(HttpTransport(f"http://127.0.0.1:{port}/"), attempts=2, backoff=0.01)
    with pytest.raises(MetadataError, match="did not answer"):
        imds.instance_id()
