"""An HTTP probe that runs in the background during a drill, ten times a second.

Each probe is one GET with a short timeout, sent directly (never through a proxy: the point
is to go through the EIP). 2xx and 3xx answers count as success; anything else — an error
status, a refused or reset connection, a timeout — is a failure.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from eipha.errors import UsageError

INTERVAL = 0.1
TIMEOUT = 0.5


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic
    ok: bool
    detail: str  # "200", "503", "connection refused", "timed out", ...


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--probe {url!r} is not an http:// or https:// URL")


def probe_once(url: str, timeout: float = TIMEOUT) -> Sample:
    """One GET; never raises."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    began = time.monotonic()
    try:
        conn.request("GET", path, headers={"User-Agent": "eipha-drill"})
        status = conn.getresponse().status
        return Sample(began, 200 <= status < 400, str(status))
    except TimeoutError:
        return Sample(began, False, "timed out")
    except OSError as exc:
        return Sample(began, False, exc.strerror or type(exc).__name__)
    except http.client.HTTPException as exc:
        return Sample(began, False, type(exc).__name__)
    finally:
        conn.close()


class Prober:
    """Probe ``url`` every ``interval`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        url: str,
        interval: float = INTERVAL,
        timeout: float = TIMEOUT,
        once: Callable[[str, float], Sample] = probe_once,
    ) -> None:
        check_url(url)
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self._once = once
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eipha-probe")

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + self.interval + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._once(self.url, self.timeout)
            with self._lock:
                self._samples.append(sample)
            self._stop.wait(max(0.0, sample.at + self.interval - time.monotonic()))

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def wait_for(self, predicate: Callable[[list[Sample]], bool], timeout: float) -> bool:
        """Wait until ``predicate(samples)`` holds, at most ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self.samples):
                return True
            time.sleep(self.interval / 2)
        return predicate(self.samples)


@dataclass(frozen=True)
class Gap:
    """What clients saw around a move that started at ``since``."""

    last_ok_before: Sample | None
    first_failure: Sample | None
    first_ok_after: Sample | None

    @property
    def seconds(self) -> float | None:
        if self.first_failure is None or self.first_ok_after is None:
            return None
        return self.first_ok_after.at - self.first_failure.at


def gap(samples: list[Sample], since: float) -> Gap:
    """The last success before ``since``, the first failure after it, and the first success
    after that failure (or after ``since`` when nothing failed)."""
    before = [s for s in samples if s.at < since and s.ok]
    after = [s for s in samples if s.at >= since]
    failure = next((s for s in after if not s.ok), None)
    recovered_from = failure.at if failure else since
    recovered = next((s for s in after if s.ok and s.at >= recovered_from), None)
    return Gap(before[-1] if before else None, failure, recovered)
