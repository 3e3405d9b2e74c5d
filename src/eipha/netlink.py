"""IPv4 addresses on local interfaces, through the kernel's netlink API (pyroute2).

pyroute2 is imported inside :func:`open_netlink` only, so no other command pays for it.
Adding an address that is there (EEXIST) and removing one that is not (EADDRNOTAVAIL) are not
errors: both mean the interface is already as asked.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from eipha.errors import DependencyMissing, NetlinkFailure, PermissionDenied


@dataclass(frozen=True)
class OsAddress:
    ip: str
    prefixlen: int


class AddressPort(Protocol):
    def index(self, ifname: str) -> int | None: ...

    def addresses(self, index: int) -> list[OsAddress]: ...

    def add(self, index: int, ip: str, prefixlen: int) -> bool: ...

    def remove(self, index: int, ip: str, prefixlen: int) -> bool: ...


class Netlink:
    """:class:`AddressPort` over a pyroute2 ``IPRoute`` socket."""

    def __init__(self, ipr: Any, netlink_error: type[Exception]) -> None:
        self.ipr = ipr
        self.error = netlink_error

    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    def addresses(self, index: int) -> list[OsAddress]:
        with self._translate("reading the addresses"):
            messages = self.ipr.get_addr(index=index, family=socket.AF_INET)
        return [OsAddress(str(m.get_attr("IFA_ADDRESS")), int(m["prefixlen"])) for m in messages]

    def add(self, index: int, ip: str, prefixlen: int) -> bool:
        """Add ``ip/prefixlen``; False if it was already there."""
        try:
            with self._translate(f"adding {ip}/{prefixlen}", ok=errno.EEXIST):
                self.ipr.addr("add", index=index, address=ip, prefixlen=prefixlen)
        except _AlreadyDone:
            return False
        return True

    def remove(self, index: int, ip: str, prefixlen: int) -> bool:
        """Remove ``ip/prefixlen``; False if it was not there."""
        try:
            with self._translate(f"removing {ip}/{prefixlen}", ok=errno.EADDRNOTAVAIL):
                self.ipr.addr("del", index=index, address=ip, prefixlen=prefixlen)
        except _AlreadyDone:
            return False
        return True

    @contextmanager
    def _translate(self, doing: str, ok: int | None = None) -> Iterator[None]:
        try:
            yield
        except self.error as exc:
            code = getattr(exc, "code", None)
            if code == ok:
                raise _AlreadyDone from None
            if code in (errno.EPERM, errno.EACCES):
                raise PermissionDenied(f"{doing} was refused", "run as root") from None
            raise NetlinkFailure(f"{doing} failed", f"netlink: {exc}") from None


class _AlreadyDone(Exception):
    pass


@contextmanager
def open_netlink() -> Iterator[Netlink]:
    """A netlink socket for this network namespace, closed afterwards."""
    try:
        from pyroute2 import IPRoute, NetlinkError
    except ImportError:
        raise DependencyMissing("pyroute2 is not installed", "pip install pyroute2") from None
    with IPRoute() as ipr:
        yield Netlink(ipr, NetlinkError)
