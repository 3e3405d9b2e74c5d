"""Optional Prometheus metrics for the monitor (``monitor.metrics``), off by default.

A collector reads the daemon's counters when scraped, so nothing is counted twice:
heartbeats sent, received and rejected (by reason), takeovers, failbacks, EC2 calls and
errors, and gauges for health, quorum, what this node claims and how long ago each peer
was heard. Exposed on ``listen`` (an HTTP /metrics endpoint) and/or written to ``textfile``
for node_exporter's textfile collector. Needs prometheus-client (``pip install
'eipha[metrics]'``), imported only when metrics are configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from eipha import extras
from eipha.errors import NotConfigured

PREFIX = "eipha_monitor"
WARN_EVERY = 60.0  # seconds between two warnings that the textfile cannot be written

log = logging.getLogger(__name__)


def _client() -> Any:
    extras.require("metrics", "monitor.metrics")
    import prometheus_client
    import prometheus_client.core

    return prometheus_client


class Exporter:
    """Collects from ``snapshot()`` (the daemon's status document) at scrape time."""

    def __init__(
        self, snapshot: Callable[[], dict[str, Any]], textfile: str | None, listen: str | None
    ) -> None:
        self.prom = _client()
        self.snapshot = snapshot
        self.textfile = textfile
        self.warned_at: float | None = None
        self.registry = self.prom.CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        if listen:
            host, _, port = listen.rpartition(":")
            try:
                self.prom.start_http_server(int(port), addr=host, registry=self.registry)
            except OSError as exc:
                raise NotConfigured(f"cannot serve metrics on {listen}", exc.strerror) from None

    def collect(self) -> Iterator[Any]:
        core = self.prom.core
        s = self.snapshot()
        c = s["counters"]
        for name, value, text in (
            ("heartbeats_sent", c["sent"], "Heartbeats sent to peers"),
            ("heartbeats_received", c["received"], "Valid heartbeats received"),
            ("takeovers", c["takeovers"], "Foreign EIPs this node started claiming"),
            ("failbacks", c["failbacks"], "Foreign EIPs this node stopped claiming"),
            ("api_errors", c["api_errors"], "EC2 actions that failed"),
        ):
            yield core.CounterMetricFamily(f"{PREFIX}_{name}", text, value=value)
        rejected = core.CounterMetricFamily(
            f"{PREFIX}_heartbeats_rejected", "Heartbeats rejected, by reason", labels=["reason"]
        )
        for reason, count in sorted(c["rejected"].items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield core.GaugeMetricFamily(
            f"{PREFIX}_healthy", "1 when the local health check passes", value=int(s["healthy"])
        )
        yield core.GaugeMetricFamily(
            f"{PREFIX}_quorum", "1 when a quorum target answers", value=int(s["quorum"])
        )
        claimed = core.GaugeMetricFamily(
            f"{PREFIX}_claimed", "1 for each EIP this node claims", labels=["eip"]
        )
        for eip, info in sorted(s["eips"].items()):
            claimed.add_metric([eip], int(info["claimed_here"]))
        yield claimed
        heard = core.GaugeMetricFamily(
            f"{PREFIX}_peer_last_heard_seconds",
            "Seconds since the peer's last valid heartbeat",
            labels=["peer"],
        )
        for peer, info in sorted(s["peers"].items()):
            if info["last_heard"] is not None:
                heard.add_metric([peer], info["last_heard"])
        yield heard

    def write(self) -> None:
        """Write the textfile; a failure is a warning (at most one a minute), not a stop:
        the monitor's job is the EIPs, and the metrics are only a view of it."""
        if not self.textfile:
            return
        try:
            self.prom.write_to_textfile(self.textfile, self.registry)
        except OSError as exc:
            now = time.monotonic()
            if self.warned_at is None or now - self.warned_at >= WARN_EVERY:
                self.warned_at = now
                log.warning("cannot write metrics to %s: %s", self.textfile, exc.strerror)
