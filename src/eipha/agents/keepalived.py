"""keepalived: ``eipha keepalived notify ARG…`` and ``eipha keepalived fifo FIFO``.

keepalived's generic ``notify`` script is run with its configured arguments followed by
``INSTANCE|GROUP NAME STATE PRIORITY``; they are read from the end, so users may put their
own arguments first. ``notify_master_rx_lower_pri`` gets no extra arguments, so its line
spells the event out: ``eipha-notify INSTANCE VI_A MASTER_RX_LOWER_PRI`` (the 3-word form,
also accepted without a priority from any line).

MASTER and MASTER_RX_LOWER_PRI start the EIPs of that instance or group
(``keepalived.instances.NAME``; every configured EIP when that mapping is empty); an instance
the mapping does not list is an error, never "nothing to do" (a failover that silently does
not happen). BACKUP, FAULT, STOP and DELETED make no API call: the new master re-associates
atomically, and STOP scripts are killed after 1 s anyway; for an instance a MASTER could not
serve they log a warning.

Notify scripts are fire-and-forget: keepalived may run several at once and they may reach
their work in any order. A keepalived-wide ``flock`` serializes them, start is idempotent,
and a small ledger (the fork time of the last event handled per instance) makes an event
that was overtaken by a later one a no-op, so a stale MASTER never takes the EIPs back
after a later BACKUP. ``fifo`` mode (:mod:`eipha.agents.keepalived_fifo`) reads keepalived's
notify FIFO instead, where events arrive in order, one per line, and handles each the same
way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eipha import locking
from eipha.agents import verdicts
from eipha.clock import Deadline
from eipha.config import Config, not_loaded
from eipha.errors import EiphaError, NotConfigured, UsageError
from eipha.exitcodes import KEEPALIVED, Exit, lookup

if TYPE_CHECKING:
    from eipha.agents.setup import Setup

log = logging.getLogger("eipha")

TYPES = ("INSTANCE", "GROUP")
TAKE = ("MASTER", "MASTER_RX_LOWER_PRI")
LEAVE = ("BACKUP", "FAULT", "STOP", "DELETED")
CHANGES = ("MASTER_PRIORITY", "BACKUP_PRIORITY")  # FIFO only, with notify_priority_changes
USAGE = "usage: eipha keepalived notify [ARG...] INSTANCE|GROUP NAME STATE [PRIORITY]"
LOCK = "keepalived"  # EIPHA_RUN_DIR/locks/keepalived.lock
LEDGER = "keepalived.events"  # next to it
LOCK_WAIT = 60.0  # seconds an event waits for the ones before it
_PRIORITY = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class Event:
    """One VRRP transition. ``priority`` is None in the 3-word form (0 for a group)."""

    kind: str
    name: str
    state: str
    priority: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def takes(self) -> bool:
        return self.state in TAKE

    def __str__(self) -> str:
        priority = f" (priority {self.priority})" if self.priority is not None else ""
        return f"{self.kind} {self.name} is {self.state}{priority}"


def parse_args(args: Sequence[str]) -> Event:
    """The event at the end of a notify command line: ``TYPE NAME STATE PRIORITY``, or
    ``TYPE NAME STATE``; whatever comes before is the user's own and ignored."""
    for size in (4, 3):
        event = _event(args[-size:]) if len(args) >= size else None
        if event is not None:
            return event
    got = f"in {' '.join(args)!r}" if args else "given"
    raise UsageError(f"no VRRP event {got}", USAGE)


def parse_line(line: str) -> Event:
    """One line of keepalived's notify FIFO: ``INSTANCE "VI_1" MASTER 100``."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError("not a FIFO line", str(exc)) from None
    event = _event(words) if len(words) in (3, 4) else None
    if event is None:
        raise UsageError("not a VRRP event", 'expected: INSTANCE|GROUP "NAME" STATE PRIORITY')
    return event


def _event(words: Sequence[str]) -> Event | None:
    """keepalived writes TYPE and STATE in upper case; a hand-written line may not."""
    kind, name, state = words[0].upper(), words[1], words[2].upper()
    if kind not in TYPES or state not in TAKE + LEAVE + CHANGES or not name:
        return None
    if len(words) == 3:
        return Event(kind, name, state)
    if not _PRIORITY.fullmatch(words[3]):
        return None
    return Event(kind, name, state, int(words[3]))


def eips_for(name: str, config: Config) -> tuple[str, ...]:
    """The EIPs an instance or group carries (every configured EIP when the config maps
    none). :class:`NotConfigured` when the mapping leaves it out or there are no EIPs: a
    MASTER that does nothing would be a failover that silently does not happen."""
    where = config.path or "the config"
    if config.keepalived_instances:
        eips = config.keepalived_instances.get(name)
        if eips is None:
            listed = ", ".join(sorted(config.keepalived_instances))
            raise NotConfigured(
                f"{name} is not in keepalived.instances of {where}",
                f"it lists {listed}; add {name} there, or use one of those names in "
                "keepalived.conf",
            )
        return eips
    if not config.eips:
        raise NotConfigured("no EIPs to start", not_loaded(config) or f"{where} names none")
    return tuple(sorted(config.eips))


# --------------------------------------------------------------------------- ordering


@dataclass(frozen=True, order=True)
class Stamp:
    """When keepalived forked this notify process (clock ticks since boot, then PID): the
    order keepalived meant, whatever order the processes reach the lock in."""

    ticks: int
    pid: int
    boot: str = field(default="", compare=False)


def fork_stamp(proc: Path = Path("/proc")) -> Stamp | None:
    """This process's start time from ``/proc/self/stat`` (``exec`` keeps it, so the shim
    in between does not matter); None where there is no procfs."""
    try:
        stat = (proc / "self" / "stat").read_text()
        boot = (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
        fields = stat[stat.rindex(")") + 2 :].split()
        return Stamp(int(fields[19]), int(stat.split()[0]), boot)
    except (OSError, ValueError, IndexError):
        return None


def _ledger() -> Path:
    return locking.lock_dir() / LEDGER


def _read_ledger(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def overtaken_by(event: Event, stamp: Stamp | None, path: Path) -> str | None:
    """The state of a later event for the same instance that was already handled, if any."""
    if stamp is None:
        return None
    seen = _read_ledger(path).get(event.key)
    if not isinstance(seen, dict) or seen.get("boot") != stamp.boot:
        return None
    ticks, pid = seen.get("ticks"), seen.get("pid")
    if isinstance(ticks, int) and isinstance(pid, int) and (ticks, pid) > (stamp.ticks, stamp.pid):
        return str(seen.get("state"))
    return None


def remember(event: Event, stamp: Stamp | None, path: Path) -> None:
    """Record ``event`` as the latest handled for its instance (under the lock)."""
    if stamp is None:
        return
    data = _read_ledger(path)
    data[event.key] = {
        "boot": stamp.boot,
        "ticks": stamp.ticks,
        "pid": stamp.pid,
        "state": event.state,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(data, stream)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("keepalived: cannot record the event in %s (%s)", path, exc.strerror)


# --------------------------------------------------------------------------- handling


def handle(event: Event, setup: Setup, stamp: Stamp | None = None) -> int:
    """Act on one event; 0 done, 1 a start failed (already logged). Raises for failures
    before any EIP was tried (config, an instance the config does not list, lock, IMDS)."""
    if not event.takes:
        why = "a priority change" if event.state in CHANGES else "the new master moves the EIPs"
        log.info("keepalived: %s: nothing to do (%s)", event, why)
        if event.state in LEAVE:
            _check(event, setup)
        if stamp is not None:  # so that an earlier MASTER still on its way is skipped
            with locking.locked([LOCK], Deadline(LOCK_WAIT)):
                if overtaken_by(event, stamp, _ledger()) is None:
                    remember(event, stamp, _ledger())
        return int(Exit.OK)
    config = setup.load(None)
    eips = eips_for(event.name, config)
    with locking.locked([LOCK], Deadline(LOCK_WAIT)):
        return _take(event, eips, config, setup, stamp)


def _check(event: Event, setup: Setup) -> None:
    """A leaving state needs nothing, but the MASTER that will follow one day does: say now
    if it cannot work (an instance the config does not list, no config, a broken one)."""
    try:
        eips_for(event.name, setup.load(None))
    except EiphaError as exc:
        log.warning("keepalived: %s: %s; a MASTER for it would fail", event, exc)


def _take(
    event: Event, eips: Sequence[str], config: Config, setup: Setup, stamp: Stamp | None
) -> int:
    later = overtaken_by(event, stamp, _ledger())
    if later is not None:
        log.info("keepalived: %s: skipped; a later event (%s) was handled already", event, later)
        return int(Exit.OK)
    remember(event, stamp, _ledger())
    log.info("keepalived: %s: starting %s", event, ", ".join(eips))
    error = verdicts.started(setup.build(config), eips)
    return int(Exit.OK if error is None else lookup(KEEPALIVED, error))


def notify(args: Sequence[str], setup: Setup, stamp: Stamp | None) -> int:
    """``eipha keepalived notify ARG…``: 0 done, 1 failed, 2 no event in the arguments."""
    try:
        event = parse_args(args)
    except UsageError as exc:
        log.error("keepalived: %s", exc)
        return int(Exit.USAGE)
    try:
        return handle(event, setup, stamp)
    except EiphaError as exc:
        log.error("keepalived: %s: %s", event, exc)
        return int(lookup(KEEPALIVED, exc))
