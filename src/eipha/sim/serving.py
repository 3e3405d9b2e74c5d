"""The one life cycle of every simulated server (EC2 region, IMDS double, the story's web
servers and router; the tests' fault proxy and probe targets use the two functions): bound
on a loopback port, served from a daemon thread, then shut down, closed and joined.

A server class derives from :class:`Served` and says only how to bind (:meth:`Served.bind`);
starting, stopping, the context manager, the port and the errors are the same for all.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

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


class Served:
    """A server that :meth:`start` binds and serves from a daemon thread, and :meth:`stop`
    shuts down, releasing its port and joining the thread. Use as a context manager, or call
    :meth:`start` and (always) :meth:`stop`; stopping twice is harmless.

    A subclass implements :meth:`bind` and may set :attr:`what` (for errors) and
    :attr:`thread_name` (the port is appended); :meth:`stopping` runs first when it stops
    (to let held requests go).
    """

    what = "the simulated server"
    thread_name = "eipha-sim-http"

    def __init__(self) -> None:
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> socketserver.BaseServer:
        """A server bound to its address, not yet serving (an OSError if the port is taken)."""
        raise NotImplementedError

    def stopping(self) -> None:
        """Called by :meth:`stop` before the server is shut down."""

    def start(self) -> Self:
        """Bind and start serving; returns self."""
        if self._server is not None:
            raise RuntimeError(f"{self.what} is already started")
        server = self.bind()
        self._server = server
        self._thread = serve_in_thread(server, f"{self.thread_name}-{self.port}")
        return self

    def stop(self) -> None:
        """Stop serving, release the port and join the server thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self.stopping()
        shut_down(server, thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def server_address(self) -> tuple[str, int]:
        """The (host, port) the server is bound to."""
        if self._server is None:
            raise RuntimeError(f"{self.what} is not started")
        address = self._server.server_address
        assert isinstance(address, tuple)  # an inet socket: (host, port[, flow, scope])
        return str(address[0]), int(address[1])

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` of the bound address (an IPv6 host in brackets)."""
        return http_url(self.server_address[0], self.port)


def http_url(host: str, port: int, path: str = "/") -> str:
    """``http://HOST:PORT/PATH``, an IPv6 host in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"
