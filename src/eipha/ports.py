"""The ports of a :class:`~eipha.node.Node`: what it needs from the outside world.

:mod:`eipha.wiring` builds the real ones (IMDS over HTTP, EC2 over botocore); the unit tests
give in-memory fakes (``tests/fakes.py``). :class:`eipha.failover.Ec2Port` is the narrower
port the plans themselves use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from eipha.clock import Deadline
from eipha.model import Address, Binding, NodeIdentity

if TYPE_CHECKING:
    from eipha.ec2 import Eni
    from eipha.imds import ImdsClient


class Ec2(Protocol):
    """The EC2 gateway (:class:`eipha.ec2.Gateway`): the failover port, and the reads and
    DryRun probes that drills, show and validate make."""

    def describe_addresses(
        self,
        allocation_ids: Sequence[str] = (),
        public_ips: Sequence[str] = (),
        filters: Mapping[str, Sequence[str]] | None = None,
        *,
        dry_run: bool = False,
    ) -> list[Address]: ...

    def associate_address(
        self, allocation_id: str, binding: Binding, *, dry_run: bool = False
    ) -> str: ...

    def disassociate_address(self, association_id: str, *, dry_run: bool = False) -> bool: ...

    def describe_network_interfaces(
        self,
        eni_ids: Sequence[str] = (),
        instance_ids: Sequence[str] = (),
        *,
        dry_run: bool = False,
    ) -> list[Eni]: ...


class Adapters(Protocol):
    """What a node needs from the world, built by :mod:`eipha.wiring` (tests give fakes).
    Every call made through them is bounded by ``deadline``, which the node restarts for each
    action."""

    deadline: Deadline

    @property
    def ec2(self) -> Ec2: ...

    @property
    def imds(self) -> ImdsClient: ...

    @property
    def region(self) -> str: ...

    def primary_ip_of(self, eni_id: str) -> str:
        """The primary private IP of an ENI of this node (EC2's Primary flag)."""

    def prepare(self) -> None:
        """Start what takes long (the EC2 client) while this thread reads IMDS."""

    def connect(self) -> None:
        """Have the EC2 client made (credentials resolved) now; raise what that fails with."""

    def identity(self, *, secondaries: bool = True) -> NodeIdentity: ...

    def with_secondaries(self, node: NodeIdentity) -> NodeIdentity:
        """``node`` (read without them) with its ENI's secondary private IPs."""

    def eni_ids(self) -> frozenset[str]: ...

    def instance_id(self) -> str: ...
