"""The metadata tree an IMDS double serves: one instance's standard items
(:func:`node_metadata`) and a directory's listing (:func:`listing`), keyed by path relative
to ``/latest/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MACS = "meta-data/network/interfaces/macs/"

# (mac, eni_id, device_number, primary_ip, secondary_ips, subnet_cidr)
InterfaceSpec = tuple[str, str, int, str, Sequence[str], str | None]


def node_metadata(
    instance_id: str, region: str, az: str, interfaces: Sequence[InterfaceSpec]
) -> dict[str, str]:
    """The standard metadata tree of one instance, keyed by path relative to ``/latest/``.

    ``local-ipv4s`` lists the primary first, then the secondaries, as EC2 does.
    """
    device0 = [spec for spec in interfaces if spec[2] == 0]
    if len(device0) != 1:
        raise ValueError("exactly one interface must have device number 0")
    data = {
        "meta-data/instance-id": instance_id,
        "meta-data/placement/region": region,
        "meta-data/placement/availability-zone": az,
        "meta-data/mac": device0[0][0].lower(),
        "meta-data/local-ipv4": device0[0][3],
    }
    for spec in interfaces:
        data.update(_interface_metadata(*spec))
    return data


def _interface_metadata(
    mac: str,
    eni_id: str,
    device_number: int,
    primary_ip: str,
    secondary_ips: Sequence[str],
    subnet_cidr: str | None,
) -> dict[str, str]:
    base = f"{MACS}{mac.lower()}/"
    data = {
        f"{base}mac": mac.lower(),
        f"{base}interface-id": eni_id,
        f"{base}device-number": str(device_number),
        f"{base}local-ipv4s": "\n".join([primary_ip, *secondary_ips]),
    }
    if subnet_cidr is not None:
        data[f"{base}subnet-ipv4-cidr-block"] = subnet_cidr
    return data


def listing(data: Mapping[str, str], directory: str) -> list[str] | None:
    """The entries of ``directory`` (``""`` is the root), or None if nothing is under it."""
    prefix = directory.rstrip("/") + "/" if directory.strip("/") else ""
    entries: set[str] = set()
    for key in data:
        if key.startswith(prefix) and len(key) > len(prefix):
            head, slash, _ = key[len(prefix) :].partition("/")
            entries.add(head + slash)
    return sorted(entries) or None
