"""The haproxy role alone (tests/ansible/haproxy-only.yml), with every feature its README
shows: the rendered haproxy.cfg passes ``haproxy -c``, says what the variables asked for, and
a second converge changes nothing; bad input fails the play with one line naming the
variable, before haproxy.cfg is written. HAProxy serving real clients with these settings is
tests/system/test_haproxy_features.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.staging import ANSIBLE, INVENTORY, REPO, Converge, converge, isolated
from tests.ansible.tls import make_certificates

pytestmark = pytest.mark.usefixtures("root_only")

PLAYBOOK = str(REPO / "tests" / "ansible" / "haproxy-only.yml")
README = ANSIBLE / "roles" / "haproxy" / "README.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```$", re.S | re.M)


def readme_examples() -> dict[str, Any]:
    """The README's example blocks (those that are not the defaults' own blocks), merged."""
    defaults = yaml.safe_load((ANSIBLE / "roles/haproxy/defaults/main.yml").read_text())
    merged: dict[str, Any] = {}
    for text in FENCE.findall(README.read_text()):
        block = yaml.safe_load(text)
        examples = {k: v for k, v in block.items() if v != defaults.get(k)}
        if examples and len(examples) == len(block):
            merged.update(examples)
    return merged


def inventory(tmp: Path) -> Path:
    """The example inventory, with a `foo` group (the README's backend on port 123)."""
    data = yaml.safe_load(INVENTORY.read_text())
    data["all"]["children"]["foo"] = {"hosts": {"foo-1": {"ansible_host": "10.0.1.21"}}}
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(tmp: Path, extra: dict[str, Any]) -> Converge:
    return converge(
        tmp / "root", "heartbeat", extra, inventory=inventory(tmp), playbook=PLAYBOOK, limit="lb-a"
    )


def cfg(tmp: Path) -> Path:
    return tmp / "root" / "lb-a" / "etc" / "haproxy" / "haproxy.cfg"


@pytest.fixture(scope="module")
def featured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Converge]:
    tmp = tmp_path_factory.mktemp("haproxy-role")
    certs = make_certificates(tmp / "certs", ("www.example.com",), ())
    extra = {
        **readme_examples(),
        "haproxy_tls_certificate": str(certs.server),
        "haproxy_tls_ca_bundle": str(certs.bundle),
        "haproxy_rate_limit_requests": "100",  # a string, as -e gives it
        "haproxy_stats_bind": "*:8404",
        "haproxy_stats_password": "correct-horse",
        "haproxy_health_backends": ["web", "foo"],
    }
    first = run(tmp, extra)
    assert first.returncode == 0, first.output[-3000:]
    assert first.changed()["lb-a"] > 0
    second = run(tmp, extra)
    assert second.returncode == 0, second.output[-3000:]
    return tmp, extra, second


def test_every_readme_example_is_rendered_and_haproxy_accepts_it(featured):
    tmp, extra, second = featured
    assert {"haproxy_backends", "haproxy_routes", "haproxy_resolvers"} <= set(extra)
    assert second.changed() == {"lb-a": 0}, second.output[-3000:]
    checked = isolated(["haproxy", "-c", "-f", str(cfg(tmp))])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARNING" not in checked.stdout + checked.stderr


def test_the_rendered_config_says_what_the_variables_asked(featured):
    tmp, _, _ = featured
    text = cfg(tmp).read_text()
    pem = tmp / "root" / "lb-a" / "etc" / "haproxy" / "certs" / "haproxy.pem"
    for line in (
        f"bind *:443 ssl crt {pem}",
        "http-request redirect scheme https code 301 if !{ ssl_fc }",
        "option forwardfor except 127.0.0.0/8",
        "http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }",
        "use_backend foo if foo_path",
        "use_backend web if api_host",
        "http-request replace-path ^(?:/services/foo/v1)/?(.*)$ /\\1 "
        "if { var(txn.route) -m str foo }",
        "cookie SERVERID insert indirect nocache",
        "server web-1 10.0.1.11:80 check cookie web-1",
        "server foo-1 10.0.1.21:123 check",
        "http-check expect status 200",
        "server-template catalog- 5 _catalog._tcp.service.consul check resolvers consul "
        "resolve-prefer ipv4 init-addr none",
        "stats auth admin:correct-horse",
        "monitor-uri /healthz",
        "monitor fail if { nbsrv(web) lt 1 } || { nbsrv(foo) lt 1 }",
        "option redispatch",
        "retries 3",
    ):
        assert f"    {line}\n" in text, line
    # the certificate, its chain and key in one owner-only file; the config not world-readable
    assert pem.stat().st_mode & 0o777 == 0o600
    assert pem.read_text().count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" in pem.read_text()
    assert cfg(tmp).stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"haproxy_routes": [{"name": "api", "hosts": ["api.example.com"], "backend": "nope"}]},
            "haproxy_routes: route api goes to backend nope, which is not in "
            "haproxy_backends (web)",
        ),
        (
            {
                "haproxy_routes": [
                    {"name": "all", "hosts": [], "path_prefixes": [], "backend": "web"}
                ]
            },
            "haproxy_routes: route all has neither hosts nor path_prefixes (it would match every "
            "request and shadow every later route and the default backend)",
        ),
        (
            {
                "haproxy_routes": [
                    {
                        "name": "x",
                        "hosts": ["x.example.com"],
                        "strip_prefix": True,
                        "backend": "web",
                    }
                ]
            },
            "haproxy_routes: route x has strip_prefix but no path_prefixes",
        ),
        (
            {"haproxy_tls_certificate": "/nonexistent/www.example.com.pem"},
            "haproxy_tls_certificate: /nonexistent/www.example.com.pem is not a file on the "
            "controller",
        ),
        (
            {"haproxy_rate_limit_requests": "ten"},
            "haproxy_rate_limit_requests must be a whole number of requests (0: no limit), not ten",
        ),
        (
            {"haproxy_stats_bind": "*:8404"},
            "haproxy_stats_password is empty; the stats page (haproxy_stats_bind) needs one, from "
            "Ansible Vault",
        ),
        (
            {"haproxy_health_backends": ["api"]},
            "haproxy_default_backend (web) and haproxy_health_backends (api) must name backends of "
            "haproxy_backends (web): the default backend must be one of them",
        ),
        (
            {
                "haproxy_backends": [
                    {
                        "name": "web",
                        "group": "web",
                        "discovery": {"fqdn": "_web._tcp.service.consul", "resolvers": "consul"},
                    }
                ]
            },
            "haproxy_backends: backend web's discovery names resolvers consul, which is not in "
            "haproxy_resolvers (none)",
        ),
    ],
    ids=[
        "unknown-backend",
        "no-condition",
        "strip-nothing",
        "no-certificate",
        "rate-not-a-number",
        "stats-no-password",
        "unknown-health-backend",
        "unknown-resolver",
    ],
)
def test_bad_input_fails_with_one_line_naming_the_variable(
    tmp_path: Path, extra: dict[str, Any], message: str
):
    result = run(tmp_path, extra)
    assert result.returncode != 0
    failed = [ln for ln in result.output.splitlines() if ln.startswith(("fatal:", "failed:"))]
    assert len(failed) == 1, result.output[-3000:]
    assert f'"msg": "{message}"' in failed[0], failed[0]
    assert not cfg(tmp_path).exists()
