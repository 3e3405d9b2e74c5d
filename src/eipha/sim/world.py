"""The two-node world of the README's picture, built in a simulated region over the EC2 API:
:func:`build_pair` and what it returns (:class:`World`, :class:`SimNode`, :class:`SimEip`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eipha.sim.ec2_client import Endpoint, ec2_client

MOTO_ACCOUNT_ID = "123456789012"
"""The account moto serves for any access key it does not know (moto's DEFAULT_ACCOUNT_ID)."""


@dataclass(frozen=True)
class SimNode:
    """A simulated load balancer: one instance, its device-0 ENI, and the ENI's IPs."""

    name: str
    instance_id: str
    eni_id: str
    mac: str
    primary_ip: str
    secondary_ips: tuple[str, ...]
    subnet_cidr: str
    device_number: int = 0


@dataclass(frozen=True)
class SimEip:
    """An allocated Elastic IP (not associated by :func:`build_pair`) and its home node."""

    name: str
    allocation_id: str
    public_ip: str
    home: str


@dataclass(frozen=True)
class World:
    """What :func:`build_pair` built."""

    nodes: dict[str, SimNode]
    eips: dict[str, SimEip]
    region: str
    vpc_id: str
    subnet_id: str

    def nodes_section(self, addresses: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``nodes:`` of an eipha config for this world (``addresses``: each node's
        monitor address, by name; its primary IP by default)."""
        return {
            n.name: {
                "instance_id": n.instance_id,
                "address": (addresses or {}).get(n.name, n.primary_ip),
            }
            for n in self.nodes.values()
        }

    def eips_section(self) -> dict[str, Any]:
        """The ``eips:`` of an eipha config for this world."""
        return {
            e.name: {"allocation_id": e.allocation_id, "home": e.home} for e in self.eips.values()
        }

    def placement(self, address: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(node, private IP) of a DescribeAddresses entry; (None, None) when unassociated."""
        eni = address.get("NetworkInterfaceId")
        node = next((n.name for n in self.nodes.values() if n.eni_id == eni), None)
        return node, address.get("PrivateIpAddress")


VPC_CIDR = "10.0.0.0/16"
SUBNET_CIDR = "10.0.0.0/24"
IMAGE_ID = "ami-12c6146b"  # any id does: moto does not validate AMIs by default
_NODES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("lb-a", "10.0.0.11", ("10.0.0.12",), "0a:00:00:00:00:0a"),
    ("lb-b", "10.0.0.21", ("10.0.0.22",), "0a:00:00:00:00:0b"),
)


def _name_tag(resource_type: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def build_pair(region: Endpoint, *, eips: int = 2) -> World:
    """Build the README's two-node world in a fresh (or just reset) region, over the API.

    VPC 10.0.0.0/16, subnet 10.0.0.0/24 in ``<region>a``; instances ``lb-a`` and ``lb-b``,
    each with a device-0 ENI: 10.0.0.11 (primary) + 10.0.0.12 and 10.0.0.21 + 10.0.0.22.
    ``eips`` EIPs (domain vpc) tagged Name=web-a (home lb-a), web-b (home lb-b), then eip-3,
    eip-4, … (home lb-a); none is associated. Each ENI gets a stable MAC (0a:00:00:00:00:0a,
    …:0b), also written into moto's ENI so DescribeNetworkInterfaces agrees with IMDS doubles.
    """
    if eips < 0:
        raise ValueError("eips must be >= 0")
    ec2 = ec2_client(region)
    try:
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=SUBNET_CIDR, AvailabilityZone=f"{region.region}a"
        )["Subnet"]["SubnetId"]
        nodes: dict[str, SimNode] = {}
        for name, primary, secondaries, mac in _NODES:
            eni_id = ec2.create_network_interface(
                SubnetId=subnet_id,
                Description=f"{name} eth0",
                PrivateIpAddresses=[
                    {"PrivateIpAddress": primary, "Primary": True},
                    *({"PrivateIpAddress": ip, "Primary": False} for ip in secondaries),
                ],
                TagSpecifications=_name_tag("network-interface", f"{name}-eth0"),
            )["NetworkInterface"]["NetworkInterfaceId"]
            instance_id = ec2.run_instances(
                ImageId=IMAGE_ID,
                InstanceType="t3.micro",
                MinCount=1,
                MaxCount=1,
                NetworkInterfaces=[{"NetworkInterfaceId": eni_id, "DeviceIndex": 0}],
                TagSpecifications=_name_tag("instance", name),
            )["Instances"][0]["InstanceId"]
            _verify_eni(ec2, eni_id, instance_id, primary, secondaries)
            _set_moto_mac(region.region, eni_id, mac)
            nodes[name] = SimNode(
                name=name,
                instance_id=instance_id,
                eni_id=eni_id,
                mac=mac,
                primary_ip=primary,
                secondary_ips=secondaries,
                subnet_cidr=SUBNET_CIDR,
            )
        allocated: dict[str, SimEip] = {}
        for index in range(eips):
            name, home = (
                (("web-a", "lb-a"), ("web-b", "lb-b"))[index]
                if index < 2
                else (
                    f"eip-{index + 1}",
                    "lb-a",
                )
            )
            answer = ec2.allocate_address(
                Domain="vpc", TagSpecifications=_name_tag("elastic-ip", name)
            )
            allocated[name] = SimEip(name, answer["AllocationId"], answer["PublicIp"], home)
    finally:
        ec2.close()
    return World(
        nodes=nodes, eips=allocated, region=region.region, vpc_id=vpc_id, subnet_id=subnet_id
    )


def _verify_eni(
    ec2: Any, eni_id: str, instance_id: str, primary: str, secondaries: tuple[str, ...]
) -> None:
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    attachment = eni.get("Attachment", {})
    ips = {
        item["PrivateIpAddress"]: item.get("Primary", False) for item in eni["PrivateIpAddresses"]
    }
    expected = {primary: True, **dict.fromkeys(secondaries, False)}
    if (
        attachment.get("InstanceId") != instance_id
        or attachment.get("DeviceIndex") != 0
        or ips != expected
    ):
        raise RuntimeError(
            f"simulated ENI {eni_id} came out wrong: attachment {attachment}, IPs {ips}, "
            f"expected {expected} on {instance_id} device 0"
        )


def _set_moto_mac(region_name: str, eni_id: str, mac: str) -> None:
    """Give moto's ENI our stable MAC (moto draws a random one); same process as the server."""
    from moto.ec2.models import ec2_backends

    ec2_backends[MOTO_ACCOUNT_ID][region_name].get_network_interface(eni_id).mac_address = mac
