"""Plain value types shared by every layer (standard library only)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


def sort_ips(ips: Iterable[str]) -> tuple[str, ...]:
    """IPv4 addresses in ascending numeric order, duplicates removed."""
    return tuple(sorted(set(ips), key=lambda ip: int(ipaddress.IPv4Address(ip))))


@dataclass(frozen=True)
class Address:
    """One Elastic IP as DescribeAddresses reports it right now."""

    allocation_id: str
    public_ip: str
    association_id: str | None = None
    network_interface_id: str | None = None
    private_ip: str | None = None
    instance_id: str | None = None

    @property
    def associated(self) -> bool:
        return self.association_id is not None

    def is_on(self, binding: Binding) -> bool:
        """Exactly on this ENI and private IP."""
        return self.network_interface_id == binding.eni_id and self.private_ip == binding.private_ip

    def where(self) -> str:
        """Where the EIP is, for messages."""
        if not self.associated:
            return "unassociated"
        owner = f" of {self.instance_id}" if self.instance_id else ""
        return f"{self.network_interface_id}{owner} {self.private_ip}"


@dataclass(frozen=True)
class Interface:
    """A network interface (ENI) of this node, as IMDS describes it."""

    eni_id: str
    mac: str
    primary_ip: str
    secondary_ips: tuple[str, ...]
    device_number: int = 0
    subnet_cidr: str | None = None
    secondaries_known: bool = True  # False: not read (an EIP on the primary IP needs none)

    @property
    def private_ips(self) -> tuple[str, ...]:
        return (self.primary_ip, *self.secondary_ips)


@dataclass(frozen=True)
class NodeIdentity:
    """Who and where this node is: its name, region and binding interface."""

    node_name: str
    region: str
    interface: Interface


@dataclass(frozen=True)
class Binding:
    """Where an EIP belongs on a node: one ENI and one of its private IPs."""

    eni_id: str
    private_ip: str

    def __str__(self) -> str:
        return f"{self.eni_id} {self.private_ip}"
