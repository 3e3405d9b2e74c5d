"""The one life cycle of every simulated server (EC2 region, IMDS double, fault proxy, the
drill's web target): served from a daemon thread, then shut down, closed and joined."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

POLL = 0.05  # how often serve_forever looks for shutdown: stopping takes at most this long


class HTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that does not print a traceback when a client hangs up
    (a probe that timed out, a reader gone): expected here, and stderr is the user's."""

    daemon_threads = True

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Start serving ``server`` from a daemon thread called ``name``."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL}, name=name, daemon=True
    )
    thread.start()
    return thread


def shut_down(
    server: socketserver.BaseServer | None,
    thread: threading.Thread | None = None,
    timeout: float = 10.0,
) -> None:
    """Stop serving, release the port and wait for the thread (either may be None)."""
    if server is not None:
        server.shutdown()
        server.server_close()
    if thread is not None:
        thread.join(timeout)
