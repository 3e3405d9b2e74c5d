"""The errors eipha raises, typed at the boundary where they happen.

Every error renders as one line, ``<what> (<why>)``. Front ends map the type to an exit
code through the tables in :mod:`eipha.exitcodes`; nothing here knows about exit codes.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence


class EiphaError(Exception):
    """Base class. ``what`` says what failed, ``why`` the reason (optional)."""

    def __init__(self, what: str, why: str | None = None) -> None:
        super().__init__(what, why)
        self.what = what
        self.why = why

    def __str__(self) -> str:
        return f"{self.what} ({self.why})" if self.why else self.what


class UsageError(EiphaError):
    """The command line is wrong."""


class NotConfigured(EiphaError):
    """Not configured: unknown EIP, binding IP absent from the ENI, allocation id EC2 does
    not know, a config file named explicitly that does not exist."""


class ConfigError(NotConfigured):
    """The config file is invalid. ``problems`` holds every ``path: message`` found."""

    def __init__(self, what: str, problems: Sequence[str] = ()) -> None:
        shown = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems else None
        super().__init__(what, shown)
        self.problems = tuple(problems)


class PermissionDenied(EiphaError):
    """Insufficient privilege: IAM says no, no credentials, or not root where root is needed."""


class DependencyMissing(EiphaError):
    """A program or library eipha needs is not installed."""


class Unknown(EiphaError):
    """The state of the world could not be learned or changed right now (an outage)."""


class MetadataError(Unknown):
    """IMDS is unreachable, refused IMDSv2, or answered with an error."""


class MetadataNotFound(MetadataError):
    """IMDS answered 404 for a path that must exist."""


class AwsError(Unknown):
    """An EC2 API call failed after its retries. ``code`` is the AWS error code if any."""

    def __init__(self, what: str, why: str | None = None, *, code: str | None = None) -> None:
        super().__init__(what, why)
        self.code = code


class AwsPermissionDenied(PermissionDenied):
    """EC2 answered UnauthorizedOperation / AuthFailure, or there are no credentials."""

    def __init__(self, what: str, why: str | None = None, *, code: str | None = None) -> None:
        super().__init__(what, why)
        self.code = code


class AwsNotConfigured(NotConfigured):
    """EC2 does not know an id eipha was given (allocation, ENI, address), or rejected a
    parameter as invalid: a configuration problem, not an outage."""

    def __init__(self, what: str, why: str | None = None, *, code: str | None = None) -> None:
        super().__init__(what, why)
        self.code = code


class NetlinkFailure(EiphaError):
    """The kernel refused an address change (netlink), for a reason other than privilege."""


class DeadlineExceeded(Unknown):
    """The action's deadline (``timeout``) passed before it finished."""


class RaceLost(EiphaError):
    """Another node associated the EIP after our AssociateAddress: we report, not fight."""


def region_hint(region: str) -> str:
    """The next step when EC2 does not know an id: it may be in another region."""
    return (
        f"looked in region {region}; if it is in another one, give --region or set region: "
        "in the config"
    )
