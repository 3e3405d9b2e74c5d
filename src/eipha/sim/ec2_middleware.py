"""The WSGI middleware between the simulated region's socket and moto: it records every EC2
request in the region's log, adds the region's latency to each answer, and answers a request
an injected fault matches with EC2's XML error instead of reaching moto."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from eipha.sim.ec2_faults import REASONS, Fault, Faults, ec2_error_body
from eipha.sim.request_log import ApiRequest, RequestLog

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


class Middleware:
    """Log, latency and injected faults for EC2 requests; anything else passes through.

    ``latency()`` is read for every answer (seconds to add); ``moto_lock`` admits one moto
    call at a time (the latency sleep is outside it)."""

    def __init__(
        self,
        app: App,
        log: RequestLog,
        faults: Faults,
        latency: Callable[[], float],
        moto_lock: threading.Lock,
    ) -> None:
        self.app = app
        self.log = log
        self.faults = faults
        self.latency = latency
        self.moto_lock = moto_lock

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        body = _read_body(environ)
        params = _params(environ, body)
        match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        service = match.group(3) if match else None
        if not (service == "ec2" or (service is None and "Action" in params)):
            return self._moto(environ, start_response)[1]  # not EC2: pass through, unlogged
        client = match.group(1) if match else str(environ.get("REMOTE_ADDR", "?"))
        action = params.get("Action", "")

        fault = self.faults.take(action)
        status = 500  # if moto itself blows up, the server answers 500; log it as such
        try:
            if fault is not None:
                status, chunks = self._error(fault, start_response)
            else:
                status, chunks = self._moto(environ, start_response)
            delay = self.latency() - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        finally:
            self.log.record(
                ApiRequest(
                    action=action,
                    params=params,
                    status=status,
                    started=started,
                    ended=time.monotonic(),
                    client=client,
                    injected=fault is not None,
                )
            )
        return chunks

    def _moto(self, environ: Environ, start_response: StartResponse) -> tuple[int, list[bytes]]:
        seen: list[int] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, *exc)

        with self.moto_lock:
            result = self.app(environ, capture)
            try:
                chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return (seen[-1] if seen else 500), chunks

    def _error(self, fault: Fault, start_response: StartResponse) -> tuple[int, list[bytes]]:
        body = ec2_error_body(fault.code, fault.message)
        start_response(
            f"{fault.status} {REASONS.get(fault.status, 'Error')}",
            [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))],
        )
        return fault.status, [body]


def _read_body(environ: Environ) -> bytes:
    """Read the request body and put an unread copy back for moto."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip().isdigit():
        body = bytes(stream.read(int(length)))
    elif environ.get("wsgi.input_terminated"):
        body = bytes(stream.read())
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _params(environ: Environ, body: bytes) -> dict[str, str]:
    params = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if body and "x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params
