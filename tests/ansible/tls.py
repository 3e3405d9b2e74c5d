"""A test CA and a server certificate it signed, made with the real openssl, for the TLS
tests of the haproxy role (rendering here, real clients in tests/system)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA's certificate: what a client trusts (curl --cacert)
    server: Path  # the server's certificate and key, one PEM (haproxy_tls_certificate)
    bundle: Path  # the chain sent with it (haproxy_tls_ca_bundle)


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def make_certificates(
    directory: Path, names: tuple[str, ...], addresses: tuple[str, ...]
) -> Certificates:
    """A CA, and a certificate for ``names`` and ``addresses`` signed by it (one day)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=eipha test CA",
        "-keyout", "ca.key", "-out", "ca.pem", cwd=directory,
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", "server.key", "-out", "server.csr", cwd=directory,
    )  # fmt: skip
    alt = ",".join([*(f"DNS:{n}" for n in names), *(f"IP:{a}" for a in addresses)])
    (directory / "ext.cnf").write_text(f"subjectAltName={alt}\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.crt", cwd=directory,
    )  # fmt: skip
    server = directory / "server.pem"
    server.write_text(
        (directory / "server.crt").read_text() + (directory / "server.key").read_text()
    )
    return Certificates(directory / "ca.pem", server, directory / "ca.pem")
