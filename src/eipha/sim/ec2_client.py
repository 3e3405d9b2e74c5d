"""A boto3 EC2 client for a simulated region, with the fake credentials every simulated
caller signs with unless it brings its own."""

from __future__ import annotations

from typing import Any, Protocol

FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"


class Endpoint(Protocol):
    """What a client needs of a simulated region (a :class:`~eipha.sim.region.SimulatedRegion`)."""

    @property
    def region(self) -> str: ...

    @property
    def endpoint(self) -> str: ...


def ec2_client(region: Endpoint, *, config: Any = None) -> Any:
    """A boto3 EC2 client for ``region``: fake credentials, no proxies, short timeouts.

    No credential chain, IMDS or proxy is consulted. Retries default to a single attempt
    (so tests count calls exactly); pass a ``botocore.config.Config`` to override/extend.
    """
    import boto3
    from botocore.config import Config

    base = Config(
        proxies={},
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 1},
    )
    return boto3.client(
        "ec2",
        region_name=region.region,
        endpoint_url=region.endpoint,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        aws_session_token=None,
        config=base.merge(config) if config is not None else base,
    )
