"""``eipha validate``: is this node ready to take over? A checklist, each item with its fix.

Checks, in order: the config; the cluster managers' own files that name eipha
(``keepalived.conf``'s instances against ``keepalived.instances``, ``haresources``' EIPs and
nodes against the config); IMDSv2; this node's ENI; for each EIP the binding IP on the ENI
and on the OS interface (missing there is a warning, with the fix; so is a host where no
interface has the ENI's MAC, such as ``eipha sandbox``'s, where the OS side cannot be seen); the
``net.ipv4.ip_nonlocal_bind`` hint; and IAM permissions, asked with ``DryRun=True`` calls
(DryRunOperation = allowed, UnauthorizedOperation = denied). Nothing is changed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from eipha import ec2, errors, manager_files
from eipha.binding import private_ip_for
from eipha.config import Config
from eipha.exitcodes import Exit
from eipha.local_interface import interface_by_mac
from eipha.model import Binding, Interface, NodeIdentity
from eipha.node import Node
from eipha.ports import Ec2

NONLOCAL_BIND = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")
PLACEHOLDER_ASSOCIATION = "eipassoc-00000000000000000"


class Status(Enum):
    PASS = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    exit: Exit = Exit.OK  # what a failure of this check means for the exit code


# An OS interface's IPv4 addresses, or None when they cannot be read.
AddressReader = Callable[[str], "set[str] | None"]


def os_addresses(interface: str) -> set[str] | None:
    """IPv4 addresses on a local interface, from iproute2 (``ip -j -4 addr show``)."""
    try:
        out = subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", interface],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        links = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {a["local"] for link in links for a in link.get("addr_info", []) if "local" in a}


def _fail(name: str, exc: errors.EiphaError) -> Check:
    from eipha.exitcodes import CLI, lookup

    return Check(name, Status.FAIL, str(exc), lookup(CLI, exc))


def check_bindings(config: Config, node: NodeIdentity) -> tuple[list[Check], list[str]]:
    """Every configured EIP's binding IP on this node, checked against the ENI."""
    iface = node.interface
    rules = config.eip_rules()
    checks, ips = [], []
    for name in sorted(config.eips):
        try:
            ip = private_ip_for(name, node.node_name, rules, iface.primary_ip, iface.secondary_ips)
        except errors.NotConfigured as exc:
            checks.append(_fail(f"{name}: binding IP", exc))
            continue
        kind = "primary" if ip == iface.primary_ip else "secondary"
        if ip in iface.private_ips:
            checks.append(
                Check(
                    f"{name}: binding IP",
                    Status.PASS,
                    f"{ip} ({kind}) is assigned to {iface.eni_id}",
                )
            )
            ips.append(ip)
        else:
            checks.append(
                Check(
                    f"{name}: binding IP",
                    Status.FAIL,
                    f"{ip} is not assigned to {iface.eni_id} (it has "
                    f"{', '.join(iface.private_ips)}); assign it in EC2",
                    Exit.NOT_CONFIGURED,
                )
            )
    return checks, ips


def check_os(
    iface: Interface, ips: Sequence[str], name: str | None, read: AddressReader
) -> list[Check]:
    """Binding IPs present on the OS interface (missing: a warning naming the fix)."""
    local = name or interface_by_mac(iface.mac)
    if local is None:
        return [
            Check(
                "OS interface",
                Status.WARN,
                f"no local interface has {iface.eni_id}'s MAC {iface.mac}: this host is "
                "not that instance (a sandbox, IMDS from elsewhere, or a network namespace "
                "of its own), so whether the binding IPs are on its interface cannot be "
                "checked here",
            )
        ]
    present = read(local)
    if present is None:
        return [Check("OS interface", Status.WARN, f"could not read the addresses of {local}")]
    checks = []
    for ip in ips:
        if ip in present:
            checks.append(Check(f"{ip} on {local}", Status.PASS, "configured on the interface"))
        else:
            checks.append(
                Check(
                    f"{ip} on {local}",
                    Status.WARN,
                    f"not on {local}: traffic to it would be dropped; run "
                    "`eipha secondary-ips` (or ip addr add "
                    f"{ip}/32 dev {local})",
                )
            )
    missing = [ip for ip in ips if ip not in present]
    checks.append(nonlocal_bind_hint(missing))
    return checks


def nonlocal_bind_hint(missing: Sequence[str], path: Path = NONLOCAL_BIND) -> Check:
    try:
        value = path.read_text().strip()
    except OSError:
        return Check("net.ipv4.ip_nonlocal_bind", Status.SKIP, "cannot read it here")
    if value == "1":
        return Check(
            "net.ipv4.ip_nonlocal_bind",
            Status.PASS,
            "1: HAProxy may bind addresses the interface does not carry yet",
        )
    hint = (
        "0: fine when HAProxy binds *:PORT; if it binds the EIP's private IPs, set it to 1 "
        "or make sure they are on the interface"
    )
    return Check("net.ipv4.ip_nonlocal_bind", Status.WARN if missing else Status.PASS, hint)


def check_iam(this: Node, node: NodeIdentity) -> list[Check]:
    """Ask IAM with DryRun calls whether this node may do what eipha does."""
    gateway = this.ec2
    config = this.config
    spec = next(iter(sorted(config.eips.values(), key=lambda e: e.name)), None)
    binding = Binding(node.interface.eni_id, node.interface.primary_ip)
    probes: list[tuple[str, Callable[[], object]]] = [
        ("DescribeAddresses", lambda: gateway.describe_addresses(dry_run=True)),
        (
            "DescribeNetworkInterfaces",
            lambda: gateway.describe_network_interfaces(dry_run=True),
        ),
    ]
    if spec is not None:
        association = _association_of(gateway, spec.allocation_id)
        probes += [
            (
                "AssociateAddress",
                lambda: gateway.associate_address(spec.allocation_id, binding, dry_run=True),
            ),
            (
                "DisassociateAddress",
                lambda: gateway.disassociate_address(association, dry_run=True),
            ),
        ]
    return [_iam_check(action, probe) for action, probe in probes]


def _association_of(gateway: Ec2, allocation_id: str) -> str:
    """The EIP's current association, to ask about DisassociateAddress for it; a well-formed
    placeholder when there is none (or DescribeAddresses itself is denied)."""
    try:
        (address,) = gateway.describe_addresses([allocation_id])
    except (errors.EiphaError, ValueError):
        return PLACEHOLDER_ASSOCIATION
    return address.association_id or PLACEHOLDER_ASSOCIATION


def _iam_check(action: str, probe: Callable[[], object]) -> Check:
    name = f"IAM ec2:{action}"
    try:
        allowed = ec2.permitted(probe)
    except errors.EiphaError as exc:
        return Check(name, Status.WARN, f"could not tell: {exc}")
    if allowed:
        return Check(name, Status.PASS, "allowed (DryRunOperation)")
    return Check(
        name, Status.FAIL, "denied (UnauthorizedOperation): see `eipha iam-policy`", Exit.PRIVILEGE
    )


def check_monitor_key(path: str) -> Check:
    """The peer monitor's key file, read as the monitor would (never shown)."""
    from eipha.monitor import protocol

    try:
        key = protocol.load_key(path)
    except errors.EiphaError as exc:
        return _fail("monitor key", exc)
    return Check("monitor key", Status.PASS, f"{path}: {len(key)} bytes, owner-only")


@dataclass(frozen=True)
class ManagerFiles:
    """The cluster managers' files to cross-check with the config; ``named`` says a path was
    given explicitly (then it must exist), else it is read only when present."""

    keepalived_conf: str = manager_files.KEEPALIVED_CONF
    ha_dir: str = manager_files.HA_DIR
    keepalived_named: bool = False
    ha_named: bool = False


def _unreadable(name: str, path: str, exc: OSError, named: bool) -> list[Check]:
    if not named and isinstance(exc, FileNotFoundError):
        return []  # that manager is not used here
    why = exc.strerror or str(exc)
    if named:
        return [Check(name, Status.FAIL, f"cannot read {path} ({why})", Exit.NOT_CONFIGURED)]
    return [Check(name, Status.WARN, f"cannot read {path} ({why}); not cross-checked")]


def check_keepalived(config: Config, path: str, named: bool = False) -> list[Check]:
    """keepalived.conf's instances that run eipha against ``keepalived.instances``."""
    name = "keepalived.conf"
    try:
        found = manager_files.read_keepalived(Path(path))
    except OSError as exc:
        return _unreadable(name, path, exc, named)
    users = [*found.instances, *found.groups] if found.fifo else found.calling_eipha
    if not users:
        return [
            Check(
                name,
                Status.WARN,
                f"{path}: no vrrp_instance runs eipha (no notify line names eipha-notify, no "
                "vrrp_notify_fifo_script): keepalived will never move an EIP",
            )
        ]
    mapping = config.keepalived_instances
    where = config.path or "the config"
    if not mapping:
        eips = ", ".join(sorted(config.eips)) or "none configured"
        return [
            Check(
                name,
                Status.PASS,
                f"{path}: {', '.join(users)} run eipha; with no keepalived.instances in "
                f"{where}, each carries every EIP ({eips})",
            )
        ]
    checks = []
    listed = ", ".join(mapping)
    for instance in users:
        if instance in mapping:
            continue
        if found.fifo:
            checks.append(
                Check(
                    f"{name}: {instance}",
                    Status.WARN,
                    f"{path} defines {instance}, whose events reach eipha's FIFO reader, but "
                    f"keepalived.instances in {where} lists only {listed}: its MASTER moves "
                    "nothing (fine if it carries no EIP)",
                )
            )
        else:
            checks.append(
                Check(
                    f"{name}: {instance}",
                    Status.FAIL,
                    f"{path}: {instance} runs eipha-notify, but keepalived.instances in {where} "
                    f"lists only {listed}: a MASTER of {instance} would move nothing; add "
                    f"'{instance}: [EIP, ...]' under keepalived.instances",
                    Exit.NOT_CONFIGURED,
                )
            )
    defined = {*found.instances, *found.groups}
    for instance in mapping:
        if instance not in defined:
            checks.append(
                Check(
                    f"{name}: {instance}",
                    Status.WARN,
                    f"keepalived.instances in {where} lists {instance}, which {path} does not "
                    "define: its EIPs move only through the other instances",
                )
            )
    if not checks:
        carried = "; ".join(f"{i} -> {', '.join(mapping[i])}" for i in users)
        checks.append(Check(name, Status.PASS, f"{path}: {carried}"))
    return checks


def check_haresources(config: Config, ha_dir: str, named: bool = False) -> list[Check]:
    """Every ``eipha::EIP`` of haresources is an EIP the config knows, on a known node."""
    from eipha import placements

    path = str(Path(ha_dir) / "haresources")
    name = "haresources"
    try:
        resources = manager_files.read_haresources(Path(path))
    except OSError as exc:
        return _unreadable(name, path, exc, named)
    if not resources:
        return [Check(name, Status.WARN, f"{path}: no eipha:: resource; Heartbeat moves no EIP")]
    checks = []
    for r in resources:
        label = f"{name}: eipha::{r.eip}"
        try:
            selector = placements.select(r.eip, config)
        except errors.NotConfigured as exc:
            checks.append(
                Check(label, Status.FAIL, f"{path} line {r.line}: {exc}", Exit.NOT_CONFIGURED)
            )
            continue
        spec = selector.spec
        if spec is None and r.binding is None and selector.public_ip is None:
            checks.append(
                Check(
                    label,
                    Status.FAIL,
                    f"{path} line {r.line}: {r.eip} is not in {config.path or 'the config'}, "
                    f"so no rule says where it goes: name a configured EIP, or write "
                    f"eipha::{r.eip}::secondary (or ::primary, ::IP)",
                    Exit.NOT_CONFIGURED,
                )
            )
        elif config.nodes and r.node not in config.nodes:
            checks.append(
                Check(
                    label,
                    Status.FAIL,
                    f"{path} line {r.line}: node {r.node} is not in nodes: of "
                    f"{config.path or 'the config'} ({', '.join(config.nodes)}); Heartbeat "
                    "and eipha must use the same names (uname -n)",
                    Exit.NOT_CONFIGURED,
                )
            )
        elif spec is not None and spec.home != r.node:
            checks.append(
                Check(
                    label,
                    Status.WARN,
                    f"{path} line {r.line}: Heartbeat prefers {r.node} for {spec.name}, whose "
                    f"home is {spec.home}: at home it would sit on a secondary IP",
                )
            )
        else:
            checks.append(Check(label, Status.PASS, f"{path} line {r.line}: on {r.node}"))
    return checks


def run(
    this: Node, read: AddressReader = os_addresses, managers: ManagerFiles | None = None
) -> list[Check]:
    """The whole checklist; stops early only where later checks cannot run."""
    config = this.config
    files = managers or ManagerFiles()
    checks = [
        Check(
            "config",
            Status.PASS,
            f"{config.path or 'no config file'}: "
            f"{len(config.eips)} EIPs, {len(config.nodes)} nodes",
        )
    ]
    if config.monitor is not None:
        checks.append(check_monitor_key(config.monitor.key_file))
    checks += check_keepalived(config, files.keepalived_conf, files.keepalived_named)
    checks += check_haresources(config, files.ha_dir, files.ha_named)
    try:
        instance = this.imds.instance_id()
        checks.append(
            Check(
                "IMDSv2",
                Status.PASS,
                f"{this.imds.endpoint}: instance {instance}, region {this.region}",
            )
        )
    except errors.EiphaError as exc:
        return [*checks, _fail("IMDSv2", exc)]
    try:
        node = this.identity()
    except errors.EiphaError as exc:
        return [*checks, _fail("network interface", exc)]
    iface = node.interface
    checks.append(
        Check(
            "network interface",
            Status.PASS,
            f"{config.interface or 'device 0'}: {iface.eni_id}, primary "
            f"{iface.primary_ip}, secondaries "
            f"{', '.join(iface.secondary_ips) or 'none'}",
        )
    )
    bindings, ips = check_bindings(config, node)
    checks += bindings
    checks += check_os(iface, ips, config.interface, read)
    try:
        checks += check_iam(this, node)
    except errors.EiphaError as exc:
        checks.append(_fail("IAM", exc))
    return checks


def exit_code(checks: Sequence[Check]) -> Exit:
    """0 all pass; 6 config or ENI wrong; 4 a permission missing; 1 otherwise."""
    failed = {c.exit for c in checks if c.status is Status.FAIL}
    for code in (Exit.NOT_CONFIGURED, Exit.PRIVILEGE):
        if code in failed:
            return code
    return Exit.FAILURE if failed else Exit.OK


def render(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"[{c.status.value:>4}] {c.name:<{width}}  {c.detail}" for c in checks)
