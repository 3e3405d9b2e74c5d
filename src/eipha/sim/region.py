"""A simulated EC2 region: a moto server on loopback, with a request log and fault injection.

:class:`SimulatedRegion` runs moto's WSGI application (with :mod:`eipha.sim.moto_ext`
installed) in a threaded werkzeug server on a daemon thread (the life cycle of
:class:`eipha.sim.serving.Served`), bound to a loopback address only. Between the socket and
moto sits :mod:`eipha.sim.ec2_middleware`, which

* records every EC2 request as an :class:`ApiRequest` (action, form parameters, HTTP status,
  monotonic start/end times, client = the SigV4 access key id; :mod:`eipha.sim.request_log`);
* adds :attr:`SimulatedRegion.latency` seconds to every EC2 answer;
* answers the next matching requests with an EC2-style XML error instead of reaching moto
  (:meth:`SimulatedRegion.inject`; :mod:`eipha.sim.ec2_faults`).

:func:`build_pair` builds the two-node world of the README's picture over the API
(:mod:`eipha.sim.world`), and :func:`ec2_client` makes a boto3 client for the region with
fake credentials and no proxies (:mod:`eipha.sim.ec2_client`); both are importable from here.

moto keeps its state in process-global backends: every :class:`SimulatedRegion` (and every
``mock_aws``) in one process shares it, and :meth:`SimulatedRegion.reset` resets all of it.
"""

from __future__ import annotations

import ipaddress
import socketserver
import threading
from typing import Any

from eipha.sim import moto_ext, serving
from eipha.sim.ec2_client import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, ec2_client
from eipha.sim.ec2_faults import STATUS_BY_CODE, Faults, ec2_error_body
from eipha.sim.ec2_middleware import Middleware
from eipha.sim.request_log import ApiRequest, RequestLog
from eipha.sim.world import (
    MOTO_ACCOUNT_ID,
    SUBNET_CIDR,
    VPC_CIDR,
    SimEip,
    SimNode,
    World,
    build_pair,
)

__all__ = [
    "FAKE_ACCESS_KEY_ID",
    "FAKE_SECRET_ACCESS_KEY",
    "MOTO_ACCOUNT_ID",
    "STATUS_BY_CODE",
    "SUBNET_CIDR",
    "VPC_CIDR",
    "ApiRequest",
    "SimEip",
    "SimNode",
    "SimulatedRegion",
    "World",
    "build_pair",
    "ec2_client",
    "ec2_error_body",
]


class SimulatedRegion(serving.Served):
    """A moto EC2 region served over HTTP on a loopback address.

    Use as a context manager, or call :meth:`start` and (always) :meth:`stop`.
    """

    what = "the simulated region"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "eu-west-1",
        lab_namespace: str | None = None,
    ):
        """``lab_namespace``: the name of a network namespace the caller created and is in
        (see :func:`eipha.sim.netns.in_netns`); only then may ``host`` be a non-loopback
        address, which exists only inside that namespace."""
        super().__init__()
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not lab_namespace:
            raise ValueError(f"SimulatedRegion binds loopback IP addresses only, not {host!r}")
        self.host = host
        self.region = region
        self.latency = 0.0
        """Seconds added to every EC2 answer (a realistic value for benchmarks is 0.05)."""
        self.log = RequestLog()
        self.faults = Faults()
        self._port = port
        self._moto_lock = threading.Lock()  # one moto call at a time; latency sleeps outside

    # --- life cycle --------------------------------------------------------------------------

    thread_name = "sim-region"

    def bind(self) -> socketserver.BaseServer:
        """Install the moto extension and bind moto's application behind the middleware."""
        moto_ext.install()
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class _QuietHandler(MotoRequestHandler):  # type: ignore[misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = Middleware(
            DomainDispatcherApplication(create_backend_app),
            self.log,
            self.faults,
            lambda: self.latency,
            self._moto_lock,
        )
        server = make_server(
            self.host, self._port, app, threaded=True, request_handler=_QuietHandler
        )
        server.daemon_threads = True
        bound: socketserver.BaseServer = server
        return bound

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (IPv6 loopback in brackets)."""
        return serving.http_url(self.host, self.port, "")

    def reset(self) -> None:
        """Reset moto's state (all backends of this process), the request log and the faults."""
        from moto.moto_api._internal.models import moto_api_backend

        with self._moto_lock:
            moto_api_backend.reset()
        self.log.clear()
        self.faults.clear()

    # --- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[ApiRequest]:
        """A snapshot of the EC2 request log, oldest first."""
        return self.log.snapshot()

    def mark(self) -> int:
        """The current log length: pass it as ``since`` to look only at later requests."""
        return self.log.mark()

    def calls(self, action: str | None = None, since: int = 0) -> list[ApiRequest]:
        """Requests from log position ``since`` on, optionally only those of one action."""
        return self.log.calls(action, since)

    def actions(self, since: int = 0) -> list[str]:
        """The actions requested from log position ``since`` on, in order."""
        return [r.action for r in self.calls(since=since)]

    def count(self, action: str, since: int = 0) -> int:
        """How many ``action`` requests were made from log position ``since`` on."""
        return len(self.calls(action, since))

    # --- fault injection ---------------------------------------------------------------------

    def inject(
        self,
        action: str | None,
        error_code: str,
        status: int | None = None,
        times: int | None = 1,
        message: str | None = None,
        skip: int = 0,
    ) -> None:
        """Answer the next ``times`` EC2 requests for ``action`` (None: any) with an error,
        after letting the first ``skip`` of them through.

        The answer is EC2's XML error document with ``error_code`` and HTTP ``status``
        (default from :data:`STATUS_BY_CODE`, else 400); moto never sees the request. It is
        logged like any other. ``times=None`` keeps failing until :meth:`clear_faults`.
        Faults are matched in the order they were injected.
        """
        self.faults.inject(action, error_code, status, times, message, skip)

    def clear_faults(self) -> None:
        """Forget every pending injected fault."""
        self.faults.clear()
