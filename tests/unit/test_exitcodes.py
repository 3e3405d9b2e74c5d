"""Every error class maps to the documented exit code, in each dialect."""

from __future__ import annotations

import pytest

from eipha import errors
from eipha.exitcodes import CLI, STATUS, Exit, lookup

CASES = [
    # error, CLI code, status code
    (errors.UsageError("x"), 2, 2),
    (errors.ConfigError("invalid config", ["a: b"]), 6, 6),
    (errors.NotConfigured("unknown EIP"), 6, 6),
    (errors.AwsNotConfigured("x", code="InvalidAllocationID.NotFound"), 6, 6),
    (errors.PermissionDenied("not root"), 4, 4),
    (errors.AwsPermissionDenied("x", code="UnauthorizedOperation"), 4, 4),
    (errors.DependencyMissing("x"), 5, 5),
    (errors.MetadataError("imds down"), 1, 4),
    (errors.MetadataNotFound("404"), 1, 4),
    (errors.AwsError("throttled", code="RequestLimitExceeded"), 1, 4),
    (errors.DeadlineExceeded("late"), 1, 4),
    (errors.RaceLost("lost"), 1, 4),
    (errors.EiphaError("other"), 1, 4),
]


@pytest.mark.parametrize(("error", "cli", "status"), CASES, ids=lambda v: type(v).__name__)
def test_tables(error, cli, status):
    assert lookup(CLI, error) == cli
    assert lookup(STATUS, error) == status


def test_unexpected_exception_is_generic_failure():
    assert lookup(CLI, RuntimeError("bug")) == Exit.FAILURE


def test_errors_render_as_one_line():
    text = str(errors.AwsError("AssociateAddress failed", "RequestLimitExceeded: slow down"))
    assert text == "AssociateAddress failed (RequestLimitExceeded: slow down)"
    assert "\n" not in str(errors.ConfigError("invalid config x", ["a: b", "c: d"]))
