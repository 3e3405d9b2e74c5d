"""Pure pieces of drills and validate: the probe's gap arithmetic, the checklist's exit code,
the OS-interface checks."""

from __future__ import annotations

import pytest

from eipha.drill_probe import Sample, gap
from eipha.exitcodes import Exit
from eipha.model import Interface
from eipha.validate import Check, Status, check_os, exit_code, nonlocal_bind_hint


def samples(pattern: str, step: float = 0.1) -> list[Sample]:
    """'++--+' -> samples at 0.0, 0.1, ... ok where '+'."""
    return [Sample(i * step, c == "+", "200" if c == "+" else "503") for i, c in enumerate(pattern)]


@pytest.mark.parametrize(
    ("pattern", "since", "before", "failure", "after"),
    [
        ("+++--++", 0.25, 0.2, 0.3, 0.5),  # a gap after the move
        ("+++++++", 0.25, 0.2, None, 0.3),  # no gap at all
        ("---++", 0.0, None, 0.0, 0.3),  # failing from the start
        ("++---", 0.15, 0.1, 0.2, None),  # never recovered
        ("+-+--+", 0.25, 0.2, 0.3, 0.5),  # a failure before the move does not count
    ],
)
def test_gap(pattern, since, before, failure, after):
    g = gap(samples(pattern), since)
    got = tuple(
        None if s is None else round(s.at, 3)
        for s in (g.last_ok_before, g.first_failure, g.first_ok_after)
    )
    assert got == (before, failure, after)
    if failure is not None and after is not None:
        assert g.seconds == pytest.approx(after - failure)


def check(status: Status, code: Exit = Exit.OK) -> Check:
    return Check("x", status, "", code)


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([check(Status.PASS), check(Status.WARN), check(Status.SKIP)], Exit.OK),
        ([check(Status.FAIL, Exit.PRIVILEGE), check(Status.PASS)], Exit.PRIVILEGE),
        ([check(Status.FAIL, Exit.FAILURE), check(Status.FAIL, Exit.PRIVILEGE)], Exit.PRIVILEGE),
        (
            [check(Status.FAIL, Exit.PRIVILEGE), check(Status.FAIL, Exit.NOT_CONFIGURED)],
            Exit.NOT_CONFIGURED,
        ),
        ([check(Status.FAIL, Exit.FAILURE)], Exit.FAILURE),
    ],
)
def test_exit_code(checks, expected):
    assert exit_code(checks) == expected


IFACE = Interface("eni-0aaaaaaaaaaaaaaaa", "0a:00:00:00:00:0a", "10.0.0.11", ("10.0.0.12",))


def test_binding_ip_missing_on_the_os_is_a_warning_that_names_the_fix():
    checks = check_os(IFACE, ["10.0.0.11", "10.0.0.12"], "eth0", lambda _: {"10.0.0.11"})
    by_name = {c.name: c for c in checks}
    assert by_name["10.0.0.11 on eth0"].status is Status.PASS
    missing = by_name["10.0.0.12 on eth0"]
    assert missing.status is Status.WARN
    assert "eipha secondary-ips" in missing.detail


def test_unreadable_interface_is_a_warning():
    [only] = check_os(IFACE, ["10.0.0.11"], "eth0", lambda _: None)
    assert only.status is Status.WARN


@pytest.mark.parametrize(
    ("value", "missing", "status"),
    [("1", [], Status.PASS), ("0", [], Status.PASS), ("0", ["10.0.0.12"], Status.WARN)],
)
def test_nonlocal_bind_hint(tmp_path, value, missing, status):
    path = tmp_path / "ip_nonlocal_bind"
    path.write_text(value + "\n")
    assert nonlocal_bind_hint(missing, path).status is status
