"""Safety first: every test runs with fake AWS credentials, no IMDS for botocore, and eipha's
own IMDS client pointed at a closed loopback port unless a test gives it a double. Nothing can
reach 169.254.169.254 or a real AWS endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    # port 9 (discard) on loopback: refused at once, never the link-local address
    "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/",
    "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:9",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "NO_PROXY": "127.0.0.1,localhost",
}
UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "EIPHA_CONFIG",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@pytest.fixture(autouse=True, scope="session")
def safe_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in SAFE_ENV.items():
            mp.setenv(key, value)
        for key in UNSET:
            mp.delenv(key, raising=False)
        mp.setenv("EIPHA_RUN_DIR", str(tmp_path_factory.mktemp("run")))
        yield


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private run directory (locks) for one test."""
    monkeypatch.setenv("EIPHA_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def root_only(request: pytest.FixtureRequest) -> None:
    """Skip a test that needs root (network namespaces, root-owned files, another user)
    when not root; under CI, which runs as root, that is a failure instead."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{request.node.nodeid} needs root, and CI runs as root")
        pytest.skip("needs root (network namespaces, root-owned files, another user)")
