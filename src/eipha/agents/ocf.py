"""Pacemaker (OCF): ``eipha ocf ACTION``, parameters from ``OCF_RESKEY_*``.

Installed through the shim ``/usr/lib/ocf/resource.d/eipha/eipha`` (``ocf:eipha:eipha``).
Actions: start, stop, monitor (and status), meta-data, validate-all, usage. Every other
action is "unimplemented" (3), as ``ocf-tester`` expects of an agent without promote,
notify or migration.

* start: validate, then put the EIP here (0), or the OCF code of what went wrong.
* stop: 0 unless the EIP is provably still here (a failed stop gets the node fenced).
* monitor/status: 0 here, 7 not here, 1 when that cannot be learned (API or IMDS down) —
  never 7 for "unknown", which would let the cluster start the EIP elsewhere.
* validate-all: no network; the config loads and ``eip`` is a configured EIP, or
  ``private_ip`` says where it goes (0), else 6.

Every failure also prints ``ocf-exit-reason:<one line>`` on stderr (the prefix from
``OCF_EXIT_REASON_PREFIX`` when set). The deadline is the config's ``timeout``, cut short so
the action ends before Pacemaker's own operation timeout (``OCF_RESKEY_CRM_meta_timeout``).

The parameter table :data:`PARAMETERS` is the one source of the meta-data XML and of the
Markdown table in the docs (:func:`parameters_markdown`). This module imports nothing heavy
at load time: ``meta-data`` never loads botocore.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eipha import __version__
from eipha.errors import EiphaError, NotConfigured, UsageError
from eipha.exitcodes import OCF, Ocf, lookup

if TYPE_CHECKING:
    from eipha.agents.setup import Setup
    from eipha.config import Config

log = logging.getLogger("eipha")

Echo = Callable[[str], None]
REASON_PREFIX = "ocf-exit-reason:"
OVERRUN = 2.5  # seconds an action may run past its deadline, plus start-up: kept clear of
# Pacemaker's operation timeout


@dataclass(frozen=True)
class Parameter:
    """One OCF parameter, as meta-data and the docs show it."""

    name: str
    shortdesc: str
    longdesc: str
    type: str = "string"
    required: bool = False
    default: str | None = None
    unique: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "eip",
        "Elastic IP",
        "The Elastic IP this resource moves: a name from the eipha config (web-a), an "
        "allocation id (eipalloc-...) or a public IPv4 address (which costs one more "
        "DescribeAddresses per action).",
        required=True,
        unique=True,
    ),
    Parameter(
        "private_ip",
        "Private IP on this node",
        "Where the EIP goes on the node running the resource: primary, secondary (the lowest "
        "secondary private IP) or an IPv4 address of the node's ENI. Default: the config's "
        "binding rule (the primary IP on the EIP's home node, a spare secondary elsewhere). "
        "Needed when eip is not in the config; for an EIP in the config it may only restate "
        "the rule (a contradiction is an error, exit 6).",
    ),
    Parameter(
        "config",
        "eipha config file",
        "The eipha config file. Default: $EIPHA_CONFIG, else /etc/eipha/eipha.yaml "
        "(a missing default file means no config).",
        default="/etc/eipha/eipha.yaml",
    ),
)


@dataclass(frozen=True)
class Action:
    """One advertised action; timeouts outlast the config's default deadline (20 s)."""

    name: str
    timeout: str
    interval: str | None = None
    depth: str | None = None


ACTIONS: tuple[Action, ...] = (
    Action("start", "30s"),
    Action("stop", "30s"),
    Action("monitor", "30s", interval="20s", depth="0"),
    Action("status", "30s"),
    Action("validate-all", "10s"),
    Action("meta-data", "5s"),
)

SHORTDESC = "Moves an AWS Elastic IP to this node (eipha)"
LONGDESC = (
    "Moves an AWS Elastic IP onto this node with one AssociateAddress "
    "(AllowReassociation, onto the node's own private IP: no gap, no disassociate first), "
    "then reads it back until EC2 shows it there. stop disassociates it only if it is on "
    "this node, by the association just read. monitor is one DescribeAddresses, an exact "
    "match on this node's ENI and private IP. Credentials come from the instance role; "
    "HTTPS_PROXY and AWS_ENDPOINT_URL_EC2 can be set in /etc/default/eipha."
)
USAGE = (
    "usage: eipha ocf start|stop|monitor|status|meta-data|validate-all|usage\n"
    "Parameters come from the environment: OCF_RESKEY_eip (required), "
    "OCF_RESKEY_private_ip, OCF_RESKEY_config."
)


def meta_data() -> str:
    """The OCF meta-data XML (resource-agents' ra-api-1.dtd)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("resource-agent", name="eipha", version=__version__)
    ET.SubElement(root, "version").text = "1.0"
    ET.SubElement(root, "longdesc", lang="en").text = LONGDESC
    ET.SubElement(root, "shortdesc", lang="en").text = SHORTDESC
    parameters = ET.SubElement(root, "parameters")
    for p in PARAMETERS:
        flags = {"name": p.name, "required": str(int(p.required)), "unique": str(int(p.unique))}
        element = ET.SubElement(parameters, "parameter", flags)
        ET.SubElement(element, "longdesc", lang="en").text = p.longdesc
        ET.SubElement(element, "shortdesc", lang="en").text = p.shortdesc
        content = {"type": p.type} | ({"default": p.default} if p.default is not None else {})
        ET.SubElement(element, "content", content)
    actions = ET.SubElement(root, "actions")
    for a in ACTIONS:
        extra = {k: v for k, v in (("interval", a.interval), ("depth", a.depth)) if v is not None}
        ET.SubElement(actions, "action", {"name": a.name, "timeout": a.timeout} | extra)
    ET.indent(root)
    head = '<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">\n'
    return head + ET.tostring(root, encoding="unicode")


def parameters_markdown() -> str:
    """The parameter table as Markdown, for the docs (which a test keeps in step)."""
    lines = [
        "| parameter | required | default | description |",
        "|---|---|---|---|",
    ]
    for p in PARAMETERS:
        required = "yes" if p.required else "no"
        default = f"`{p.default}`" if p.default is not None else ""
        text = p.longdesc.replace("|", "\\|")
        lines.append(f"| `{p.name}` | {required} | {default} | {text} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the actions


@dataclass(frozen=True)
class Params:
    """The resource's parameters, and the deadline Pacemaker's timeout leaves us."""

    eip: str | None
    private_ip: str | None
    config: str | None
    cap: float | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Params:
        def value(name: str) -> str | None:
            return env.get(f"OCF_RESKEY_{name}") or None

        return cls(value("eip"), value("private_ip"), value("config"), _cap(env))

    def required_eip(self) -> str:
        if self.eip is None:
            raise NotConfigured("parameter eip is not set", "set it to the EIP to move")
        return self.eip

    def binding(self) -> str | None:
        from eipha.binding import parse_private_ip_option

        if self.private_ip is None:
            return None
        try:
            return parse_private_ip_option(self.private_ip)
        except UsageError as exc:
            raise NotConfigured(f"parameter private_ip={self.private_ip!r}", exc.why) from None


def _cap(env: Mapping[str, str]) -> float | None:
    """Seconds left for our deadline inside Pacemaker's operation timeout (milliseconds)."""
    try:
        milliseconds = int(env.get("OCF_RESKEY_CRM_meta_timeout", ""))
    except ValueError:
        return None
    return max(1.0, milliseconds / 1000 - OVERRUN)


def validate(params: Params, config: Config) -> tuple[str, str | None]:
    """The EIP and its binding option, when the parameters can work; no network. A public
    IP passes when the config has EIPs: which one it is takes a DescribeAddresses, at start.
    A ``private_ip`` for an EIP the config has must agree with its binding rule (here as
    far as that can be told without the node's addresses; start and monitor check all)."""
    from eipha import placements

    eip, private_ip = params.required_eip(), params.binding()
    selector = placements.select(eip, config)
    known = selector.spec is not None or (selector.public_ip is not None and bool(config.eips))
    if not known and private_ip is None:
        how = "set the config parameter or EIPHA_CONFIG"
        raise placements.not_in_config(eip, config, "private_ip", how)
    if private_ip is not None:
        placements.check_private_ip(selector, config, placements.node_name(config), private_ip)
    return eip, private_ip


def validate_all(params: Params, setup: Setup) -> Ocf:
    params.required_eip()  # before the config: an unset eip is the first thing to say
    validate(params, setup.load(params.config))
    return Ocf.SUCCESS


def start(params: Params, setup: Setup) -> Ocf:
    from eipha.agents import verdicts

    params.required_eip()
    config = setup.load(params.config)  # once per call: validate and the node share it
    eip, private_ip = validate(params, config)
    error = verdicts.started(setup.build(config), [eip], private_ip, params.cap)
    if error is not None:
        raise error
    return Ocf.SUCCESS


def stop(params: Params, setup: Setup) -> Ocf:
    from eipha.agents import verdicts

    if params.eip is None:
        log.error("parameter eip is not set; nothing to stop")
        return Ocf.SUCCESS
    error = verdicts.stopped(lambda: setup.node(params.config), [params.eip], params.cap)
    if error is not None:
        raise error
    return Ocf.SUCCESS


def monitor(params: Params, setup: Setup) -> Ocf:
    from eipha.agents import verdicts

    params.required_eip()
    config = setup.load(params.config)
    eip, private_ip = validate(params, config)
    here = verdicts.running(setup.build(config), [eip], private_ip, params.cap)
    return Ocf.SUCCESS if here else Ocf.NOT_RUNNING


HANDLERS: Mapping[str, Callable[[Params, Setup], Ocf]] = {
    "start": start,
    "stop": stop,
    "monitor": monitor,
    "status": monitor,
    "validate-all": validate_all,
}


def run(action: str, env: Mapping[str, str], setup: Setup, echo: Echo) -> int:
    """Do ``action``; the OCF exit code."""
    if action == "meta-data":
        echo(meta_data())
        return int(Ocf.SUCCESS)
    if action in ("usage", "help"):
        echo(USAGE)
        return int(Ocf.SUCCESS)
    handler = HANDLERS.get(action)
    if handler is None:
        usage = USAGE.splitlines()[0]
        if not action:
            return fail(env, Ocf.ERR_ARGS, f"no action given; {usage}")
        return fail(env, Ocf.ERR_UNIMPLEMENTED, f"action {action!r} is not implemented; {usage}")
    try:
        return int(handler(Params.from_env(env), setup))
    except EiphaError as exc:
        return fail(env, lookup(OCF, exc), str(exc))


def fail(env: Mapping[str, str], code: Ocf, reason: str) -> int:
    """Log ``reason`` and print it as the exit reason Pacemaker shows; ``code``."""
    log.error("%s", reason)
    prefix = env.get("OCF_EXIT_REASON_PREFIX") or REASON_PREFIX
    line = " ".join(reason.split())
    sys.stderr.write(f"{prefix}{line}\n")
    sys.stderr.flush()
    return int(code)
