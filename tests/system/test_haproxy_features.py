"""What the operators' load balancers do, by the haproxy role's haproxy.cfg, for real: TLS
termination and the redirect to it, the forwarding headers, path routing with the prefix
rewritten away, cookie stickiness, throttling per client, the stats page.

    bridge 10.0.1.0/24: lb 10.0.1.5 (HAProxy), clients 10.0.1.100 and .101,
    web-1 .11 and web-2 .12 (:80, sticky), api-1 .21 (:8080), foo-1 .22 (:123)

The certificate is made here by a CA made here; clients trust that CA only.
"""

from __future__ import annotations

import base64
import http.client
import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eipha.sim.netns import in_netns
from tests.ansible.tls import Certificates, make_certificates
from tests.system.lab import stats, wait_for
from tests.system.test_haproxy_lab import LB, Balancer, balancer

CLIENTS = {"client": "10.0.1.100", "other": "10.0.1.101"}
BACKENDS = {
    "web-1": ("10.0.1.11", 80, "web", False),
    "web-2": ("10.0.1.12", 80, "web", False),
    "api-1": ("10.0.1.21", 8080, "api", False),
    "foo-1": ("10.0.1.22", 123, "foo", False),
}
LIMIT = 200  # requests per client in 10 s
STATS_PASSWORD = "correct-horse"


def settings(certs: Certificates) -> dict[str, Any]:
    return {
        "haproxy_tls_certificate": str(certs.server),
        "haproxy_tls_ca_bundle": str(certs.bundle),
        "haproxy_backends": [
            {"name": "web", "group": "web", "check_path": "/healthz", "sticky": True},
            {"name": "api", "group": "api", "port": 8080, "check_path": "/healthz"},
            {
                "name": "foo",
                "group": "foo",
                "port": 123,
                "check_path": "/status",
                "check_status": "200",
            },
        ],
        "haproxy_routes": [
            {"name": "api", "hosts": ["api.example.com"], "backend": "api"},
            {
                "name": "foo",
                "path_prefixes": ["/services/foo/v1"],
                "strip_prefix": True,
                "backend": "foo",
            },
        ],
        "haproxy_rate_limit_requests": LIMIT,
        "haproxy_stats_bind": "*:8404",
        "haproxy_stats_password": STATS_PASSWORD,
    }


class Client:
    """HTTPS (trusting the test CA only) or HTTP from a client namespace."""

    def __init__(self, lab: Balancer, ca: Path) -> None:
        self.lab, self.ca = lab, ca
        self.context = ssl.create_default_context(cafile=str(ca))

    def get(
        self,
        path: str,
        host: str = "www.example.com",
        who: str = "client",
        tls: bool = True,
        port: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        with in_netns(self.lab.hosts[who].name):
            conn = (
                http.client.HTTPSConnection(LB, port or 443, timeout=5, context=self.context)
                if tls
                else http.client.HTTPConnection(LB, port or 80, timeout=5)
            )
            try:
                conn.request("GET", path, headers={"Host": host, **(headers or {})})
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read().decode()
            finally:
                conn.close()

    def server(self, path: str = "/", headers: dict[str, str] | None = None) -> str:
        status, _, body = self.get(path, headers=headers)
        assert status == 200, (path, status, body)
        return body.split()[0]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    certs = make_certificates(tmp_path_factory.mktemp("tls"), ("www.example.com",), (LB,))
    with balancer(settings(certs), CLIENTS, BACKENDS) as lab:
        wait_for(
            "health checks to pass",
            lambda: set(lab.servers().values()) == {"UP"} and len(lab.servers()) == 4,
            15,
        )
        yield Client(lab, certs.ca)


def test_tls_over_the_lb_address_with_the_forwarding_headers(client: Client):
    """curl trusting only the test CA gets a backend's answer over https, and the backend
    saw the client's address and the scheme."""
    ns = client.lab.hosts["client"]
    got = ns.run(
        ["curl", "-sS", "--cacert", str(client.ca), "-D", "-", "-H", "Host: www.example.com",
         f"https://{LB}/hello"],
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    head, _, body = got.stdout.partition("\n\n")  # text mode: CRLF read as LF
    assert head.startswith("HTTP/1.1 200"), head
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
    assert body.split()[0] in ("web-1", "web-2")
    assert body.split()[1] == "/hello"
    assert headers["x-seen-for"] == CLIENTS["client"]
    assert headers["x-seen-proto"] == "https"
    # a client that does not trust the test CA is refused by curl, as it must be
    untrusted = ns.run(["curl", "-sS", "-o", "/dev/null", f"https://{LB}/"])
    assert untrusted.returncode == 60, untrusted.stderr  # curl: peer certificate cannot be verified


def test_plain_http_is_redirected_to_https(client: Client):
    status, headers, _ = client.get("/a/b?c=d", tls=False)
    assert status == 301
    assert headers["location"] == "https://www.example.com/a/b?c=d"


def test_the_prefix_is_rewritten_away_and_unknown_paths_go_to_the_default(client: Client):
    assert client.get("/services/foo/v1/something")[2] == "foo-1 /something"
    assert client.get("/services/foo/v1/something?x=1")[2] == "foo-1 /something?x=1"
    assert client.get("/services/foo/v1")[2] == "foo-1 /"
    assert client.server("/services/other/thing") in ("web-1", "web-2")
    assert client.get("/", host="api.example.com")[2] == "api-1 /"


def test_a_client_with_the_cookie_stays_on_its_server(client: Client):
    status, headers, body = client.get("/")
    assert status == 200
    first = body.split()[0]
    assert headers["set-cookie"].startswith(f"SERVERID={first};"), headers
    cookie = headers["set-cookie"].split(";")[0]
    assert {client.server("/", headers={"Cookie": cookie}) for _ in range(20)} == {first}
    # without it: round robin
    assert Counter(client.server("/") for _ in range(20)) == Counter({"web-1": 10, "web-2": 10})


def test_a_client_above_the_rate_gets_429_and_another_is_unaffected(client: Client):
    statuses = [client.get("/", who="other")[0] for _ in range(LIMIT + 30)]
    assert statuses[:LIMIT] == [200] * LIMIT
    assert set(statuses[LIMIT:]) == {429}
    assert client.get("/", who="client")[0] == 200


def test_the_stats_page_wants_its_credentials(client: Client):
    status, headers, _ = client.get("/stats", tls=False, port=8404)
    assert status == 401
    assert headers["www-authenticate"] == 'Basic realm="haproxy"'
    wrong = base64.b64encode(b"admin:wrong").decode()
    assert (
        client.get("/stats", tls=False, port=8404, headers={"Authorization": f"Basic {wrong}"})[0]
        == 401
    )
    good = base64.b64encode(f"admin:{STATS_PASSWORD}".encode()).decode()
    status, headers, body = client.get(
        "/stats", tls=False, port=8404, headers={"Authorization": f"Basic {good}"}
    )
    assert status == 200
    assert "Statistics Report" in body
    assert headers["refresh"] == "10"


def test_the_admin_socket_answers(client: Client):
    """The role's stats socket, level admin: a server put in maintenance through it."""
    lab = client.lab

    stats(lab.stats_socket, "disable server web/web-2")
    try:
        assert lab.servers("web")["web-2"] == "MAINT"
        assert {client.server("/") for _ in range(6)} == {"web-1"}
    finally:
        stats(lab.stats_socket, "enable server web/web-2")
    wait_for("web-2 back", lambda: lab.servers("web")["web-2"] == "UP", 15)
