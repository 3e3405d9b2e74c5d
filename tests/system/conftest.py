"""System tier: root only, real kernel in network namespaces the tests create and remove.

Outside CI a non-root run skips this tier; under CI (CI=true) not being root is a failure,
so the tier can never silently not run there."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.system)


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the system tier needs root, and CI runs as root")
        pytest.skip("the system tier needs root (network namespaces)")
