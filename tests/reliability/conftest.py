"""Reliability tier: eipha under failure — faults injected between it and EC2 (a scriptable
proxy in front of the moto server) and in the IMDSv2 double, concurrency, SIGKILL at random
points, hostile configs, arguments and datagrams, secrets and least privilege.

The simulated region and the per-node IMDSv2 doubles are the integration tier's (one moto
server for the session, reset per test); nothing here talks to anything but loopback, except
tests that build their own network namespaces (root only; skipped outside CI when not root,
a failure under CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from eipha.sim.region import SimulatedRegion
from tests.integration.conftest import Lab, pair_lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def region() -> Iterator[SimulatedRegion]:
    with SimulatedRegion() as sim:
        yield sim


@pytest.fixture
def lab(region: SimulatedRegion, tmp_path: Path) -> Iterator[Lab]:
    """Two nodes (lb-a, lb-b), two EIPs (web-a home lb-a, web-b home lb-b; both start
    unassociated), an IMDSv2 double per node, and a way to run eipha as either."""
    with pair_lab(region, tmp_path) as built:
        yield built
