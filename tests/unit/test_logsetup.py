"""Logging: the one-line error form on stderr, and syslog when not on a terminal."""

from __future__ import annotations

import logging
import socket

import pytest

from eipha import logsetup


@pytest.fixture
def syslog_socket(tmp_path, monkeypatch):
    path = tmp_path / "log"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setattr(logsetup, "SYSLOG_SOCKET", str(path))
    yield sock
    sock.close()
    for handler in logging.getLogger("eipha").handlers:
        handler.close()
    logsetup.configure(0)


def test_errors_are_one_line_with_the_documented_prefix(capsys):
    logsetup.configure(0)
    logging.getLogger("eipha.x").error("%s", "AssociateAddress failed (RequestLimitExceeded: x)")
    logging.getLogger("eipha.x").info("web-a: nothing to do")
    logging.getLogger("eipha.x").debug("hidden at the default verbosity")
    err = capsys.readouterr().err
    assert err == (
        "eipha: error: AssociateAddress failed (RequestLimitExceeded: x)\n"
        "eipha: web-a: nothing to do\n"
    )


def test_quiet_keeps_only_errors(capsys):
    logsetup.configure(-1)
    logging.getLogger("eipha").info("chatter")
    logging.getLogger("eipha").error("bad")
    assert capsys.readouterr().err == "eipha: error: bad\n"


def test_syslog_when_stderr_is_not_a_terminal(syslog_socket, capsys):
    logsetup.configure(0)  # capsys: stderr is not a tty
    logging.getLogger("eipha").error("web-b: EC2 did not answer in time")
    datagram = syslog_socket.recv(4096).decode()
    assert "eipha[" in datagram
    assert "web-b: EC2 did not answer in time" in datagram
    assert "eipha: error: web-b" in capsys.readouterr().err


def test_botocore_debug_stays_off_even_with_verbose():
    logsetup.configure(3)
    assert not logging.getLogger("botocore").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("eipha").isEnabledFor(logging.DEBUG)
    logsetup.configure(0)
