"""How a cluster-manager front end gets its config and its node (tests give fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eipha.config import Config
from eipha.node import Node

Loader = Callable[[str | None], Config]
"""The config in effect; a path given by the cluster manager (OCF ``config``) wins."""
Builder = Callable[[Config], Node]
"""The node over a config."""


@dataclass(frozen=True)
class Setup:
    """What a front end gets from the command line: how to load the config (once per call)
    and build a node over it."""

    load: Loader
    build: Builder

    def node(self, path: str | None = None) -> Node:
        return self.build(self.load(path))


def seconds(config: Config, cap: float | None = None) -> float:
    """An action's deadline: the config's ``timeout``, or ``cap`` seconds if that is
    shorter (a cluster manager's own operation timeout)."""
    return config.timeout if cap is None else min(config.timeout, cap)
