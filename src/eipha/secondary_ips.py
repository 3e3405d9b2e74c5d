"""Put an ENI's secondary private IPs on the OS interface (docs/secondary-ips.md).

EC2 assigns secondary private IPs to the ENI but does not configure them on the instance's
interface (except on Amazon Linux, through amazon-ec2-net-utils). When a peer's EIP lands on
our secondary IP, packets arrive for an address the kernel does not have, and are dropped.

For each interface: read ``local-ipv4s`` with IMDSv2, subtract the primary, compare with the
interface, and plan: add what is missing, keep what is there, and — with ``--prune`` only —
remove addresses inside the ENI's subnet that the ENI no longer has. Never the primary, never
an address outside the subnet or IPv6, never after any IMDS error (every read happens before
the first change, and unknown is not empty).

Addresses are added as /32: no prefix route, no "secondary" flag tying them to the primary's
lifetime, and source-address selection for the subnet stays on the primary. This is what
amazon-ec2-net-utils does (``AddPrefixRoute=false``); the subnet route comes from the primary.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eipha import errors
from eipha.imds import ImdsClient
from eipha.local_interface import SYSFS_NET, interface_by_mac, read_mac
from eipha.model import Interface, sort_ips
from eipha.netlink import AddressPort, OsAddress

log = logging.getLogger(__name__)

PREFIXLEN = 32


@dataclass(frozen=True)
class Plan:
    ifname: str
    iface: Interface
    add: tuple[str, ...] = ()
    remove: tuple[OsAddress, ...] = ()
    keep: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # in the subnet, not on the ENI, kept (no --prune)
    notes: tuple[str, ...] = field(default=())

    @property
    def changes(self) -> bool:
        return bool(self.add or self.remove)


def plan(ifname: str, iface: Interface, present: Sequence[OsAddress], prune: bool) -> Plan:
    """What to add, remove and keep on ``ifname`` so it carries the ENI's secondaries (pure)."""
    wanted = set(iface.secondary_ips) - {iface.primary_ip}
    here = {a.ip for a in present}
    subnet = ipaddress.IPv4Network(iface.subnet_cidr) if iface.subnet_cidr else None
    stale = [
        a
        for a in present
        if a.ip not in wanted
        and a.ip != iface.primary_ip
        and subnet is not None
        and ipaddress.IPv4Address(a.ip) in subnet
    ]
    notes: tuple[str, ...] = ()
    if prune and subnet is None:
        notes = ("IMDS gives no subnet-ipv4-cidr-block for this ENI: nothing is pruned",)
    return Plan(
        ifname=ifname,
        iface=iface,
        add=sort_ips(wanted - here),
        remove=tuple(sorted(stale, key=lambda a: ipaddress.IPv4Address(a.ip))) if prune else (),
        keep=sort_ips(wanted & here),
        extra=() if prune else sort_ips(a.ip for a in stale),
        notes=notes,
    )


CAP_NET_ADMIN = 12


def can_change_addresses(status: Path = Path("/proc/self/status")) -> bool:
    """Does this process hold CAP_NET_ADMIN (root, or a unit granting just that)?"""
    try:
        lines = status.read_text().splitlines()
    except OSError:
        return os.geteuid() == 0
    eff = next((line.split()[1] for line in lines if line.startswith("CapEff:")), "0")
    return bool(int(eff, 16) >> CAP_NET_ADMIN & 1)


def in_host_netns() -> bool:
    """True in the machine's own network namespace (where systemd-networkd runs)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True


def managed_by(
    ifname: str,
    ifindex: int,
    root: Path = Path("/"),
    host_netns: Callable[[], bool] = in_host_netns,
) -> str | None:
    """Who else already manages the addresses of ``ifname``, if anyone."""
    drop_in = root / "run/systemd/network" / f"70-{ifname}.network.d"
    if drop_in.is_dir():
        return f"amazon-ec2-net-utils ({drop_in})"
    state = root / "run/systemd/netif/links" / str(ifindex)
    if not host_netns() or not state.is_file():
        return None
    try:
        lines = state.read_text().splitlines()
    except OSError:
        return None
    admin = next((line.split("=", 1)[1] for line in lines if line.startswith("ADMIN_STATE=")), "")
    if admin and admin not in ("unmanaged", "linger"):
        return f"systemd-networkd (ADMIN_STATE={admin} in {state})"
    return None


@dataclass(frozen=True)
class LocalEni:
    ifname: str
    iface: Interface


def discover(
    imds: ImdsClient,
    only: str | None,
    primary_ip_of: Callable[[str], str],
    sysfs: Path = SYSFS_NET,
) -> tuple[list[LocalEni], list[str]]:
    """Every local interface whose MAC the metadata knows (or just ``only``), with its ENI.
    All IMDS reads happen here, before anything changes. Returns targets and notes."""
    device0 = imds.mac()
    if only is not None:
        mac = read_mac(only, sysfs)
        if mac is None:
            raise errors.NotConfigured(f"interface {only} not found")
        if mac not in imds.macs():
            raise errors.NotConfigured(
                f"interface {only} ({mac}) has no ENI known to the instance metadata"
            )
        macs: Sequence[str] = [mac]
    else:
        macs = imds.macs()
    targets, notes = [], []
    for mac in macs:
        ifname = only or interface_by_mac(mac, sysfs)
        if ifname is None:
            notes.append(f"the ENI with MAC {mac} has no local interface (yet); skipped")
            continue
        primary = None if mac == device0 else primary_ip_of(imds.interface_id(mac))
        targets.append(LocalEni(ifname, imds.interface(mac, primary)))
    return targets, notes


def apply(p: Plan, port: AddressPort, index: int) -> list[str]:
    """Carry out a plan; EEXIST and EADDRNOTAVAIL are not errors."""
    done = []
    for ip in p.add:
        added = port.add(index, ip, PREFIXLEN)
        done.append(f"added {ip}/{PREFIXLEN}" if added else f"{ip} was already there")
    for address in p.remove:
        removed = port.remove(index, address.ip, address.prefixlen)
        done.append(
            f"removed {address.ip}/{address.prefixlen}"
            if removed
            else f"{address.ip} was already gone"
        )
    return done


def describe(p: Plan, dry_run: bool) -> list[str]:
    """What the plan says, one line each, for people."""
    head = f"{p.ifname} ({p.iface.eni_id}, primary {p.iface.primary_ip})"
    verb = "would add" if dry_run else "add"
    lines = [f"{head}: {verb} {ip}/{PREFIXLEN}" for ip in p.add]
    verb = "would remove" if dry_run else "remove"
    lines += [f"{head}: {verb} {a.ip}/{a.prefixlen} (no longer on the ENI)" for a in p.remove]
    lines += [
        f"{head}: {ip} is not on the ENI any more; kept (--prune removes it)" for ip in p.extra
    ]
    lines += [f"{head}: {note}" for note in p.notes]
    if not p.changes:
        carried = ", ".join(p.keep) or "no secondary IPs"
        lines.append(f"{head}: in sync ({carried})")
    return lines


@dataclass
class Result:
    lines: list[str] = field(default_factory=list)
    changed: int = 0
    skipped: int = 0


def sync(
    targets: Sequence[LocalEni],
    port: AddressPort,
    *,
    prune: bool,
    dry_run: bool,
    force: bool,
    root: Path = Path("/"),
) -> Result:
    """Plan and (unless ``dry_run``) apply every target, then check it is in sync."""
    result = Result()
    for target in targets:
        index = port.index(target.ifname)
        if index is None:
            raise errors.NotConfigured(f"interface {target.ifname} not found")
        owner = managed_by(target.ifname, index, root)
        if owner and not force:
            result.skipped += 1
            result.lines.append(
                f"{target.ifname}: managed by {owner}; leaving its addresses "
                "to it (--force to manage them anyway)"
            )
            continue
        p = plan(target.ifname, target.iface, port.addresses(index), prune)
        result.lines += describe(p, dry_run)
        if dry_run or not p.changes:
            continue
        for line in apply(p, port, index):
            log.info("%s: %s", target.ifname, line)
        result.changed += len(p.add) + len(p.remove)
        after = plan(target.ifname, target.iface, port.addresses(index), prune)
        if after.changes:
            raise errors.NetlinkFailure(
                f"{target.ifname} is still not in sync", "the kernel did not keep the change"
            )
    return result
