"""The one place that builds real adapters (IMDS over HTTP, EC2 over botocore) and the
:class:`~eipha.node.Node` over them, from the config and the environment.

Each adapter is built once, on first use, so a command that needs no AWS never imports
botocore; all of them share the deadline of the node's action in progress.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import replace

from eipha import ec2, imds, placements
from eipha.clock import Deadline
from eipha.config import Config
from eipha.local_interface import local_interface
from eipha.model import NodeIdentity
from eipha.node import Node

log = logging.getLogger(__name__)


def node(config: Config, region: str | None = None, env: Mapping[str, str] | None = None) -> Node:
    """This process's node: ``region`` is ``--region``; ``env`` the environment (the
    process's own by default) that names the IMDS endpoint and the region."""
    environment = dict(os.environ) if env is None else dict(env)
    return Node(config, lambda deadline: Adapters(config, deadline, region, environment))


class Adapters:
    """The IMDS client and the EC2 gateway of one node, sharing its ``deadline``."""

    def __init__(
        self,
        config: Config,
        deadline: Deadline,
        region: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.deadline = deadline
        self.region_option = region
        self.env = dict(os.environ) if env is None else dict(env)

    @functools.cached_property
    def imds(self) -> imds.ImdsClient:
        transport = imds.HttpTransport(imds.endpoint_from_env(self.env))
        return imds.ImdsClient(transport, deadline=self.deadline)

    @functools.cached_property
    def region(self) -> str:
        """``--region``, then the config, then botocore's variables, then IMDS."""
        return (
            self.region_option
            or self.config.region
            or self.env.get("AWS_REGION")
            or self.env.get("AWS_DEFAULT_REGION")
            or self.imds.region()
        )

    @functools.cached_property
    def ec2(self) -> ec2.Gateway:
        return ec2.Gateway(self.region, self.deadline)

    def prepare(self) -> None:
        self.region  # noqa: B018 - first, in this thread: the IMDS client is not shared
        self.ec2.prefetch()

    def connect(self) -> None:
        self.ec2.client  # noqa: B018 - made now, or its error raised now

    def instance_id(self) -> str:
        return self.imds.instance_id()

    def primary_ip_of(self, eni_id: str) -> str:
        (eni,) = self.ec2.describe_network_interfaces(eni_ids=[eni_id])
        return eni.primary_ip

    def with_secondaries(self, node: NodeIdentity) -> NodeIdentity:
        """``node`` with its ENI's secondary private IPs, read now."""
        interface = self.imds.with_secondaries(node.interface)
        found = ", ".join(interface.secondary_ips) or "none"
        log.debug("%s secondaries: %s", interface.eni_id, found)
        return replace(node, interface=interface)

    def eni_ids(self) -> frozenset[str]:
        """Every ENI attached to this instance (what a stop asks: is the EIP on one?)."""
        enis = frozenset(self.imds.interface_id(mac) for mac in self.imds.macs())
        log.debug("this node's ENIs: %s", ", ".join(sorted(enis)))
        return enis

    def identity(self, *, secondaries: bool = True) -> NodeIdentity:
        """This node: name, region and binding interface (only what a binding needs: the
        ENI and, with ``secondaries``, its private IPs)."""
        interface = local_interface(
            self.imds,
            self.config.interface,
            primary_ip_for=self.primary_ip_of,
            details=False,
            secondaries=secondaries,
        )
        node = NodeIdentity(placements.node_name(self.config), self.region, interface)
        log.debug(
            "this node is %s in %s: %s primary %s, secondaries %s",
            node.node_name,
            node.region,
            interface.eni_id,
            interface.primary_ip,
            ", ".join(interface.secondary_ips) or "none"
            if interface.secondaries_known
            else "not read (not needed)",
        )
        return node
