"""A missing extra is one DependencyMissing naming the pip command (exit 5)."""

from __future__ import annotations

import sys

import pytest

from eipha import extras
from eipha.errors import DependencyMissing
from eipha.exitcodes import CLI, Exit, lookup


def test_installed_extras_pass():
    # the test environment installs eipha[simulate,metrics]
    extras.require("simulate", "eipha drill --simulate")
    extras.require("metrics", "monitor.metrics")


def test_a_missing_module_names_the_extra_and_the_pip_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "moto", None)  # what an uninstalled module looks like
    with pytest.raises(DependencyMissing) as caught:
        extras.require("simulate", "eipha drill --simulate")
    text = str(caught.value)
    assert "eipha drill --simulate needs the 'simulate' extra" in text
    assert "no module moto" in text
    assert "pip install 'eipha[simulate]'" in text
    assert lookup(CLI, caught.value) == Exit.DEPENDENCY
