"""``eipha keepalived fifo FIFO``: keepalived's notify FIFO, read as long as keepalived runs.

Events arrive in order, one per line: ``INSTANCE "VI_1" MASTER 100`` (and, with
``notify_priority_changes``, MASTER_PRIORITY / BACKUP_PRIORITY, which need nothing); each is
handled as a notify script's would be (:func:`eipha.agents.keepalived.handle`).

A notify script starts cold for every event: Python, botocore, an EC2 client and an IMDS
token come before its first API call. The FIFO reader lives as long as keepalived, so it
does that once, before the first event, and keeps its node (:class:`Warm`): a MASTER then
costs only the API calls of the start itself (and a new IMDS token once the old one has
expired).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from collections.abc import Iterator
from types import FrameType, TracebackType

from eipha.agents.keepalived import Event, handle, parse_line
from eipha.agents.setup import Setup
from eipha.config import Config
from eipha.errors import EiphaError, UsageError
from eipha.exitcodes import KEEPALIVED, Exit, lookup
from eipha.node import OVERRUN, Keeper, Node

log = logging.getLogger("eipha")

WARM_UP = 3.0  # at most this long before the FIFO reader reads its first line
PREPARE = WARM_UP - OVERRUN  # the deadline of getting ready that keeps to it


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
    """The FIFO reader's node, kept from one event to the next (:class:`eipha.node.Keeper`).

    :attr:`setup` loads the config afresh for every event and hands out the kept node while
    the config is unchanged (:attr:`reused` says so); a changed config gets a new one. After
    a failed action the node is dropped: what it kept (credentials, the connection, the IMDS
    token) may be what failed. The next one costs a new EC2 client, credentials and IMDS
    token; botocore stays imported.
    """

    def __init__(self, setup: Setup) -> None:
        self.base = setup
        self.keeper = Keeper(setup.build)
        self.reused = False
        self.used = False  # the last event got a node (a failure before that leaves it)
        self.setup = Setup(setup.load, self._build)

    def _build(self, config: Config) -> Node:
        self.used = True
        node = self.keeper.get(config)
        self.reused = self.keeper.reused
        return node

    def drop(self) -> None:
        self.keeper.drop()

    def prepare(self, path: str) -> None:
        """Build the node and warm it before the first event, within :data:`WARM_UP`
        seconds. If that fails (no config yet, IMDS or credentials not there at boot), say
        so: each event then starts from scratch until one succeeds, as a notify script
        would."""
        started = time.monotonic()
        try:
            config = self.base.load(None)
            node, instance = self._build(config).warm(min(config.timeout, PREPARE))
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
            instance,
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
