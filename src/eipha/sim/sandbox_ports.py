"""The sandbox's fixed loopback ports: which of them cannot be bound, and the one-line error
that names each, what it is for and the way out."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from typing import Any

from eipha import errors
from eipha.sim.sandbox_layout import HOST, ROLES, Layout, SandboxError

Taken = tuple[int, str, OSError]  # a port, what it is for, why it cannot be bound


def taken_ports(layout: Layout) -> list[Taken]:
    """Every port of ``layout`` that cannot be bound now."""
    taken = []
    for port, role in zip(layout.ports, ROLES, strict=True):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind((HOST, port))
            except OSError as exc:
                taken.append((port, role, exc))
    return taken


def port_error(taken: Sequence[Taken]) -> errors.EiphaError:
    """One line for every port that cannot be bound: which, what for, and the way out."""
    names = [f"{port} ({role})" for port, role, _ in taken]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    ports = f"{HOST} port{'s' if len(names) > 1 else ''} {listed}"
    other = f"choose another base port with --port N (the sandbox uses N to N+{len(ROLES) - 1})"
    if any(exc.errno == errno.EACCES for _, _, exc in taken):
        return errors.PermissionDenied(
            f"cannot listen on {ports}", f"a port below 1024 needs root; {other}"
        )
    if all(exc.errno == errno.EADDRINUSE for _, _, exc in taken):
        verb = "is" if len(names) == 1 else "are"
        return SandboxError(
            f"cannot start the sandbox: {ports} {verb} in use",
            f"by another eipha sandbox, or another program: stop it, or {other}",
        )
    reasons = "; ".join(f"{port}: {exc.strerror or exc}" for port, _, exc in taken)
    return SandboxError(f"cannot start the sandbox: cannot listen on {ports}", reasons)


def listening(layout: Layout, index: int, start: Callable[[], Any]) -> Any:
    """``start()`` the server of port ``index``; a port taken since the check says which."""
    try:
        return start()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise port_error([(layout.ports[index], ROLES[index], exc)]) from None
        raise
