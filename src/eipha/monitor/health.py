"""The peer monitor's local health check (docs/monitor.md): ``monitor.health_check``.

:class:`Health` runs ``monitor.health_check`` every ``interval`` seconds in a daemon thread
and turns its results into one flag with fall/rise hysteresis. It keeps its state behind a
:meth:`~Health.step` method that applies one result, so tests drive it without threads or
processes; the thread only calls the real check and then :meth:`~Health.step`. The quorum
probes are :mod:`eipha.monitor.quorum`.

Choices:

- Health before its first result is *healthy* (``known`` False): a restarted daemon, or a
  SIGHUP reload (which builds a new :class:`Health`), must not announce itself unhealthy for
  the length of one check, which would make the peer take its home EIPs at once. The first
  result then sets the state directly, without fall/rise (one success confirms a node that
  just started, so it holds its home EIPs at once; one failure makes it unhealthy at once);
  from then on ``fall`` consecutive failures turn it unhealthy and ``rise`` consecutive
  successes turn it healthy again. A check that raises is a failure.
- A command check runs ``/bin/sh -c COMMAND`` in a new session with no stdin/stdout/stderr;
  success is exit status 0. On timeout (``min(interval, 5)`` s) the whole process group is
  killed. A URL check is one GET sent directly (never through a proxy), redirects not
  followed; 2xx and 3xx are success. HTTPS certificates are verified (use a command check
  with ``curl -k`` for a self-signed certificate).

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from eipha.clock import Clock
from eipha.config import HealthCheck
from eipha.monitor.probe_result import Result, guarded

log = logging.getLogger(__name__)

MAX_CHECK_TIMEOUT = 5.0  # seconds; a health check gets min(interval, this)


def run_command(command: str, timeout: float) -> Result:
    """Run ``/bin/sh -c command``; success is exit 0. Never raises."""
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"cannot run /bin/sh: {exc.strerror or exc}"
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return False, f"timed out after {timeout:g} s"
    return code == 0, _exit_detail(code)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the check's whole process group (the shell leads it), then reap the shell."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _exit_detail(code: int) -> str:
    if code >= 0:
        return f"exit {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def get_url(url: str, timeout: float) -> Result:
    """One direct GET of ``url``; success is a 2xx or 3xx status. Never raises."""
    try:
        connection, path = _connection(url, timeout)
    except (ValueError, http.client.HTTPException) as exc:
        return False, f"bad URL ({exc})"
    try:
        connection.request("GET", path, headers={"User-Agent": "eipha-monitor"})
        status = connection.getresponse().status
    except TimeoutError:
        return False, f"timed out after {timeout:g} s"
    except ConnectionRefusedError:
        return False, "connection refused"
    except ssl.SSLError as exc:
        return False, f"TLS error: {exc.reason or exc}"
    except OSError as exc:
        return False, (exc.strerror or str(exc) or type(exc).__name__).lower()
    except http.client.HTTPException as exc:
        return False, f"bad HTTP response ({type(exc).__name__})"
    finally:
        connection.close()
    return 200 <= status < 400, f"HTTP {status}"


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """(an unopened connection, the path and query to GET); ValueError for a bad URL."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context), path
    return http.client.HTTPConnection(host, port, timeout=timeout), path


def check_of(spec: HealthCheck) -> Callable[[], Result]:
    """The real check for ``spec``: its command or its URL, with ``min(interval, 5)`` s."""
    timeout = min(spec.interval, MAX_CHECK_TIMEOUT)
    if spec.command is not None:
        command = spec.command
        return lambda: run_command(command, timeout)
    url = spec.url or ""
    return lambda: get_url(url, timeout)


class Health:
    """Whether this node is healthy: ``monitor.health_check`` with fall/rise hysteresis.

    ``spec`` None means no check: always healthy, and :meth:`start` does nothing. ``check``
    replaces the real command or URL check (tests)."""

    def __init__(
        self,
        spec: HealthCheck | None,
        *,
        check: Callable[[], Result] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.spec = spec
        self.fall, self.rise = (spec.fall, spec.rise) if spec is not None else (1, 1)
        self._check = check or (check_of(spec) if spec is not None else None)
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True
        self._known = spec is None
        self._against = 0  # consecutive results disagreeing with the current state
        self._detail = "no health check configured" if spec is None else "not checked yet"
        self._checked_at: float | None = None
        self._transitions = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def known(self) -> bool:
        """False until the first result (``healthy`` is True meanwhile; see the module)."""
        return self._known

    @property
    def last_detail(self) -> str:
        return self._detail

    @property
    def checked_at(self) -> float | None:
        """When the last result came in (the clock's time), None before the first."""
        return self._checked_at

    @property
    def transitions(self) -> int:
        """How many times ``healthy`` changed."""
        return self._transitions

    def step(self, ok: bool, detail: str) -> bool:
        """Apply one check result; True when it changed ``healthy``."""
        with self._lock:
            self._detail, self._checked_at = detail, self._clock()
            if not self._known:
                self._known, self._against = True, 0
                return self._turn(ok)
            if ok == self._healthy:
                self._against = 0
                return False
            self._against += 1
            if self._against < (self.rise if ok else self.fall):
                return False
            self._against = 0
            return self._turn(ok)

    def _turn(self, healthy: bool) -> bool:
        if healthy == self._healthy:
            return False
        self._healthy = healthy
        self._transitions += 1
        level, word = (logging.INFO, "healthy") if healthy else (logging.WARNING, "unhealthy")
        log.log(level, "health check: now %s (%s)", word, self._detail)
        return True

    def check_once(self) -> bool:
        """Run the check once and apply its result; True when ``healthy`` changed."""
        if self._check is None:
            return False
        return self.step(*guarded(self._check))

    def start(self) -> None:
        """Check now, then every ``interval`` seconds, in a daemon thread (once; idempotent)."""
        if self.spec is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eipha-health")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one check's timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(MAX_CHECK_TIMEOUT + 1.0)
            self._thread = None

    def _run(self) -> None:
        assert self.spec is not None
        while True:
            began = time.monotonic()
            self.check_once()
            if self._stop.wait(max(0.0, began + self.spec.interval - time.monotonic())):
                return
