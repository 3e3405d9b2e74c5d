"""This node's own network interface: the local interface by name or MAC, and its ENI.

:func:`local_interface` finds the ENI eipha binds on: the device-0 ENI, or the one behind
the local interface named in the config, matched by MAC between ``/sys/class/net`` and the
instance metadata (read with :class:`~eipha.imds.ImdsClient`). :func:`read_mac` and
:func:`interface_by_mac` are the two sysfs lookups it and its callers need.

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eipha.errors import MetadataNotFound, NotConfigured
from eipha.imds import MACS, ImdsClient
from eipha.model import Interface

SYSFS_NET = Path("/sys/class/net")


def read_mac(interface_name: str, sysfs: Path = SYSFS_NET) -> str | None:
    """The MAC of a local interface from ``sysfs/IF/address``, lowercase; None if absent."""
    if not interface_name or "/" in interface_name or interface_name in (".", ".."):
        return None
    try:
        text = (sysfs / interface_name / "address").read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text.strip().lower() or None


def interface_by_mac(mac: str, sysfs: Path = SYSFS_NET) -> str | None:
    """The local interface whose MAC is ``mac``, if any."""
    if not sysfs.is_dir():
        return None
    for link in sorted(sysfs.iterdir()):
        if read_mac(link.name, sysfs) == mac.lower():
            return link.name
    return None


def local_interface(
    imds: ImdsClient,
    interface_name: str | None,
    *,
    primary_ip_for: Callable[[str], str] | None = None,
    sysfs: Path = SYSFS_NET,
    details: bool = True,
    secondaries: bool = True,
) -> Interface:
    """This node's ENI: the device-0 ENI, or the one behind the named local interface.

    The ENI is found by MAC. Its primary IP is ``local-ipv4`` for the device-0 ENI, otherwise
    ``primary_ip_for(eni_id)`` (the caller asks the EC2 API for the Primary flag).
    ``details`` and ``secondaries``: see :meth:`eipha.imds.ImdsClient.interface`.
    """
    device0 = imds.mac()
    if interface_name is None:
        return imds.interface(device0, imds.local_ipv4(), details=details, secondaries=secondaries)
    mac = read_mac(interface_name, sysfs)
    if mac is None:
        raise NotConfigured(f"interface {interface_name} not found", f"no {sysfs}/{interface_name}")
    if mac == device0:
        return imds.interface(mac, imds.local_ipv4(), details=details, secondaries=secondaries)
    try:
        eni_id = imds.interface_id(mac)
    except MetadataNotFound:
        raise NotConfigured(
            f"interface {interface_name} has no ENI known to the instance metadata",
            f"MAC {mac} is not under {MACS}",
        ) from None
    if primary_ip_for is None:
        raise ValueError(f"primary_ip_for is needed for {interface_name} (not the device-0 ENI)")
    return imds.interface(mac, primary_ip_for(eni_id), details=details, secondaries=secondaries)
