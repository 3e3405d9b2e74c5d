"""The frozen values a valid config becomes: :class:`Config` and its parts, and
:data:`EMPTY` (no config loaded). Nothing here reads or checks anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eipha.binding import EipRule


@dataclass(frozen=True)
class NodeSpec:
    """One load balancer of the pair (``nodes.NAME``)."""

    name: str
    instance_id: str | None
    address: str | None


@dataclass(frozen=True)
class EipSpec:
    """One Elastic IP (``eips.NAME``); ``private_ips`` maps node name -> IPv4 (rule 1 of
    :mod:`eipha.binding`)."""

    name: str
    allocation_id: str
    home: str
    private_ips: Mapping[str, str]


@dataclass(frozen=True)
class HealthCheck:
    """``monitor.health_check``: exactly one of ``command`` and ``url`` is set."""

    command: str | None
    url: str | None
    interval: float
    fall: int
    rise: int


@dataclass(frozen=True)
class MonitorSpec:
    """``monitor``: the peer monitor. ``quorum`` entries are ``A.B.C.D`` (ICMP echo) or
    ``A.B.C.D:PORT`` (TCP connect); empty means: use the default gateway."""

    port: int
    key_file: str
    interval: float
    dead_after: float
    init_dead: float
    quorum: tuple[str, ...]
    health_check: HealthCheck | None
    auto_failback: bool
    min_hold: float
    release_on_exit: bool
    metrics_textfile: str | None = None  # Prometheus textfile (node_exporter's collector)
    metrics_listen: str | None = None  # "A.B.C.D:PORT" for a /metrics HTTP endpoint


@dataclass(frozen=True)
class Config:
    """A whole, valid config. ``keepalived_instances`` empty means every instance carries
    every EIP; ``node_name`` None means the caller uses ``uname -n``. ``looked_at`` is the
    file that was looked for when there was none (``path`` None: no config loaded)."""

    path: str | None
    region: str | None
    node_name: str | None
    interface: str | None
    timeout: float
    nodes: Mapping[str, NodeSpec]
    eips: Mapping[str, EipSpec]
    monitor: MonitorSpec | None
    keepalived_instances: Mapping[str, tuple[str, ...]]
    looked_at: str | None = None

    def eip_by_allocation(self, allocation_id: str) -> EipSpec | None:
        """The configured EIP with this allocation id, if any."""
        return next((e for e in self.eips.values() if e.allocation_id == allocation_id), None)

    def eip_rules(self) -> dict[str, EipRule]:
        """Each EIP's part that the binding rule reads, by EIP name."""
        from eipha.binding import EipRule  # not paid by the callers that never bind an EIP

        return {name: EipRule(e.home, dict(e.private_ips)) for name, e in self.eips.items()}


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


EMPTY = Config(
    path=None,
    region=None,
    node_name=None,
    interface=None,
    timeout=20.0,
    nodes=frozen({}),
    eips=frozen({}),
    monitor=None,
    keepalived_instances=frozen({}),
)
