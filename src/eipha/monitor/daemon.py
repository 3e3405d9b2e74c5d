"""``eipha monitor``: the peer monitor daemon (docs/monitor.md).

A loop of short cycles (at most 0.1 s each). In every cycle it reads the heartbeats that
arrived, sends its own when due, and asks the pure core (:func:`eipha.monitor.decide.decide`)
which EIPs this node should claim. A decision that changes something is logged as one INFO
sentence and carried out by a worker thread (``start`` for EIPs newly claimed; letting go
needs no call: the home node re-associates), so heartbeats never wait for the EC2 API.
Where the EIPs really are is read with one batched DescribeAddresses every 30 s and after
every change; a claimed EIP found elsewhere is started again (with backoff after failures).
Both go through one :class:`~eipha.node.Node`, kept for the monitor's life: one EC2 client,
one set of credentials and one IMDS token, renewed only when the config changes (SIGHUP) or
a call fails in a way that what it kept may have caused.

Signals only set flags: SIGTERM sends ``leaving`` so the peer takes over at once, then exits
(releasing the EIPs only with ``release_on_exit``); SIGHUP reloads the config, refusing an
invalid one and keeping the old. Anything unexpected inside a cycle is logged and survived.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eipha import errors, locking
from eipha.config import Config, MonitorSpec
from eipha.monitor import protocol, snapshot, sockets, state
from eipha.monitor.decide import Decision, Params, View, decide, describe
from eipha.monitor.health import Health
from eipha.monitor.metrics import Exporter
from eipha.monitor.peers import PeerBook
from eipha.monitor.quorum import Quorum
from eipha.node import Keeper

if TYPE_CHECKING:
    from eipha.node import Node

log = logging.getLogger("eipha.monitor")

CYCLE = 0.1
RECONCILE = 30.0
LEAVING_REPEAT = 3
MAX_BACKOFF = 30.0
REJECT_LOG_EVERY = 60.0
STATE_EVERY = 0.5


@dataclass
class Counters:
    sent: int = 0
    received: int = 0
    takeovers: int = 0
    failbacks: int = 0
    api_errors: int = 0
    api_calls: int = 0


@dataclass
class Claims:
    """What this node claims, since when, and what it has done about it."""

    hold: frozenset[str] = frozenset()
    held_since: dict[str, float] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)
    backoff: dict[str, float] = field(default_factory=dict)


class Monitor:
    def __init__(
        self,
        config: Config,
        build: Callable[[Config], Node],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        health: Health | None = None,
        quorum: Quorum | None = None,
    ) -> None:
        self.keeper = Keeper(build)
        self.clock = clock
        self.wall = wall
        self.started = clock()
        self.counters = Counters()
        self.claims = Claims()
        self.where: dict[str, str] = {}
        self.last_reasons: tuple[str, ...] = ()
        self.flags = {"stop": False, "reload": False}
        self.work: queue.Queue[tuple[str, tuple[str, ...]]] = queue.Queue()
        self.reconcile_at = 0.0
        self.state_at = 0.0
        self.rejected_logged: dict[str, float] = {}
        self.exporter: Exporter | None = None
        self.links: dict[tuple[str, int], socket.socket] = {}
        self._configure(config, health, quorum)

    # -- configuration ----------------------------------------------------------------------

    def _configure(self, config: Config, health: Health | None, quorum: Quorum | None) -> None:
        if config.monitor is None:
            raise errors.NotConfigured("the config has no monitor: section")
        me = config.node_name or os.uname().nodename
        if me not in config.nodes:
            raise errors.NotConfigured(
                f"this node ({me}) is not one of nodes:", "set node_name in the config"
            )
        spec: MonitorSpec = config.monitor
        self.config, self.spec, self.me = config, spec, me
        self.params = Params.from_spec(spec)
        self.key = protocol.load_key(spec.key_file)
        peers = [n for n in config.nodes if n != me]
        self.peer_addresses = {n: (config.nodes[n].address or "", spec.port) for n in peers}
        self.book = PeerBook.of(peers, spec.dead_after)
        self.sender = protocol.Sender(me, self.key)
        self.receiver = protocol.Receiver(
            self.key, peers, max_skew=max(5.0, spec.dead_after), clock=self.wall, me=me
        )
        self.homes = {name: eip.home for name, eip in config.eips.items()}
        self.health = health or Health(spec.health_check)
        # A quorum answer counts for half of dead_after: by the time a silent peer is called
        # dead, our own last proof of a working network is newer than its last heartbeat.
        self.quorum = quorum or Quorum(
            spec.quorum, interval=spec.interval, window=spec.dead_after / 2
        )
        # metrics are set up once; a reload does not move them (restart to change them)
        if self.exporter is None and (spec.metrics_textfile or spec.metrics_listen):
            self.exporter = Exporter(
                lambda: self.snapshot(self.clock()), spec.metrics_textfile, spec.metrics_listen
            )

    def reload(self, load: Callable[[], Config]) -> None:
        """SIGHUP: take a new config if it is valid and keeps this node and key; else keep."""
        try:
            config = load()
            if config.monitor is None:
                raise errors.NotConfigured("the new config has no monitor: section")
            protocol.load_key(config.monitor.key_file)
        except errors.EiphaError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        old_health, old_quorum = self.health, self.quorum
        self._configure(config, None, None)
        old_health.stop()
        old_quorum.stop()
        self.health.start()
        self.quorum.start()
        log.info("reloaded %s", config.path)

    # -- the loop ---------------------------------------------------------------------------

    def run(self, sock: socket.socket | None = None) -> int:
        locking.private_dir(state.path().parent)  # refuse an unsafe run directory up front
        # nothing this daemon writes (the state file, the metrics textfile) may ever be
        # writable by group or others, whatever umask it was started with
        os.umask(os.umask(0o022) | 0o022)
        sock = sock or sockets.listen(self.config.nodes[self.me].address or "", self.spec.port)
        for sig, flag in (
            (signal.SIGTERM, "stop"),
            (signal.SIGINT, "stop"),
            (signal.SIGHUP, "reload"),
        ):
            signal.signal(sig, lambda *_args, _f=flag: self.flags.__setitem__(_f, True))
        worker = threading.Thread(target=self._worker, daemon=True, name="eipha-monitor-api")
        worker.start()
        self.health.start()
        self.quorum.start()
        log.info(
            "monitor of %s started: peers %s, port %d, dead_after %g s",
            self.me,
            ", ".join(self.peer_addresses) or "none",
            self.spec.port,
            self.spec.dead_after,
        )
        next_send = self.clock()
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        try:
            while not self.flags["stop"]:
                self._link(sock, selector)
                next_send = self._cycle(sock, selector, next_send)
        finally:
            self._leave(sock)
            self.health.stop()
            self.quorum.stop()
            selector.close()
            for link in self.links.values():
                link.close()
            sock.close()
        return 0

    def _link(self, sock: socket.socket, selector: selectors.BaseSelector) -> None:
        """One more socket per peer (see :func:`eipha.monitor.sockets.relink`); redone when
        a reload changes the peers."""
        wanted = {a for a in self.peer_addresses.values() if a[0]}
        sockets.relink(self.links, wanted, sock, selector)

    def _cycle(
        self, sock: socket.socket, selector: selectors.BaseSelector, next_send: float
    ) -> float:
        if self.flags["reload"]:
            self.flags["reload"] = False
            from eipha import config as cfg

            self.reload(lambda: cfg.load(self.config.path))
        try:
            wait = max(0.0, min(CYCLE, next_send - self.clock()))
            ready = [key.fileobj for key, _ in selector.select(wait)]
            # the peers' own sockets first: they hold nothing but the peers' datagrams
            for readable in sorted(ready, key=lambda r: r is sock):
                if isinstance(readable, socket.socket):
                    self._receive(readable)
            now = self.clock()
            if now >= next_send:
                self._send(sock, leaving=False)
                next_send = max(next_send + self.spec.interval, now)
            self._decide(now)
            if now >= self.reconcile_at:
                self.reconcile_at = now + RECONCILE
                self.work.put(("reconcile", ()))
            self._retry(now)
            if now >= self.state_at:
                self.state_at = now + STATE_EVERY
                state.write(self.snapshot(now))
                if self.exporter is not None:
                    self.exporter.write()
        except Exception:  # a bug must not take the monitor down: log it and go on
            log.exception("unexpected error in a monitor cycle; continuing")
            time.sleep(CYCLE)
        return next_send

    def _receive(self, sock: socket.socket) -> None:
        changed = False
        for data, source in sockets.datagrams(sock):
            result = self.receiver.accept(data, source)
            if isinstance(result, protocol.Rejection):
                self._rejected(result)
                continue
            self.counters.received += 1
            changed |= self.book.heard(result, self.clock())
        if changed:
            self.reconcile_at = 0.0  # a transition: look at EC2 soon

    def _rejected(self, rejection: protocol.Rejection) -> None:
        now = self.clock()
        if now - self.rejected_logged.get(rejection.reason, -REJECT_LOG_EVERY) >= REJECT_LOG_EVERY:
            self.rejected_logged[rejection.reason] = now
            log.warning(
                "rejected a heartbeat from %s: %s (%s); %d so far",
                rejection.source or "?",
                rejection.reason,
                rejection.detail,
                self.receiver.counts.get(rejection.reason, 0),
            )

    def _send(self, sock: socket.socket, leaving: bool) -> None:
        datagram = self.sender.next(
            self.health.healthy and not leaving, self.claims.hold, leaving, self.wall()
        )
        self.counters.sent += sockets.send_to_all(sock, datagram, self.peer_addresses.values())

    # -- deciding and acting ------------------------------------------------------------------

    def view(self, now: float) -> View:
        self.book.expire(now)
        return View(
            self.me,
            self.started,
            self.health.healthy,
            self.quorum.ok,
            dict(self.book.views),
            self.homes,
            dict(self.claims.held_since),
        )

    def _decide(self, now: float) -> Decision:
        decision = decide(self.view(now), self.params, now)
        old, new = self.claims.hold, decision.hold
        if new != old:
            log.info("%s", describe(decision))
            self.last_reasons = decision.reasons
            for eip in new - old:
                if self.homes.get(eip) != self.me:
                    self.claims.held_since[eip] = now
                    self.counters.takeovers += 1
            for eip in old - new:
                if self.claims.held_since.pop(eip, None) is not None:
                    self.counters.failbacks += 1
            self.claims.hold = new
            self.state_at = 0.0
            if new - old:
                self.work.put(("start", tuple(sorted(new - old))))
            self.reconcile_at = min(self.reconcile_at, now + 1.0)
        return decision

    def _retry(self, now: float) -> None:
        due = [e for e, at in self.claims.retry_at.items() if at <= now and e in self.claims.hold]
        for eip in due:
            del self.claims.retry_at[eip]
            self.work.put(("start", (eip,)))

    def _worker(self) -> None:
        while True:
            kind, eips = self.work.get()
            try:
                if kind == "start":
                    self._start(eips)
                else:
                    self._reconcile()
            except errors.EiphaError as exc:
                self.counters.api_errors += 1
                log.error("reconcile failed, trying again in %.0f s: %s", RECONCILE, exc)
            except Exception:
                log.exception("unexpected error in the EC2 worker; continuing")

    def _start(self, eips: tuple[str, ...]) -> None:
        eips = tuple(e for e in eips if e in self.claims.hold)
        if not eips:
            return
        self.counters.api_calls += 1
        try:
            outcomes = self._node().start(eips)
        except errors.EiphaError as exc:
            self._failed(eips, exc)
            return
        for outcome in outcomes:
            if outcome.error is None:
                log.info("%s", outcome.message)
                self.claims.backoff.pop(outcome.target.label, None)
            else:
                self._failed((outcome.target.label,), outcome.error)

    def _node(self) -> Node:
        """The monitor's one node (a new one after a config change)."""
        return self.keeper.get(self.config)

    def _failed(self, eips: tuple[str, ...], exc: errors.EiphaError) -> None:
        self.counters.api_errors += 1
        if isinstance(exc, errors.AwsPermissionDenied):  # credentials may have gone stale
            self.keeper.drop()
        for eip in eips:
            delay = min(MAX_BACKOFF, self.claims.backoff.get(eip, 1.0) * 2)
            self.claims.backoff[eip] = delay
            self.claims.retry_at[eip] = self.clock() + delay
            log.error("%s: start failed, retrying in %.0f s: %s", eip, delay, exc)

    def _reconcile(self) -> None:
        """One batched DescribeAddresses: where is every EIP; restart claimed ones elsewhere."""
        self.counters.api_calls += 1
        try:
            seen = self._node().survey(sorted(self.homes))
        except errors.AwsPermissionDenied:
            self.keeper.drop()
            raise
        self.where = {s.label: s.address.where() for s in seen}
        astray = [s.label for s in seen if s.label in self.claims.hold and not s.here]
        if astray:
            log.info("reconcile: %s claimed here but not here in EC2; starting", ", ".join(astray))
            self._start(tuple(astray))

    def _leave(self, sock: socket.socket) -> None:
        """Tell the peers we are leaving, so they take over at once."""
        for _ in range(LEAVING_REPEAT):
            self._send(sock, leaving=True)
            time.sleep(0.02)
        log.info(
            "leaving: told %s; EIPs stay where they are%s",
            ", ".join(self.peer_addresses) or "nobody",
            "" if not self.spec.release_on_exit else " (release_on_exit: releasing)",
        )
        if self.spec.release_on_exit and self.claims.hold:
            self._node().stop(sorted(self.claims.hold))
        state.remove()

    # -- status -----------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        """The status document (:func:`eipha.monitor.snapshot.of`)."""
        return snapshot.of(self, now)


def node_factory(region: str | None) -> Callable[[Config], Node]:
    """Nodes over the real adapters, with ``--region``."""

    def make(config: Config) -> Node:
        from eipha import wiring

        return wiring.node(config, region=region)

    return make
