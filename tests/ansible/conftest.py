"""The Ansible tier: lint and syntax run anywhere; converges need root (a network namespace
per run, and root-owned files), so outside CI a non-root run skips them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the Ansible converge tests need root, and CI runs as root")
        pytest.skip("the Ansible converge tests need root (network namespaces, chown root)")
