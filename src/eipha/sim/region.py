"""A simulated EC2 region: a moto server on loopback, with a request log and fault injection.

:class:`SimulatedRegion` runs moto's WSGI application (with :mod:`eipha.sim.moto_ext`
installed) in a threaded werkzeug server on a daemon thread, bound to a loopback address only.
Between the socket and moto sits a small WSGI middleware that

* records every EC2 request as an :class:`ApiRequest` (action, form parameters, HTTP status,
  monotonic start/end times, client = the SigV4 access key id);
* adds :attr:`SimulatedRegion.latency` seconds to every EC2 answer;
* answers the next matching requests with an EC2-style XML error instead of reaching moto
  (:meth:`SimulatedRegion.inject`).

:func:`build_pair` builds the two-node world of the README's picture over the API, and
:func:`ec2_client` makes a boto3 client for the region with fake credentials and no proxies.

moto keeps its state in process-global backends: every :class:`SimulatedRegion` (and every
``mock_aws``) in one process shares it, and :meth:`SimulatedRegion.reset` resets all of it.
"""

from __future__ import annotations

import io
import ipaddress
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from eipha.sim import moto_ext, serving

FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
MOTO_ACCOUNT_ID = "123456789012"
"""The account moto serves for any access key it does not know (moto's DEFAULT_ACCOUNT_ID)."""

STATUS_BY_CODE: dict[str, int] = {
    "RequestLimitExceeded": 503,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "UnauthorizedOperation": 403,
    "AuthFailure": 401,
}
"""HTTP status of an injected error when :meth:`SimulatedRegion.inject` is not told (else 400)."""

_MESSAGES: dict[str, str] = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Unavailable": "The service is unavailable. Please try again shortly.",
    "ServiceUnavailable": "The service is unavailable. Please try again shortly.",
    "InternalError": "An internal error has occurred.",
    "UnauthorizedOperation": "You are not authorized to perform this operation.",
    "AuthFailure": "AWS was not able to validate the provided access credentials.",
}

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass(frozen=True)
class ApiRequest:
    """One EC2 request as the simulated region saw it.

    ``started``/``ended`` are :func:`time.monotonic` readings (arrival, and when the answer,
    latency included, was handed back to the server). ``client`` is the SigV4 access key id
    (give each simulated node its own fake key to tell them apart), or the peer address for
    an unsigned request. ``injected`` is true when the answer came from :meth:`inject`.
    """

    action: str
    params: dict[str, str]
    status: int
    started: float
    ended: float
    client: str
    injected: bool = False


@dataclass
class _Fault:
    action: str | None
    code: str
    status: int
    message: str
    remaining: int | None  # None: until cleared
    skip: int = 0  # matching requests to let through first


class SimulatedRegion:
    """A moto EC2 region served over HTTP on a loopback address.

    Use as a context manager, or call :meth:`start` and (always) :meth:`stop`.
    """

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
        self._port = port
        self._lock = threading.Lock()  # guards the log and the faults
        self._moto_lock = threading.Lock()  # one moto call at a time; latency sleeps outside
        self._log: list[ApiRequest] = []
        self._faults: list[_Fault] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> SimulatedRegion:
        """Install the moto extension and start serving; returns self."""
        if self._server is not None:
            raise RuntimeError("SimulatedRegion already started")
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

        moto_app = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            self.host,
            self._port,
            _Middleware(self, moto_app),
            threaded=True,
            request_handler=_QuietHandler,
        )
        server.daemon_threads = True
        self._server = server
        self._thread = serving.serve_in_thread(server, f"sim-region-{self.port}")
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread (safe to call more than once)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        serving.shut_down(server, thread)

    def __enter__(self) -> SimulatedRegion:
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
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SimulatedRegion not started")
        return int(self._server.server_port)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (IPv6 loopback in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def reset(self) -> None:
        """Reset moto's state (all backends of this process), the request log and the faults."""
        from moto.moto_api._internal.models import moto_api_backend

        with self._moto_lock:
            moto_api_backend.reset()
        with self._lock:
            self._log.clear()
            self._faults.clear()

    # --- request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[ApiRequest]:
        """A snapshot of the EC2 request log, oldest first."""
        with self._lock:
            return list(self._log)

    def mark(self) -> int:
        """The current log length: pass it as ``since`` to look only at later requests."""
        with self._lock:
            return len(self._log)

    def calls(self, action: str | None = None, since: int = 0) -> list[ApiRequest]:
        """Requests from log position ``since`` on, optionally only those of one action."""
        with self._lock:
            return [r for r in self._log[since:] if action is None or r.action == action]

    def actions(self, since: int = 0) -> list[str]:
        """The actions requested from log position ``since`` on, in order."""
        return [r.action for r in self.calls(since=since)]

    def count(self, action: str, since: int = 0) -> int:
        """How many ``action`` requests were made from log position ``since`` on."""
        return len(self.calls(action, since))

    def _record(self, entry: ApiRequest) -> None:
        with self._lock:
            self._log.append(entry)

    # --- fault injection -------------------------------------------------------------------

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
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for 'until cleared')")
        fault = _Fault(
            action=action,
            code=error_code,
            status=status if status is not None else STATUS_BY_CODE.get(error_code, 400),
            message=message or _MESSAGES.get(error_code, f"Injected fault {error_code}."),
            remaining=times,
            skip=skip,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every pending injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, action: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.action is None or fault.action == action:
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None


class _Middleware:
    """WSGI middleware in front of moto: log, latency and injected faults for EC2 requests."""

    def __init__(
        self, region: SimulatedRegion, app: Callable[[Environ, StartResponse], Iterable[bytes]]
    ) -> None:
        self.region = region
        self.app = app

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

        fault = self.region._take_fault(action)
        status = 500  # if moto itself blows up, the server answers 500; log it as such
        try:
            if fault is not None:
                status, chunks = self._error(fault, start_response)
            else:
                status, chunks = self._moto(environ, start_response)
            delay = self.region.latency - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        finally:
            self.region._record(
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

        with self.region._moto_lock:
            result = self.app(environ, capture)
            try:
                chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return (seen[-1] if seen else 500), chunks

    def _error(self, fault: _Fault, start_response: StartResponse) -> tuple[int, list[bytes]]:
        body = ec2_error_body(fault.code, fault.message)
        start_response(
            f"{fault.status} {_REASONS.get(fault.status, 'Error')}",
            [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))],
        )
        return fault.status, [body]


def ec2_error_body(code: str, message: str) -> bytes:
    """EC2's error document, as botocore's EC2 parser reads it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


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


# --- clients and the two-node world -------------------------------------------------------


def ec2_client(region: SimulatedRegion, *, config: Any = None) -> Any:
    """A boto3 EC2 client for ``region``: fake credentials, no proxies, short timeouts.

    No credential chain, IMDS or proxy is consulted. Retries default to a single attempt
    (so tests count calls exactly); pass a ``botocore.config.Config`` to override/extend.
    """
    import boto3
    from botocore.config import Config

    base = Config(
        proxies={},
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 1},
    )
    return boto3.client(
        "ec2",
        region_name=region.region,
        endpoint_url=region.endpoint,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        aws_session_token=None,
        config=base.merge(config) if config is not None else base,
    )


@dataclass(frozen=True)
class SimNode:
    """A simulated load balancer: one instance, its device-0 ENI, and the ENI's IPs."""

    name: str
    instance_id: str
    eni_id: str
    mac: str
    primary_ip: str
    secondary_ips: tuple[str, ...]
    subnet_cidr: str
    device_number: int = 0


@dataclass(frozen=True)
class SimEip:
    """An allocated Elastic IP (not associated by :func:`build_pair`) and its home node."""

    name: str
    allocation_id: str
    public_ip: str
    home: str


@dataclass(frozen=True)
class World:
    """What :func:`build_pair` built."""

    nodes: dict[str, SimNode]
    eips: dict[str, SimEip]
    region: str
    vpc_id: str
    subnet_id: str

    def placement(self, address: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(node, private IP) of a DescribeAddresses entry; (None, None) when unassociated."""
        eni = address.get("NetworkInterfaceId")
        node = next((n.name for n in self.nodes.values() if n.eni_id == eni), None)
        return node, address.get("PrivateIpAddress")


VPC_CIDR = "10.0.0.0/16"
SUBNET_CIDR = "10.0.0.0/24"
IMAGE_ID = "ami-12c6146b"  # any id does: moto does not validate AMIs by default
_NODES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("lb-a", "10.0.0.11", ("10.0.0.12",), "0a:00:00:00:00:0a"),
    ("lb-b", "10.0.0.21", ("10.0.0.22",), "0a:00:00:00:00:0b"),
)


def _name_tag(resource_type: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def build_pair(region: SimulatedRegion, *, eips: int = 2) -> World:
    """Build the README's two-node world in a fresh (or just reset) region, over the API.

    VPC 10.0.0.0/16, subnet 10.0.0.0/24 in ``<region>a``; instances ``lb-a`` and ``lb-b``,
    each with a device-0 ENI: 10.0.0.11 (primary) + 10.0.0.12 and 10.0.0.21 + 10.0.0.22.
    ``eips`` EIPs (domain vpc) tagged Name=web-a (home lb-a), web-b (home lb-b), then eip-3,
    eip-4, … (home lb-a); none is associated. Each ENI gets a stable MAC (0a:00:00:00:00:0a,
    …:0b), also written into moto's ENI so DescribeNetworkInterfaces agrees with IMDS doubles.
    """
    if eips < 0:
        raise ValueError("eips must be >= 0")
    ec2 = ec2_client(region)
    try:
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=SUBNET_CIDR, AvailabilityZone=f"{region.region}a"
        )["Subnet"]["SubnetId"]
        nodes: dict[str, SimNode] = {}
        for name, primary, secondaries, mac in _NODES:
            eni_id = ec2.create_network_interface(
                SubnetId=subnet_id,
                Description=f"{name} eth0",
                PrivateIpAddresses=[
                    {"PrivateIpAddress": primary, "Primary": True},
                    *({"PrivateIpAddress": ip, "Primary": False} for ip in secondaries),
                ],
                TagSpecifications=_name_tag("network-interface", f"{name}-eth0"),
            )["NetworkInterface"]["NetworkInterfaceId"]
            instance_id = ec2.run_instances(
                ImageId=IMAGE_ID,
                InstanceType="t3.micro",
                MinCount=1,
                MaxCount=1,
                NetworkInterfaces=[{"NetworkInterfaceId": eni_id, "DeviceIndex": 0}],
                TagSpecifications=_name_tag("instance", name),
            )["Instances"][0]["InstanceId"]
            _verify_eni(ec2, eni_id, instance_id, primary, secondaries)
            _set_moto_mac(region.region, eni_id, mac)
            nodes[name] = SimNode(
                name=name,
                instance_id=instance_id,
                eni_id=eni_id,
                mac=mac,
                primary_ip=primary,
                secondary_ips=secondaries,
                subnet_cidr=SUBNET_CIDR,
            )
        allocated: dict[str, SimEip] = {}
        for index in range(eips):
            name, home = (
                (("web-a", "lb-a"), ("web-b", "lb-b"))[index]
                if index < 2
                else (
                    f"eip-{index + 1}",
                    "lb-a",
                )
            )
            answer = ec2.allocate_address(
                Domain="vpc", TagSpecifications=_name_tag("elastic-ip", name)
            )
            allocated[name] = SimEip(name, answer["AllocationId"], answer["PublicIp"], home)
    finally:
        ec2.close()
    return World(
        nodes=nodes, eips=allocated, region=region.region, vpc_id=vpc_id, subnet_id=subnet_id
    )


def _verify_eni(
    ec2: Any, eni_id: str, instance_id: str, primary: str, secondaries: tuple[str, ...]
) -> None:
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    attachment = eni.get("Attachment", {})
    ips = {
        item["PrivateIpAddress"]: item.get("Primary", False) for item in eni["PrivateIpAddresses"]
    }
    expected = {primary: True, **dict.fromkeys(secondaries, False)}
    if (
        attachment.get("InstanceId") != instance_id
        or attachment.get("DeviceIndex") != 0
        or ips != expected
    ):
        raise RuntimeError(
            f"simulated ENI {eni_id} came out wrong: attachment {attachment}, IPs {ips}, "
            f"expected {expected} on {instance_id} device 0"
        )


def _set_moto_mac(region_name: str, eni_id: str, mac: str) -> None:
    """Give moto's ENI our stable MAC (moto draws a random one); same process as the server."""
    from moto.ec2.models import ec2_backends

    ec2_backends[MOTO_ACCOUNT_ID][region_name].get_network_interface(eni_id).mac_address = mac
