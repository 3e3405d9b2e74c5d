"""eipha's reduced EC2 service model agrees with botocore's full one, and is what clients load."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tools import gen_ec2_model

from eipha import ec2


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return gen_ec2_model.full_model()


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    path = ec2.DATA_DIR / "ec2" / ec2.API_VERSION / "service-2.json"
    model: dict[str, Any] = json.loads(path.read_text())
    return model


def test_shipped_model_holds_exactly_the_operations_eipha_calls(shipped):
    assert sorted(shipped["operations"]) == sorted(gen_ec2_model.OPERATIONS)


def test_every_shipped_shape_matches_botocore(shipped, full):
    """Member for member: a shape botocore changed would change how a call is serialized."""
    for name, shape in shipped["shapes"].items():
        theirs = full["shapes"][name]
        assert shape["type"] == theirs["type"], name
        for member, ref in shape.get("members", {}).items():
            assert member in theirs["members"], f"{name}.{member}"
            assert ref["shape"] == theirs["members"][member]["shape"], f"{name}.{member}"
    for op, spec in shipped["operations"].items():
        assert spec["http"] == full["operations"][op]["http"]
        assert spec["input"] == full["operations"][op]["input"]


def test_a_client_uses_the_reduced_model():
    client = ec2.make_client("eu-west-1")
    names = client.meta.service_model.operation_names
    assert sorted(names) == sorted(gen_ec2_model.OPERATIONS)
    assert client.meta.config.connect_timeout == ec2.CONNECT_TIMEOUT
    assert client.meta.config.read_timeout == ec2.READ_TIMEOUT
    assert client.meta.config.retries["mode"] == "standard"


def test_shipped_endpoints_are_botocores_ec2_entries():
    shipped = json.loads((ec2.DATA_DIR / "endpoints.json").read_text())
    full = gen_ec2_model.full_endpoints()
    assert [p["partition"] for p in shipped["partitions"]] == [
        p["partition"] for p in full["partitions"]
    ]
    for ours, theirs in zip(shipped["partitions"], full["partitions"], strict=True):
        assert list(ours["services"]) == ["ec2"]
        assert ours["services"]["ec2"] == theirs["services"]["ec2"]
        assert ours["regions"] == theirs["regions"]


def test_reduced_and_full_clients_resolve_the_same_endpoints(monkeypatch):
    import botocore.session

    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")  # resolve the real endpoints (nothing is sent)
    for region in ("eu-west-1", "us-gov-west-1", "cn-north-1", "us-east-1"):
        reduced = ec2.make_client(region)
        full = botocore.session.get_session().create_client(
            "ec2", region_name=region, aws_access_key_id="x", aws_secret_access_key="y"
        )
        assert reduced.meta.endpoint_url == full.meta.endpoint_url, region
        assert "127.0.0.1" not in reduced.meta.endpoint_url
