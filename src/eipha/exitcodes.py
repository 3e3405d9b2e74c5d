"""Exit codes: one table per dialect, from error type to number.

LSB init-script numbering, so one binary serves systemd, Heartbeat and people (DESIGN §3).
Front ends catch :class:`~eipha.errors.EiphaError` once and look the code up here; nothing
else in eipha decides an exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from eipha import errors


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # AWS error after retries, IMDS failure, deadline passed, race lost
    USAGE = 2  # bad command line
    NOT_RUNNING = 3  # status: the EIP is not on this node
    PRIVILEGE = 4  # UnauthorizedOperation, no credentials, not root; status: state unknown
    DEPENDENCY = 5  # a program or library is missing
    NOT_CONFIGURED = 6  # invalid config, unknown EIP, binding IP absent from the ENI


Table = Sequence[tuple[type[errors.EiphaError], Exit]]

# Looked up by the error's class hierarchy: the first entry the error is an instance of wins,
# so the more specific classes come first.
CLI: Table = (
    (errors.UsageError, Exit.USAGE),
    (errors.NotConfigured, Exit.NOT_CONFIGURED),
    (errors.PermissionDenied, Exit.PRIVILEGE),
    (errors.DependencyMissing, Exit.DEPENDENCY),
    (errors.Unknown, Exit.FAILURE),
    (errors.RaceLost, Exit.FAILURE),
    (errors.NetlinkFailure, Exit.FAILURE),
    (errors.EiphaError, Exit.FAILURE),
)

# `status`: an answer we could not get is "unknown" (4), and stdout still says `not running`.
STATUS: Table = (
    (errors.UsageError, Exit.USAGE),
    (errors.NotConfigured, Exit.NOT_CONFIGURED),
    (errors.PermissionDenied, Exit.PRIVILEGE),
    (errors.DependencyMissing, Exit.DEPENDENCY),
    (errors.Unknown, Exit.PRIVILEGE),
    (errors.EiphaError, Exit.PRIVILEGE),
)


def lookup(table: Table, error: BaseException) -> Exit:
    """The exit code ``table`` gives ``error``; anything unexpected is a generic failure."""
    for kind, code in table:
        if isinstance(error, kind):
            return code
    return Exit.FAILURE
