"""The peer monitor's UDP sockets: the one it listens on, one per peer, reading and sending.

:func:`listen` binds the main socket on this node's address and the monitor port;
:func:`relink` keeps one more socket per peer, on the same address and port and connected
to the peer's, so the kernel queues each peer's heartbeats apart from everything else (a
flood from any other address fills only the main socket's queue). :func:`datagrams` reads
what is waiting on one socket, at most :data:`MAX_READS` per call, so a flood cannot stall a
cycle; :func:`send_to_all` sends one heartbeat to every peer.

Importing this module only defines things. Standard library only.
"""

from __future__ import annotations

import logging
import selectors
import socket
from collections.abc import Iterable, Iterator

from eipha import errors

log = logging.getLogger(__name__)

MAX_READS = 512  # datagrams read from one socket per cycle, so a flood cannot stall a cycle

Address = tuple[str, int]


def listen(address: str, port: int) -> socket.socket:
    """The main socket, non-blocking, on ``address:port``; NotConfigured if it cannot bind."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_REUSEPORT, not SO_REUSEADDR: the per-peer sockets (see relink) share this port,
    # and the kernel lets only the same user join; with SO_REUSEADDR any local user
    # could bind the port too and take the peers' heartbeats
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise errors.NotConfigured(f"cannot listen on {address}:{port}", exc.strerror) from None
    sock.setblocking(False)
    return sock


def relink(
    links: dict[Address, socket.socket],
    wanted: set[Address],
    sock: socket.socket,
    selector: selectors.BaseSelector,
) -> None:
    """Make ``links`` one socket per ``wanted`` peer address, on ``sock``'s address and port
    and connected to the peer's, each registered with ``selector``: the kernel queues a
    peer's heartbeats there, apart from everything else, so a flood from any other address
    fills only the main socket's queue and never makes the kernel drop a peer's heartbeat.
    Nothing to do when the peers did not change (a reload may change them)."""
    if set(links) == wanted:
        return
    for address in set(links) - wanted:
        link = links.pop(address)
        selector.unregister(link)
        link.close()
    for address in wanted - set(links):
        link = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            link.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            link.bind(sock.getsockname())
            link.connect(address)
        except OSError as exc:  # the main socket still hears this peer
            link.close()
            log.debug("no socket of its own for %s: %s", address[0], exc)
            continue
        link.setblocking(False)
        selector.register(link, selectors.EVENT_READ)
        links[address] = link


def datagrams(sock: socket.socket, limit: int = MAX_READS) -> Iterator[tuple[bytes, str]]:
    """(datagram, source address) for each of at most ``limit`` datagrams waiting on the
    non-blocking ``sock``; a read error is skipped (a peer's socket reports an ICMP error
    once)."""
    for _ in range(limit):
        try:
            data, (source, _port) = sock.recvfrom(2048)
        except BlockingIOError:
            return
        except OSError as exc:  # a peer's socket reports an ICMP error once: go on
            log.debug("receiving: %s", exc)
            continue
        yield data, source


def send_to_all(sock: socket.socket, datagram: bytes, addresses: Iterable[Address]) -> int:
    """Send ``datagram`` to every address; how many went (a failure is logged at debug)."""
    sent = 0
    for address in addresses:
        try:
            sock.sendto(datagram, address)
            sent += 1
        except OSError as exc:
            log.debug("heartbeat to %s not sent: %s", address[0], exc)
    return sent
