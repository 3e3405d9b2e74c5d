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
after a later BACKUP. ``fifo`` mode reads keepalived's notify FIFO instead, where events
arrive in order, one per line: ``INSTANCE "VI_1" MASTER 100`` (and, with
``notify_priority_changes``, MASTER_PRIORITY / BACKUP_PRIORITY, which need nothing).

A notify script starts cold for every event: Python, botocore, an EC2 client and an IMDS
token come before its first API call. The FIFO reader lives as long as keepalived, so it
does that once, before the first event (:class:`Warm`), and a MASTER then costs only the
IMDS reads and API calls of the start itself (and a new IMDS token once the old one has
expired).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import selectors
import shlex
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from eipha import actions, agents, locking
from eipha.agents import Setup
from eipha.clock import Deadline
from eipha.config import Config, not_loaded
from eipha.errors import EiphaError, NotConfigured, UsageError
from eipha.exitcodes import KEEPALIVED, Exit, lookup
from eipha.wiring import Runtime

log = logging.getLogger("eipha")

TYPES = ("INSTANCE", "GROUP")
TAKE = ("MASTER", "MASTER_RX_LOWER_PRI")
LEAVE = ("BACKUP", "FAULT", "STOP", "DELETED")
CHANGES = ("MASTER_PRIORITY", "BACKUP_PRIORITY")  # FIFO only, with notify_priority_changes
USAGE = "usage: eipha keepalived notify [ARG...] INSTANCE|GROUP NAME STATE [PRIORITY]"
LOCK = "keepalived"  # EIPHA_RUN_DIR/locks/keepalived.lock
LEDGER = "keepalived.events"  # next to it
LOCK_WAIT = 60.0  # seconds an event waits for the ones before it
WARM_UP = 3.0  # at most this long before the FIFO reader reads its first line
PREPARE = WARM_UP - actions.OVERRUN  # the deadline of getting ready that keeps to it
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
    error = agents.start(setup.build(config, config.timeout), eips)
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


def fifo(path: str, setup: Setup) -> int:
    """``eipha keepalived fifo FIFO``: handle each line in order until EOF or SIGTERM (0)."""
    reader = Fifo(path)
    try:
        with reader:  # open first: lines written meanwhile wait in the FIFO
            warm = Warm(setup)
            warm.prepare(path)
            for line in reader.lines():
                handle_line(line, warm)
    except EiphaError as exc:
        log.error("keepalived: %s", exc)
        return int(lookup(KEEPALIVED, exc))
    log.info("keepalived: %s: %s; exiting", path, "SIGTERM" if reader.stopping else "end of file")
    return int(Exit.OK)


def handle_line(line: str, warm: Warm) -> None:
    """One FIFO line; a bad line or a failure is logged, never raised.

    A start that fails on a kept runtime is tried once more on a fresh one: what was kept
    (credentials, the connection, the IMDS token) may be what went stale since the last
    event, and keepalived will not send this one again.
    """
    if not line.strip():
        return
    try:
        event = parse_line(line)
    except UsageError as exc:
        log.warning("keepalived: ignoring FIFO line %r: %s", line, exc)
        return
    code = _attempt(event, warm)
    if code != Exit.OK and warm.reused:
        warm.drop()
        log.info("keepalived: %s: trying again with a new EC2 client and IMDS token", event)
        code = _attempt(event, warm)
    if code != Exit.OK and warm.used:
        warm.drop()


def _attempt(event: Event, warm: Warm) -> int:
    warm.reused = warm.used = False
    try:
        return handle(event, warm.setup)
    except EiphaError as exc:
        log.error("keepalived: %s: %s", event, exc)
    except Exception as exc:  # a bug must not end the reader: keepalived does not restart it
        log.error("keepalived: %s: internal error: %r (please report this)", event, exc)
    return int(Exit.FAILURE)


class Warm:
    """The FIFO reader's runtime, kept from one event to the next.

    :attr:`setup` loads the config afresh for every event and hands out the kept runtime
    while the config is unchanged, its deadline started over (:attr:`reused` says so); a
    changed config gets a new one. After a failed action the runtime is dropped: a worker
    thread that a deadline left behind may still be using it, and what it kept may be what
    failed. The next one costs a new EC2 client, credentials and IMDS token; botocore stays
    imported.
    """

    def __init__(self, setup: Setup) -> None:
        self.base = setup
        self.runtime: Runtime | None = None
        self.reused = False
        self.used = False  # the last event got a runtime (a failure before that leaves it)
        self.setup = Setup(setup.load, self._build)

    def _build(self, config: Config, seconds: float) -> Runtime:
        self.used = True
        rt = self.runtime
        if rt is None or rt.config != config:
            rt = self.runtime = self.base.build(config, seconds)
            self.reused = False
        else:
            rt.deadline.seconds = seconds
            rt.deadline.restart()
            self.reused = True
        return rt

    def drop(self) -> None:
        self.runtime = None

    def prepare(self, path: str) -> None:
        """Build the runtime before the first event, within :data:`WARM_UP` seconds. If
        that fails (no config yet, IMDS or credentials not there at boot), say so: each
        event then starts from scratch until one succeeds, as a notify script would."""
        started = time.monotonic()
        try:
            config = self.base.load(None)
            rt = self._build(config, min(config.timeout, PREPARE))
            node = actions.bounded(rt, "prepare", rt.warm)
        except Exception as exc:  # any failure: log it, and read the FIFO anyway
            self.drop()
            why = exc if isinstance(exc, EiphaError) else repr(exc)
            log.warning("keepalived: %s: not prepared ahead (%s); events start cold", path, why)
            return
        log.info(
            "keepalived: %s: ready in %.2f s: %s (%s) in %s",
            path,
            time.monotonic() - started,
            node.node_name,
            node.instance_id,
            node.region,
        )


# --------------------------------------------------------------------------- the FIFO


class Fifo:
    """keepalived's notify FIFO, read line by line until end of file or SIGTERM.

    Opened without blocking (keepalived holds the write end open for its whole life); the
    SIGTERM handler only sets :attr:`stopping`, and a wakeup pipe gets ``select`` out of
    its wait. Main thread only (signal handlers).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.stopping = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Fifo:
        # the handler first: once the FIFO is open, a SIGTERM must find it in place
        self.wake, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for fd in (self.wake, wake_w):
            self._stack.callback(os.close, fd)
        self._stack.callback(signal.set_wakeup_fd, signal.set_wakeup_fd(wake_w))
        self._stack.callback(
            signal.signal, signal.SIGTERM, signal.signal(signal.SIGTERM, self._term)
        )
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self._stack.close()
            raise EiphaError(f"cannot open the FIFO {self.path}", exc.strerror) from None
        self._stack.callback(os.close, self.fd)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _term(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stopped(self) -> bool:
        """Has SIGTERM arrived? (A call, so that it is read afresh after each yield.)"""
        return self.stopping

    def lines(self) -> Iterator[str]:
        """Each complete line (without its newline); a last unterminated one at EOF."""
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            selector.register(self.wake, selectors.EVENT_READ)
            while not self.stopping:
                chunk = self._read(selector)
                if chunk is None:
                    continue
                if not chunk:
                    break
                *complete, pending = (pending + chunk).split(b"\n")
                for raw in complete:
                    if self.stopped():
                        return
                    yield raw.decode("utf-8", "replace")
        if pending and not self.stopped():
            yield pending.decode("utf-8", "replace")

    def _read(self, selector: selectors.BaseSelector) -> bytes | None:
        """What the FIFO has: bytes, b"" at end of file, None for nothing yet."""
        ready = {key.fd for key, _ in selector.select()}
        if self.wake in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake, 512)
        if self.fd not in ready:
            return None
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return None
