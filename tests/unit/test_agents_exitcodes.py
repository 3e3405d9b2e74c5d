"""The cluster managers' exit-code tables (eipha.exitcodes): every error class eipha has maps
to the documented code in each dialect — LSB for Heartbeat (start/stop and status), OCF for
Pacemaker, and keepalived's plain one."""

from __future__ import annotations

import inspect

import pytest

from eipha import errors
from eipha.exitcodes import KEEPALIVED, LSB, LSB_STATUS, OCF, Exit, Ocf, lookup

CASES = [
    # error,                                                   LSB, LSB status, OCF, keepalived
    (errors.UsageError("x"), 2, 2, Ocf.ERR_ARGS, 2),
    (errors.NotConfigured("unknown EIP"), 6, 6, Ocf.ERR_CONFIGURED, 1),
    (errors.ConfigError("invalid config", ["a: b"]), 6, 6, Ocf.ERR_CONFIGURED, 1),
    (
        errors.AwsNotConfigured("x", code="InvalidAllocationID.NotFound"),
        6,
        6,
        Ocf.ERR_CONFIGURED,
        1,
    ),
    (errors.PermissionDenied("not root"), 4, 4, Ocf.ERR_PERM, 1),
    (errors.AwsPermissionDenied("x", code="UnauthorizedOperation"), 4, 4, Ocf.ERR_PERM, 1),
    (errors.DependencyMissing("x"), 5, 5, Ocf.ERR_INSTALLED, 1),
    (errors.Unknown("x"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.MetadataError("imds down"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.MetadataNotFound("404"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.AwsError("throttled", code="RequestLimitExceeded"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.DeadlineExceeded("late"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.RaceLost("lost"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.NetlinkFailure("x"), 1, 4, Ocf.ERR_GENERIC, 1),
    (errors.EiphaError("other"), 1, 4, Ocf.ERR_GENERIC, 1),
]


@pytest.mark.parametrize(
    ("error", "lsb", "status", "ocf", "keepalived"), CASES, ids=lambda v: type(v).__name__
)
def test_tables(error, lsb, status, ocf, keepalived):
    assert lookup(LSB, error) == lsb
    assert lookup(LSB_STATUS, error) == status
    assert lookup(OCF, error) == ocf
    assert lookup(KEEPALIVED, error) == keepalived


def test_every_error_class_is_decided():
    """A new error class must be added to CASES, which forces a decision per dialect."""
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.EiphaError)
    }
    assert defined == {type(error) for error, *_ in CASES}


def test_types_and_the_fall_back_for_bugs():
    assert isinstance(lookup(OCF, errors.AwsError("x")), Ocf)
    assert isinstance(lookup(LSB, errors.AwsError("x")), Exit)
    assert lookup(OCF, RuntimeError("bug")) is Ocf.ERR_GENERIC
    assert lookup(LSB_STATUS, RuntimeError("bug")) is Exit.FAILURE
    assert lookup(KEEPALIVED, RuntimeError("bug")) is Exit.FAILURE


def test_ocf_numbers_are_resource_agents_own():
    assert [(c.name, c.value) for c in Ocf] == [
        ("SUCCESS", 0),
        ("ERR_GENERIC", 1),
        ("ERR_ARGS", 2),
        ("ERR_UNIMPLEMENTED", 3),
        ("ERR_PERM", 4),
        ("ERR_INSTALLED", 5),
        ("ERR_CONFIGURED", 6),
        ("NOT_RUNNING", 7),
    ]
