"""The one place that builds real adapters (IMDS, EC2) from the config and environment.

Front ends ask a :class:`Runtime` for what they need; it builds each adapter once, lazily, so
a command that needs no AWS never imports botocore.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from eipha import ec2, imds, targets
from eipha.clock import Deadline
from eipha.config import Config
from eipha.model import Address, Binding, NodeIdentity

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = logging.getLogger(__name__)


class Ec2Api:
    """:class:`eipha.failover.Ec2Port` over a botocore client."""

    def __init__(self, client: BaseClient) -> None:
        self.client = client

    def describe_addresses(
        self, allocation_ids: Sequence[str] = (), public_ips: Sequence[str] = ()
    ) -> list[Address]:
        return ec2.describe_addresses(self.client, allocation_ids, public_ips)

    def associate_address(self, allocation_id: str, binding: Binding) -> str:
        return ec2.associate_address(self.client, allocation_id, binding)

    def disassociate_address(self, association_id: str) -> bool:
        return ec2.disassociate_address(self.client, association_id)


class Runtime:
    """Lazily built adapters for one action, all sharing one deadline."""

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
        self._client: BaseClient | None = None
        self._client_lock = threading.Lock()

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

    @property
    def client(self) -> BaseClient:
        """Made once, by whichever thread asks first; the other waits for it (a lock of its
        own: ``functools.cached_property`` stopped locking in Python 3.12)."""
        with self._client_lock:
            if self._client is None:
                self._client = ec2.make_client(self.region, self.deadline)
            return self._client

    def prefetch_client(self) -> None:
        """Build the EC2 client (importing botocore, which is CPU) and resolve credentials
        (on EC2, IMDS round trips) in a thread, while this one reads who this node is from
        IMDS: a cold start/status overlaps the two instead of waiting for each in turn.
        A runtime that already has its client (the FIFO reader's, kept) starts no thread."""
        if self._client is not None:
            return
        region = self.region  # first, here: the IMDS client is not shared across threads

        def build() -> None:
            # botocore resolves the credential chain while creating the client; any failure
            # here shows again, with its error, when the client is used
            with contextlib.suppress(Exception):
                self.client  # noqa: B018 - build it now
            log.debug("EC2 client ready for %s", region)

        threading.Thread(target=build, daemon=True, name="eipha-client").start()

    def warm(self) -> NodeIdentity:
        """Do ahead what every action does before its first API call: import botocore, make
        the EC2 client (credentials resolved), get an IMDS token and read who this node is.
        A long-lived caller (the keepalived FIFO reader) then pays only the IMDS reads and
        the API calls of each action (and a new token when the old one expires)."""
        self.prefetch_client()
        node = self.identity()
        self.client  # noqa: B018 - wait for it here, and see its error if it failed
        return node

    @functools.cached_property
    def ec2(self) -> Ec2Api:
        return Ec2Api(self.client)

    def primary_ip_of(self, eni_id: str) -> str:
        (eni,) = ec2.describe_network_interfaces(self.client, eni_ids=[eni_id])
        return eni.primary_ip

    def identity(self, *, all_enis: bool = False) -> NodeIdentity:
        """This node: name, instance, region, binding interface (and, for stop, every ENI)."""
        interface = imds.local_interface(
            self.imds, self.config.interface, primary_ip_for=self.primary_ip_of
        )
        eni_ids = frozenset({interface.eni_id})
        if all_enis:
            eni_ids |= {
                self.imds.get(f"meta-data/network/interfaces/macs/{mac}/interface-id")
                for mac in self.imds.macs()
            }
        node = NodeIdentity(
            node_name=targets.node_name(self.config),
            instance_id=self.imds.instance_id(),
            region=self.region,
            interface=interface,
            eni_ids=eni_ids,
        )
        log.debug(
            "this node is %s (%s in %s): %s primary %s, secondaries %s",
            node.node_name,
            node.instance_id,
            node.region,
            interface.eni_id,
            interface.primary_ip,
            ", ".join(interface.secondary_ips) or "none",
        )
        return node
