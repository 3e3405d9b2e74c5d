"""An IMDSv2 double: an HTTP server on loopback that answers like EC2's metadata service.

It behaves like an instance with ``HttpTokens=required``: ``PUT /latest/api/token`` with a TTL
of 1..21600 s issues a token, every ``GET`` needs a valid one (else ``401``), a missing item
is ``404``, directories list their children (subdirectories end in ``/``). Every request is
logged in :attr:`ImdsDouble.requests`.

Fault hooks (paths are relative to ``/latest/``; the token ``PUT`` is ``api/token``):

* token expiry mid-run: :meth:`~ImdsDouble.expire_tokens` now, or ``token_uses`` (each token
  is good for that many reads, then answers ``401`` as if it had expired);
* errors: :meth:`~ImdsDouble.fail_next` (the next requests, optionally on one path),
  ``down`` (every request ``500``), ``path_status`` (one path always answers a status),
  ``not_found`` (one path ``404``);
* timeouts: ``delay`` (every answer late), or :data:`SILENT` as a status in ``fail_next``
  or ``path_status``: the request is read and its connection held open, never answered;
* ``imdsv1_only``: no token endpoint. The ``PUT`` is a missing item (``404``, anchors D4)
  unless ``refuse_status`` says otherwise (EC2 answers ``403`` when IMDS is off; botocore
  also takes ``405`` as "no IMDSv2"); ``GET`` needs no token;
* ``silent_put``: the token ``PUT`` is held with no answer, as when the PUT response hop
  limit drops the reply before it reaches a container.

The metadata tree comes from :mod:`eipha.sim.imds_metadata` (:func:`node_metadata`, importable
from here); :mod:`eipha.sim.imds_file` serves a double from a JSON file in a network namespace.
Used by the integration and reliability tests and by ``eipha drill --simulate``; never by
production code.
"""

from __future__ import annotations

import secrets
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import cast

from eipha.clock import Clock
from eipha.sim import serving
from eipha.sim.imds_metadata import MACS, InterfaceSpec, listing, node_metadata

__all__ = [
    "FORWARDED_HEADER",
    "MACS",
    "MAX_TTL",
    "SILENT",
    "TOKEN_HEADER",
    "TOKEN_ITEM",
    "TOKEN_PATH",
    "TTL_HEADER",
    "ImdsDouble",
    "InterfaceSpec",
    "listing",
    "node_metadata",
]

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
FORWARDED_HEADER = "X-Forwarded-For"
MAX_TTL = 21600
TOKEN_ITEM = TOKEN_PATH[len("/latest/") :]  # "api/token": the PUT's path in the fault hooks
SILENT = 0  # as a fault: never answer (hold the connection); in the log: was not answered
_HOLD_LIMIT = 30.0  # the longest a swallowed PUT keeps its connection open

Answer = tuple[int, str, dict[str, str]] | None


class ImdsDouble(serving.Served):
    """An IMDSv2 HTTP double on ``host`` (loopback), an ephemeral port unless ``port`` is given.

    Attributes that tests may change at any time: ``imdsv1_only``, ``refuse_status``,
    ``silent_put``, ``delay``, ``down``, ``token_uses``, ``not_found`` (paths relative to
    ``/latest/`` that answer 404) and ``path_status`` (path relative to ``/latest/`` → the
    status it always answers, :data:`SILENT` for none). See the module docstring.
    Use as a context manager, or call :meth:`start` and (always) :meth:`stop`.
    """

    what = "the IMDS double"
    thread_name = "imds-double"

    def __init__(
        self,
        data: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        imdsv1_only: bool = False,
        refuse_status: int = 404,
        silent_put: bool = False,
        delay: float = 0.0,
        not_found: Iterable[str] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__()
        self.imdsv1_only = imdsv1_only
        self.refuse_status = refuse_status
        self.silent_put = silent_put
        self.delay = delay
        self.down = False
        """While True every request answers 500 (an outage)."""
        self.not_found: set[str] = set(not_found)
        self.path_status: dict[str, int] = {}
        """Paths (relative to ``/latest/``) that always answer this status (SILENT: never)."""
        self.token_uses: int | None = None
        """Each token answers at most this many GETs, then 401 (None: until its TTL ends)."""
        self.requests: list[tuple[str, str, int]] = []
        """``(method, path, status)`` of every request, oldest first."""
        self.arrivals: list[float] = []
        """When each request of :attr:`requests` arrived (:func:`time.monotonic`)."""
        self._data = dict(data or {})
        self._by_client: dict[str, dict[str, str]] = {}
        self._address = (host, port)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._uses: dict[str, int] = {}
        self._failures: list[tuple[str | None, int]] = []
        self._stopping = threading.Event()

    # -- life cycle --------------------------------------------------------------------------

    def bind(self) -> socketserver.BaseServer:
        self._stopping.clear()
        return _Server(self._address, _Handler, self)

    def stopping(self) -> None:
        """Let held (unanswered) requests go, and cut delays short."""
        self._stopping.set()

    @property
    def endpoint(self) -> str:
        return self.url

    # -- data and faults ---------------------------------------------------------------------

    def update(self, data: Mapping[str, str]) -> None:
        """Replace all metadata at once."""
        new = dict(data)
        with self._lock:
            self._data = new

    def serve_client(self, address: str, data: Mapping[str, str]) -> None:
        """Answer requests from ``address`` with ``data`` (one double playing several
        instances, told apart by source address, as in a namespace lab)."""
        with self._lock:
            self._by_client[address] = dict(data)

    def fail_next(self, n: int, status: int = 500, *, path: str | None = None) -> None:
        """The next ``n`` requests (of any kind, or only those for ``path``, relative to
        ``/latest/``) answer ``status``; :data:`SILENT` holds them unanswered (a timeout)."""
        with self._lock:
            self._failures.extend([(path, status)] * n)

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid: the next GET answers 401."""
        with self._lock:
            self._tokens.clear()
            self._uses.clear()

    # -- answers (called from the handler threads) -------------------------------------------

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], client: str | None = None
    ) -> Answer:
        """``(status, body, extra headers)`` for one request, or None to stay silent.
        Header names are matched case-insensitively."""
        arrived = time.monotonic()
        path = path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in headers.items()}
        failure = self._take_failure(path.removeprefix("/latest/"))
        if failure is not None:
            result: Answer = None if failure == SILENT else (failure, "", {})
        elif method == "PUT":
            result = self._put(path, headers)
        else:
            result = self._get(path, headers, client)
        with self._lock:
            self.requests.append((method, path, SILENT if result is None else result[0]))
            self.arrivals.append(arrived)
        return result

    def _take_failure(self, item: str) -> int | None:
        with self._lock:
            if self.down:
                return 500
            for index, (path, status) in enumerate(self._failures):
                if path is None or path == item:
                    del self._failures[index]
                    return status
            return self.path_status.get(item)

    def _put(self, path: str, headers: Mapping[str, str]) -> Answer:
        if path != TOKEN_PATH:
            return 403, "", {}
        if self.imdsv1_only:
            return self.refuse_status, "", {}
        if self.silent_put:
            return None
        if headers.get(FORWARDED_HEADER.lower()) is not None:
            return 403, "", {}
        ttl = _ttl(headers.get(TTL_HEADER.lower()))
        if ttl is None:
            return 400, "", {}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self._clock() + ttl
            self._uses[token] = 0
        return 200, token, {TTL_HEADER: str(ttl)}

    def _get(self, path: str, headers: Mapping[str, str], client: str | None = None) -> Answer:
        if not self.imdsv1_only and not self._token_valid(headers.get(TOKEN_HEADER.lower())):
            return 401, "", {}
        if not path.startswith("/latest/"):
            return 404, "", {}
        item = path[len("/latest/") :]
        with self._lock:
            data = self._by_client.get(client or "", self._data)
        if item in self.not_found:
            return 404, "", {}
        if item in data:
            return 200, data[item], {}
        entries = listing(data, item)
        return (404, "", {}) if entries is None else (200, "\n".join(entries), {})

    def _token_valid(self, token: str | None) -> bool:
        """Is ``token`` good for this GET? Counts the use against ``token_uses``."""
        token = token or ""
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None or self._clock() >= expiry:
                return False
            self._uses[token] = self._uses.get(token, 0) + 1
            if self.token_uses is not None and self._uses[token] > self.token_uses:
                del self._tokens[token]  # expired mid-run: gone for good, like a real expiry
                return False
            return True

    def hold(self, connection_alive: Callable[[], bool]) -> None:
        """Keep a swallowed request's connection open until the client gives up."""
        limit = time.monotonic() + _HOLD_LIMIT
        while not self._stopping.is_set() and time.monotonic() < limit and connection_alive():
            pass

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, cut short by :meth:`stop`."""
        if seconds > 0:
            self._stopping.wait(seconds)


def _ttl(value: str | None) -> int | None:
    try:
        ttl = int(value or "")
    except ValueError:
        return None
    return ttl if 1 <= ttl <= MAX_TTL else None


class _Server(serving.HTTPServer):
    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], double: ImdsDouble
    ) -> None:
        self.double = double
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "EC2ws"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self, method: str) -> None:
        double = cast(_Server, self.server).double
        self._drain()
        answer = double.answer(
            method, self.path, dict(self.headers.items()), str(self.client_address[0])
        )
        double.wait(double.delay)
        if answer is None:
            double.hold(self._client_connected)
            self.close_connection = True
            return
        status, body, extra = answer
        self._reply(status, body.encode(), extra)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _reply(self, status: int, body: bytes, extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _client_connected(self) -> bool:
        """Wait up to 50 ms for the client; False once it has closed the connection."""
        self.connection.settimeout(0.05)
        try:
            data: bytes = self.connection.recv(1)
        except TimeoutError:
            return True
        except OSError:
            return False
        return data != b""
