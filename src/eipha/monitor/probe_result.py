"""What the peer monitor's probes return, shared by the health check and the quorum probes.

A probe (a health check, one ICMP echo or TCP connect to a quorum target) answers
:data:`Result`, ``(success, detail)``. :func:`guarded` turns a probe that raises into a
failure, so a probe thread never dies of one bug; a probe that raises is a failure.

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Result = tuple[bool, str]  # (success, detail: "exit 1", "HTTP 503", "connection refused", ...)


def guarded(probe: Callable[[], Result]) -> Result:
    """A probe's result, or a failure if it raised (a thread must not die of one bug)."""
    try:
        return probe()
    except Exception as exc:
        log.exception("probe failed")
        return False, f"probe failed: {exc!r}"
