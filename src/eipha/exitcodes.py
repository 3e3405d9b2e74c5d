"""Exit codes: one table per dialect, from error type to number.

LSB init-script numbering, so one binary serves systemd, Heartbeat and people;
OCF numbering for Pacemaker; keepalived, which ignores the code, gets the plainest table.
Front ends catch :class:`~eipha.errors.EiphaError` once and look the code up here; nothing
else in eipha decides an exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TypeVar

from eipha import errors


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # AWS error after retries, IMDS failure, deadline passed, race lost
    USAGE = 2  # bad command line
    NOT_RUNNING = 3  # status: the EIP is not on this node
    PRIVILEGE = 4  # UnauthorizedOperation, no credentials, not root; status: state unknown
    DEPENDENCY = 5  # a program or library is missing
    NOT_CONFIGURED = 6  # invalid config, unknown EIP, binding IP absent from the ENI


class Ocf(IntEnum):
    """OCF resource-agent return codes (resource-agents' ``ocf-returncodes``)."""

    SUCCESS = 0
    ERR_GENERIC = 1  # AWS or IMDS error, deadline passed, race lost; monitor: state unknown
    ERR_ARGS = 2  # called wrongly (no action)
    ERR_UNIMPLEMENTED = 3  # an action eipha does not have (promote, notify, migrate_to, ...)
    ERR_PERM = 4  # UnauthorizedOperation, no credentials
    ERR_INSTALLED = 5  # a program or library is missing
    ERR_CONFIGURED = 6  # a bad parameter or config, unknown EIP, binding IP absent from the ENI
    NOT_RUNNING = 7  # monitor: the EIP is not on this node (a clean stop)


Code = TypeVar("Code", Exit, Ocf)
Table = Sequence[tuple[type[errors.EiphaError], Exit]]
OcfTable = Sequence[tuple[type[errors.EiphaError], Ocf]]
GENERIC_FAILURE = 1  # in every dialect; what anything unexpected maps to

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


# Heartbeat v1 runs LSB resource scripts: start and stop by the CLI's table (which *is* LSB
# numbering), status by STATUS. Its stop has one more rule, in eipha.agents: a stop that
# cannot prove the EIP is still here succeeds.
LSB: Table = CLI
LSB_STATUS: Table = STATUS

# Pacemaker's OCF agent, every action: a state it could not learn is a generic error (1),
# never "not running" (7), which would let the cluster start the EIP elsewhere.
OCF: OcfTable = (
    (errors.UsageError, Ocf.ERR_ARGS),
    (errors.NotConfigured, Ocf.ERR_CONFIGURED),
    (errors.PermissionDenied, Ocf.ERR_PERM),
    (errors.DependencyMissing, Ocf.ERR_INSTALLED),
    (errors.Unknown, Ocf.ERR_GENERIC),
    (errors.RaceLost, Ocf.ERR_GENERIC),
    (errors.NetlinkFailure, Ocf.ERR_GENERIC),
    (errors.EiphaError, Ocf.ERR_GENERIC),
)

# keepalived ignores a notify script's exit code: 0 done, 2 called wrongly, 1 anything else.
KEEPALIVED: Table = (
    (errors.UsageError, Exit.USAGE),
    (errors.EiphaError, Exit.FAILURE),
)


def lookup(table: Sequence[tuple[type[errors.EiphaError], Code]], error: BaseException) -> Code:
    """The exit code ``table`` gives ``error``; anything unexpected is a generic failure."""
    for kind, code in table:
        if isinstance(error, kind):
            return code
    return type(table[0][1])(GENERIC_FAILURE)
