"""eipha's extension of moto 5.2.x's EC2 Elastic IP model: one EIP per *private IP*.

Why. moto 5.2.x models an Elastic IP association as (EIP → instance/ENI) only. It ignores
``PrivateIpAddress`` on AssociateAddress, reports the ENI's primary IP as every EIP's
``PrivateIpAddress``, accepts a private IP that is not on the ENI, and keeps a single
``public_ip`` per ENI, so two EIPs on one ENI are not modelled (moto 5.2's EIP model, read
from its source). eipha's whole point is "move EIP web-b onto lb-a's *secondary*
IP without kicking web-a off lb-a's primary", so the simulated region must model what real EC2
does (the EC2 API reference for AssociateAddress): each private IPv4 address carries at most
one EIP and each EIP sits on at most one private IP.

What :func:`install` changes (process-wide, in the process that runs the moto server or the
``mock_aws`` decorator; idempotent; refuses anything but moto 5.2.x):

1. ``AssociateAddress`` honours ``PrivateIpAddress``. The response handler
   ``ElasticIPAddresses.associate_address`` reads it and passes it to the backend method
   ``ElasticAddressBackend.associate_address(..., private_ip_address=...)``. Without it, the
   ENI's primary private IP is used; by ``InstanceId`` the ENI is the instance's device-0 ENI.
2. A private IP that is not one of the ENI's private IPs is rejected with the EC2 error
   ``InvalidParameterValue`` (HTTP 400), message
   ``"The private IP address <ip> is not assigned to network interface <eni>."``
   (the exact code real EC2 uses is unconfirmed, probably this one).
3. Each (ENI, private IP) carries at most one EIP: associating EIP-2 with a private IP that
   holds EIP-1 disassociates EIP-1 (EC2's documented behaviour for "an instance with an
   existing Elastic IP address"). EIPs on *different* private IPs of one ENI all stay
   associated. Moving an EIP away from an ENI also clears that ENI's ``public_ip`` when the EIP
   was on its primary IP (moto left the old ENI pointing at the moved EIP).
4. ``DescribeAddresses`` reports the recorded private IP as ``PrivateIpAddress`` (property
   ``ElasticAddress.private_ip_address``) and the ``private-ip-address`` filter matches it
   (``ElasticAddress.get_filter_value``). ``DisassociateAddress`` clears it. Every association
   gets a fresh ``AssociationId`` (as in moto). An EIP associated by ``NetworkInterfaceId``
   reports the ENI's attached instance as ``InstanceId`` (moto reported none; EC2 reports it).
   An unassociated EIP omits ``InstanceId`` and ``NetworkInterfaceId`` as EC2 does (moto sent
   empty strings; properties ``ElasticAddress.instance_id``/``network_interface_id``).
5. ``AllowReassociation`` keeps moto's meaning: false (moto's default) raises
   ``Resource.AlreadyAssociated`` when the EIP is associated with a *different* ENI; true moves
   it. Re-associating to another private IP of the same ENI is always allowed.
6. ``DescribeNetworkInterfaces``: the ENI-level ``Association`` is the EIP on the primary IP
   (or none), and every ``PrivateIpAddresses[].Association`` shows the EIP on that IP (new
   property ``NetworkInterface.network_interface_private_ip_address_list``, which moto's
   serializer picks by shape name). ``DescribeInstances`` does the same per private IP
   (``NetworkInterface.instance_private_ip_address_list``).
7. ``UnassignPrivateIpAddresses`` first disassociates the EIPs on the IPs it removes (EC2:
   "unassigning the secondary IP disassociates its EIP"), so no EIP points at an IP the ENI
   no longer has.

Not modelled: ``AllowReassignment`` on AssignPrivateIpAddresses (moto duplicates the IP; an EIP
does not follow a moved secondary IP), EC2-Classic (``standard`` domain) specifics, and
``InvalidParameterCombination`` for ``InstanceId`` together with ``NetworkInterfaceId``
(moto uses the instance).

moto's backends are process-global: the patch applies to every moto server and every
``mock_aws`` in this process, and lasts until the process exits.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, NoReturn

import moto

SUPPORTED_MOTO = "5.2."
"""The moto release series this extension was written against (checked by :func:`install`)."""

_PRIVATE_IP_ATTR = "eipha_private_ip"
_MARK = "__eipha_moto_ext__"
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Patch moto's EC2 Elastic IP model in this process (idempotent; see the module docstring).

    Raises :class:`RuntimeError` if moto is not 5.2.x or an attribute to be patched is missing
    or has an unexpected shape, before changing anything.
    """
    global _installed
    with _lock:
        if _installed:
            return
        classes = _check()
        if not getattr(classes[1].associate_address, _MARK, False):  # e.g. module reloaded
            _apply(*classes)
        _installed = True


def is_installed() -> bool:
    """True once :func:`install` has patched moto in this process."""
    return _installed


def _check() -> tuple[Any, Any, Any, Any, Any]:
    version = str(getattr(moto, "__version__", "unknown"))
    if not version.startswith(SUPPORTED_MOTO):
        raise RuntimeError(
            f"eipha.sim.moto_ext supports moto {SUPPORTED_MOTO}x only, found moto {version} "
            "(the patched internals may have changed; re-check them and update the extension)"
        )
    try:
        from moto.ec2.models.elastic_ip_addresses import ElasticAddress, ElasticAddressBackend
        from moto.ec2.models.elastic_network_interfaces import (
            NetworkInterface,
            NetworkInterfaceBackend,
        )
        from moto.ec2.responses.elastic_ip_addresses import ElasticIPAddresses
    except ImportError as exc:  # pragma: no cover - only on moto drift
        raise RuntimeError(f"eipha.sim.moto_ext: moto {version} layout changed ({exc})") from exc

    required: list[tuple[Any, str, tuple[str, ...]]] = [
        (ElasticIPAddresses, "associate_address", ()),
        (
            ElasticAddressBackend,
            "associate_address",
            ("instance", "eni", "address", "allocation_id", "reassociate"),
        ),
        (ElasticAddressBackend, "disassociate_address", ("address", "association_id")),
        (ElasticAddressBackend, "address_by_ip", ()),
        (ElasticAddressBackend, "address_by_allocation", ()),
        (ElasticAddressBackend, "address_by_association", ()),
        (ElasticAddress, "get_filter_value", ()),
        (ElasticAddress, "private_ip_address", ()),
        (ElasticAddress, "instance_id", ()),
        (ElasticAddress, "network_interface_id", ()),
        (NetworkInterface, "instance_private_ip_address_list", ()),
        (NetworkInterface, "association", ()),
        (NetworkInterface, "check_auto_public_ip", ()),
        (NetworkInterfaceBackend, "unassign_private_ip_addresses", ("eni_id",)),
    ]
    problems: list[str] = []
    for cls, name, params in required:
        attr = inspect.getattr_static(cls, name, None)
        if attr is None:
            problems.append(f"{cls.__name__}.{name} is missing")
            continue
        if params and callable(attr):
            have = set(inspect.signature(attr).parameters)
            lacking = [p for p in params if p not in have]
            if lacking:
                problems.append(f"{cls.__name__}.{name} lacks parameters {lacking}")
    ours = inspect.getattr_static(
        NetworkInterface, "network_interface_private_ip_address_list", None
    )
    if ours is not None and not getattr(getattr(ours, "fget", None), _MARK, False):
        problems.append("NetworkInterface.network_interface_private_ip_address_list already exists")
    if problems:
        raise RuntimeError(
            f"eipha.sim.moto_ext cannot patch moto {version}: " + "; ".join(problems)
        )
    return (
        ElasticIPAddresses,
        ElasticAddressBackend,
        ElasticAddress,
        NetworkInterface,
        NetworkInterfaceBackend,
    )


def _apply(
    responses_cls: Any,
    backend_cls: Any,
    address_cls: Any,
    eni_cls: Any,
    eni_backend_cls: Any,
) -> None:
    original_filter = address_cls.get_filter_value
    original_unassign = eni_backend_cls.unassign_private_ip_addresses

    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "private-ip-address":
            return bound_private_ip(self)
        return original_filter(self, filter_name, method_name)

    def unassign_private_ip_addresses(
        self: Any, eni_id: str, private_ip_address: list[str] | None = None
    ) -> Any:
        eni = self.get_network_interface(eni_id)
        for eip in list(self.addresses):
            if eip.eni is eni and bound_private_ip(eip) in (private_ip_address or []):
                _unbind(eip)
        return original_unassign(self, eni_id, private_ip_address)

    patches: list[tuple[Any, str, Any]] = [
        (responses_cls, "associate_address", _associate_address_response),
        (backend_cls, "associate_address", _associate_address),
        (backend_cls, "disassociate_address", _disassociate_address),
        (address_cls, "private_ip_address", property(bound_private_ip)),
        (address_cls, "instance_id", property(_instance_id)),
        (address_cls, "network_interface_id", property(_network_interface_id)),
        (address_cls, "get_filter_value", get_filter_value),
        (eni_cls, "network_interface_private_ip_address_list", property(_eni_ip_list)),
        (eni_cls, "instance_private_ip_address_list", property(_instance_ip_list)),
        (eni_backend_cls, "unassign_private_ip_addresses", unassign_private_ip_addresses),
    ]
    for cls, name, value in patches:
        target = value.fget if isinstance(value, property) else value
        setattr(target, _MARK, True)
        setattr(cls, name, value)


# --- model helpers ----------------------------------------------------------------------


def bound_private_ip(eip: Any) -> str | None:
    """The private IP an EIP is associated with (None when it is not associated).

    EIPs associated before :func:`install` (or by moto-internal code paths such as NAT
    gateways) fall back to the ENI's primary IP, which is what moto itself reported.
    """
    if eip.eni is None:
        return None
    recorded: str | None = getattr(eip, _PRIVATE_IP_ATTR, None)
    return recorded if recorded is not None else eip.eni.private_ip_address


def _instance_id(eip: Any) -> str | None:
    return eip.instance.id if eip.instance is not None else None


def _network_interface_id(eip: Any) -> str | None:
    return eip.eni.id if eip.eni is not None else None


def _eni_private_ips(eni: Any) -> list[str]:
    ips = [str(item.get("PrivateIpAddress")) for item in eni.private_ip_addresses]
    if eni.private_ip_address and eni.private_ip_address not in ips:
        ips.insert(0, eni.private_ip_address)
    return ips


def _eips_by_private_ip(eni: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for eip in getattr(eni.ec2_backend, "addresses", []):
        if eip.eni is eni:
            ip = bound_private_ip(eip)
            if ip is not None:
                found[ip] = eip
    return found


def _association(eni: Any, eip: Any) -> dict[str, Any]:
    from moto.ec2.utils import generate_dns_from_ip

    return {
        "allocationId": eip.allocation_id or None,
        "associationId": eip.association_id or None,
        "publicIp": eip.public_ip,
        "publicDnsName": generate_dns_from_ip(eip.public_ip),
        "ipOwnerId": eni.ec2_backend.account_id,
    }


def _eni_ip_list(eni: Any) -> list[dict[str, Any]]:
    """``PrivateIpAddresses`` for DescribeNetworkInterfaces, with a per-IP ``Association``."""
    eips = _eips_by_private_ip(eni)
    items: list[dict[str, Any]] = []
    for item in eni.private_ip_addresses:
        entry = dict(item)
        eip = eips.get(str(item.get("PrivateIpAddress")))
        if eip is not None:
            entry["Association"] = _association(eni, eip)
        items.append(entry)
    return items


def _instance_ip_list(eni: Any) -> list[dict[str, Any]]:
    """``PrivateIpAddresses`` of an instance's interface for DescribeInstances."""
    eips = _eips_by_private_ip(eni)
    items: list[dict[str, Any]] = []
    for item in eni.private_ip_addresses:
        ip = item.get("PrivateIpAddress")
        primary = ip == eni.private_ip_address
        entry: dict[str, Any] = {
            "PrivateIpAddress": ip,
            "Primary": True if primary else item.get("Primary", False),
        }
        eip = eips.get(str(ip))
        if eip is not None:
            entry["Association"] = _association(eni, eip)
        elif primary and eni.public_ip:
            entry["Association"] = eni.association  # auto-assigned public IP
        items.append(entry)
    return items


def _unbind(eip: Any) -> None:
    """Disassociate one EIP; clear its ENI's ``public_ip`` if the EIP was on the primary IP."""
    eni = eip.eni
    if eni is not None and eni.public_ip == eip.public_ip:
        eni.public_ip = None
        instance = eni.instance
        if instance is not None and instance._state.name == "running":
            eni.check_auto_public_ip()
    eip.eni = None
    eip.instance = None
    eip.association_id = None
    setattr(eip, _PRIVATE_IP_ATTR, None)


def _raise(code: str, message: str) -> NoReturn:
    from moto.ec2.exceptions import EC2ClientError

    raise EC2ClientError(code, message)


# --- patched backend methods ------------------------------------------------------------


def _associate_address(
    self: Any,
    instance: Any = None,
    eni: Any = None,
    address: str | None = None,
    allocation_id: str | None = None,
    reassociate: bool = False,
    private_ip_address: str | None = None,
) -> Any:
    """``ElasticAddressBackend.associate_address`` with a private IP (see module docstring)."""
    from moto.ec2.exceptions import ResourceAlreadyAssociatedError
    from moto.ec2.utils import random_eip_association_id

    if address:
        eip = self.address_by_ip([address])[0]
    elif allocation_id:
        eip = self.address_by_allocation([allocation_id])[0]
    else:
        _raise("MissingParameter", "Invalid request, expect PublicIp/AllocationId parameter.")
    target = eni if eni is not None else (instance.nics.get(0) if instance is not None else None)
    if target is None:
        _raise("MissingParameter", "Invalid request, expect either instance or ENI.")
    private_ip = private_ip_address or target.private_ip_address
    if private_ip not in _eni_private_ips(target):
        _raise(
            "InvalidParameterValue",
            f"The private IP address {private_ip} is not assigned to network interface "
            f"{target.id}.",
        )
    if eip.eni is not None and eip.eni is not target and not reassociate:
        raise ResourceAlreadyAssociatedError(eip.public_ip)

    for other in list(self.addresses):
        if other is not eip and other.eni is target and bound_private_ip(other) == private_ip:
            _unbind(other)  # one EIP per private IP: the newcomer evicts the holder
    if eip.eni is not None:
        _unbind(eip)

    eip.eni = target
    eip.instance = target.instance
    setattr(eip, _PRIVATE_IP_ATTR, private_ip)
    if private_ip == target.private_ip_address:
        target.public_ip = eip.public_ip
    if eip.domain == "vpc":
        eip.association_id = random_eip_association_id()
    return eip


def _disassociate_address(
    self: Any, address: str | None = None, association_id: str | None = None
) -> None:
    """``ElasticAddressBackend.disassociate_address`` that leaves the ENI's other EIPs alone."""
    if address:
        eip = self.address_by_ip([address])[0]
    elif association_id:
        eip = self.address_by_association([association_id])[0]
    else:
        _raise("MissingParameter", "Invalid request, expect PublicIp/AssociationId parameter.")
    _unbind(eip)


# --- patched response handler ------------------------------------------------------------


def _associate_address_response(self: Any) -> Any:
    """``ElasticIPAddresses.associate_address`` that also reads ``PrivateIpAddress``."""
    from moto.core.responses import ActionResult

    params = self._get_params()
    instance = eni = None
    if "InstanceId" in params:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    elif "NetworkInterfaceId" in params:
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    else:
        _raise("MissingParameter", "Invalid request, expect InstanceId/NetworkId parameter.")

    reassociate = self._get_param("AllowReassociation", False)
    private_ip = self._get_param("PrivateIpAddress", None)

    self.error_on_dryrun()

    if "PublicIp" in params:
        eip = self.ec2_backend.associate_address(
            instance=instance,
            eni=eni,
            address=self._get_param("PublicIp"),
            reassociate=reassociate,
            private_ip_address=private_ip,
        )
    elif "AllocationId" in params:
        eip = self.ec2_backend.associate_address(
            instance=instance,
            eni=eni,
            allocation_id=self._get_param("AllocationId"),
            reassociate=reassociate,
            private_ip_address=private_ip,
        )
    else:
        _raise("MissingParameter", "Invalid request, expect PublicIp/AllocationId parameter.")
    return ActionResult({"AssociationId": eip.association_id})
