"""Logging for people and for cluster managers; nothing is configured at import.

stderr always (when there is one), in the one-line ``eipha: error: <what> (<why>)`` form,
and syslog too (timestamped, with our PID) when stderr is not a terminal and the local
syslog socket exists, which is how cluster managers run us (keepalived ignores a notify
script's exit code: the line in syslog is what an operator finds). botocore's own loggers
stay at WARNING: its debug output carries request headers, and credentials never go to a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

SYSLOG_SOCKET = "/dev/log"


# what ends a line (str.splitlines) or drives a terminal, escaped: a message stays one line
# whatever a path, a name or a value in it holds
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROLS |= {0x09: "\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def one_line(text: str) -> str:
    return text.translate(_CONTROLS)


class _Format(logging.Formatter):
    """``eipha: error: …`` for errors, ``eipha: warning: …``, ``eipha: …`` for the rest."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        prefix = "eipha: error: " if record.levelno >= logging.ERROR else "eipha: "
        if record.levelno == logging.WARNING:
            prefix = "eipha: warning: "
        record.message = prefix + one_line(record.getMessage())
        return super().formatMessage(record)


class _SyslogFormat(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.getMessage())
        return super().formatMessage(record)


def configure(verbosity: int = 0, ident: str = "eipha") -> None:
    """Set up the ``eipha`` logger: ``verbosity`` -1 quiet (errors only), 0 info, 1+ debug."""
    level = logging.ERROR if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger("eipha")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # started with descriptor 2 closed, Python has no sys.stderr: syslog is all there is
    tty = sys.stderr is not None and sys.stderr.isatty()
    if sys.stderr is not None:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(_Format())
        root.addHandler(stderr)
    if not tty and os.path.exists(SYSLOG_SOCKET):
        # a socket we may not write to: stderr still has everything
        with contextlib.suppress(OSError):
            root.addHandler(_syslog(ident))
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _syslog(ident: str) -> logging.Handler:
    import logging.handlers  # only when there is a syslog to talk to

    handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET)
    handler.ident = f"{ident}[{os.getpid()}]: "
    handler.setFormatter(_SyslogFormat("%(levelname)s %(message)s"))
    return handler
