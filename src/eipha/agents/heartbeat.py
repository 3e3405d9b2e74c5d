"""Heartbeat v1 (haresources): ``eipha heartbeat EIP [BINDING] start|stop|status``.

``lb-a eipha::web-a`` in ``haresources`` makes Heartbeat run
``/etc/ha.d/resource.d/eipha web-a start`` (arguments first, action last); the shim there
runs this. ``eipha::web-a::secondary`` adds a second argument, a ``--private-ip`` value
(``primary``, ``secondary`` or an address) for use without a config.

Heartbeat reads the **text** status prints, not its exit code (ResourceManager's
``we_own_resource``): stdout is exactly ``running`` or ``not running``, whatever happens, and
nothing else ever. It has no timeout around scripts, so the config's deadline is the only
one. A stop that fails while status says running makes it reboot the node, so stop fails only
when the EIP is provably still here (:func:`eipha.agents.verdicts.stopped`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eipha import binding
from eipha.agents import verdicts
from eipha.errors import EiphaError, UsageError
from eipha.exitcodes import LSB, LSB_STATUS, Exit, lookup

if TYPE_CHECKING:
    from eipha.agents.setup import Setup

log = logging.getLogger("eipha")

Echo = Callable[[str], None]
ACTIONS = ("start", "stop", "status")
USAGE = "usage: eipha heartbeat EIP [primary|secondary|IP] start|stop|status"
RUNNING, NOT_RUNNING = "running", "not running"


@dataclass(frozen=True)
class Call:
    """One invocation: the EIP, where it goes (None: the config's rule), the action."""

    eip: str
    private_ip: str | None
    action: str


def parse(args: Sequence[str]) -> Call:
    """``EIP [BINDING] ACTION``, as Heartbeat passes them."""
    if len(args) not in (2, 3) or args[-1] not in ACTIONS:
        got = f"cannot use {' '.join(args)!r}" if args else "no EIP and action given"
        raise UsageError(f"heartbeat: {got}", USAGE)
    if len(args) == 2:
        return Call(args[0], None, args[-1])
    try:
        private_ip = binding.parse_private_ip_option(args[1])
    except UsageError as exc:
        raise UsageError(f"heartbeat: {args[1]!r} is not a binding", exc.why) from None
    return Call(args[0], private_ip, args[-1])


def run(args: Sequence[str], setup: Setup, echo: Echo) -> int:
    """Do what Heartbeat asked; the LSB exit code. ``echo`` writes one line to stdout."""
    try:
        call = parse(args)
    except UsageError as exc:
        log.error("%s", exc)
        if args and args[-1] == "status":
            echo(NOT_RUNNING)
        return int(Exit.USAGE)
    handlers = {"start": start, "stop": stop, "status": status}
    return handlers[call.action](call, setup, echo)


def status(call: Call, setup: Setup, echo: Echo) -> int:
    """``running`` (0) or ``not running`` (3); unknown (4) and not configured (6) print
    ``not running`` too."""
    try:
        here = verdicts.running(setup.node(), [call.eip], call.private_ip)
    except EiphaError as exc:
        log.error("%s", exc)
        echo(NOT_RUNNING)
        return int(lookup(LSB_STATUS, exc))
    echo(RUNNING if here else NOT_RUNNING)
    return int(Exit.OK if here else Exit.NOT_RUNNING)


def start(call: Call, setup: Setup, echo: Echo) -> int:
    """0 when the EIP is here; otherwise the LSB code of what went wrong."""
    try:
        error = verdicts.started(setup.node(), [call.eip], call.private_ip)
    except EiphaError as exc:
        error = exc
        log.error("%s", exc)
    return int(Exit.OK if error is None else lookup(LSB, error))


def stop(call: Call, setup: Setup, echo: Echo) -> int:
    """0 unless the EIP is provably still on this node (then 1)."""
    error = verdicts.stopped(setup.node, [call.eip])
    if error is None:
        return int(Exit.OK)
    log.error("%s", error)
    return int(lookup(LSB, error))
