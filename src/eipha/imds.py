"""An IMDSv2-only client for the EC2 instance metadata service (standard library only).

botocore's metadata fetcher falls back to IMDSv1 and turns errors into empty answers; this
client does neither. The session token lives in memory only, is reused, and is renewed before
it expires and on any ``401``. Every request has a short timeout (capped by the action's
:class:`~eipha.clock.Deadline`), network errors and ``5xx``/``429`` answers (but ``501``, a
method the service does not implement) are retried with jittered exponential backoff, and any
failure raises :class:`~eipha.errors.MetadataError` (or DeadlineExceeded naming the last try's
failure): an IMDS error is *unknown*, never an empty list.

Nothing is cached here except the token (its callers decide what to keep: the private IPs
of an ENI change during a failover).
"""

from __future__ import annotations

import errno
import http.client
import random
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol
from urllib.parse import urlsplit

from eipha.clock import Clock, Deadline, Sleep
from eipha.errors import DeadlineExceeded, MetadataError, MetadataNotFound
from eipha.model import Interface, sort_ips

DEFAULT_ENDPOINT = "http://169.254.169.254/"
ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600
MACS = "meta-data/network/interfaces/macs/"

# IMDS off (403), or no token endpoint: an IMDSv1-only service (404 for the missing item, 405
# or 501 for a method it does not know). Permanent: not retried.
_REFUSED = frozenset({403, 404, 405, 501})
_RENEW_MARGIN = 30.0
_DOING = "reading instance metadata"
_HOP_LIMIT_HINT = (
    "no answer to PUT /latest/api/token; in a container or behind a bridge, raise the PUT "
    "response hop limit (aws ec2 modify-instance-metadata-options "
    "--http-put-response-hop-limit 2)"
)
# refused, no route or no such host: nothing serves metadata there (a dropped reply, as a
# too-low hop limit gives, times out instead)
_NOT_THERE_HINT = f"not on EC2, or {ENDPOINT_VARIABLE} is wrong"
_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _parse_endpoint(value: str) -> tuple[str, int, str]:
    """``(host, port, normalised endpoint)`` of ``http://host[:port][/]``; ValueError if not."""
    parts = urlsplit(value)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{value!r} is not an http://host[:port]/ URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} must be just http://host[:port]/")
    port = parts.port or 80  # .port raises ValueError for a bad port
    return parts.hostname, port, f"http://{parts.netloc}/"


def endpoint_from_env(env: Mapping[str, str]) -> str:
    """The IMDS endpoint: ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` if set, else the default.

    ``AWS_EC2_METADATA_DISABLED`` is not consulted: it keeps botocore's meaning (credentials
    and region only).
    """
    value = env.get(ENDPOINT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_ENDPOINT
    try:
        return _parse_endpoint(value)[2]
    except ValueError as exc:
        raise MetadataError(f"{ENDPOINT_VARIABLE} is invalid", str(exc)) from None


class Transport(Protocol):
    """Sends one HTTP request to IMDS. Raises OSError (incl. TimeoutError) on network failure."""

    def request(
        self, method: str, path: str, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]: ...


class HttpTransport:
    """:class:`Transport` over :mod:`http.client`: a fresh connection per request, no proxies."""

    def __init__(self, endpoint: str) -> None:
        self._host, self._port, self.endpoint = _parse_endpoint(endpoint)

    def request(
        self, method: str, path: str, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.request(method, path, headers=dict(headers))
            response = conn.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:
            raise ConnectionError(f"bad HTTP answer: {exc!r}") from exc
        finally:
            conn.close()


class _NoAnswer(Exception):
    """Every try ended in a network error; ``str()`` describes the last one.
    :attr:`nothing_there`: it was refused or had no route (off EC2, or a wrong endpoint)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(_describe(exc))
        nothing_there = isinstance(exc, ConnectionRefusedError | socket.gaierror)
        self.nothing_there = nothing_there or exc.errno in _NO_ROUTE


class ImdsClient:
    """Reads instance metadata over IMDSv2 only. See the module docstring for the rules."""

    def __init__(
        self,
        transport: Transport,
        *,
        deadline: Deadline | None = None,
        timeout: float = 1.0,
        attempts: int = 3,
        backoff: float = 0.1,
        token_ttl: int = 300,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not 1 <= token_ttl <= MAX_TOKEN_TTL:
            raise ValueError(f"token_ttl must be 1..{MAX_TOKEN_TTL}, not {token_ttl}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self._transport = transport
        self._deadline = deadline
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._token_ttl = token_ttl
        # Renew ``token_ttl - 30`` s after issue (half the TTL for very short TTLs).
        self._renew_after = max(token_ttl - _RENEW_MARGIN, token_ttl / 2)
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._token_at = 0.0
        self.endpoint = str(getattr(transport, "endpoint", "the instance metadata service"))

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, deadline: Deadline | None = None) -> ImdsClient:
        """A client over HTTP to :func:`endpoint_from_env`'s endpoint, default settings."""
        return cls(HttpTransport(endpoint_from_env(env)), deadline=deadline)

    # -- raw reads ---------------------------------------------------------------------------

    def get(self, path: str) -> str:
        """The item at ``path`` (relative to ``/latest/``). 404 → MetadataNotFound."""
        status, body = self._get_answer(path)
        if status == 200:
            return body.decode("utf-8", "replace")
        if status == 404:
            raise MetadataNotFound(f"instance metadata {path} not found", "HTTP 404")
        raise MetadataError(
            f"instance metadata {path} could not be read", f"HTTP {status} from {self._url(path)}"
        )

    def get_optional(self, path: str) -> str | None:
        """Like :meth:`get`, but None on 404 (and only on 404)."""
        try:
            return self.get(path)
        except MetadataNotFound:
            return None

    def get_lines(self, path: str) -> tuple[str, ...]:
        """The item's lines, stripped, blanks dropped."""
        return tuple(line.strip() for line in self.get(path).splitlines() if line.strip())

    # -- typed reads -------------------------------------------------------------------------

    def instance_id(self) -> str:
        return self._value("meta-data/instance-id")

    def region(self) -> str:
        """``placement/region``; on 404 the availability zone minus its last letter."""
        region = self.get_optional("meta-data/placement/region")
        if region is not None and region.strip():
            return region.strip()
        return self._value("meta-data/placement/availability-zone")[:-1]

    def mac(self) -> str:
        """The MAC of the device-number-0 ENI, lowercase."""
        return self._value("meta-data/mac").lower()

    def local_ipv4(self) -> str:
        """The primary private IPv4 address of the device-number-0 ENI."""
        return self._value("meta-data/local-ipv4")

    def macs(self) -> tuple[str, ...]:
        """The MACs of all ENIs attached to this instance, lowercase."""
        return tuple(line.rstrip("/").lower() for line in self.get_lines(MACS))

    def interface_id(self, mac: str) -> str:
        """The ENI id of the interface with this MAC; MetadataNotFound if IMDS does not know it."""
        return self._value(f"{MACS}{mac.lower()}/interface-id")

    def interface(
        self,
        mac: str,
        primary_ip: str | None = None,
        *,
        details: bool = True,
        secondaries: bool = True,
    ) -> Interface:
        """The ENI with this MAC. ``primary_ip`` comes from ``local-ipv4`` or EC2's Primary flag;
        None is allowed only for the device-0 ENI (then :meth:`local_ipv4` is used). Without
        ``details`` only what a binding needs is read (the ENI id and its private IPs: two
        requests, not four); the device number and subnet stay unknown (0, None). Without
        ``secondaries`` the private IPs are not read either (an EIP bound to the primary IP
        needs none of them): the interface says it does not know them."""
        mac = mac.lower()
        base = f"{MACS}{mac}/"
        eni_id = self.interface_id(mac)
        device = self._value(f"{base}device-number") if details else "0"
        ips = self.get_lines(f"{base}local-ipv4s") if secondaries else ()
        cidr = self.get_optional(f"{base}subnet-ipv4-cidr-block") if details else None
        if primary_ip is None:
            primary_ip = self._device0_primary(mac)
        return Interface(
            eni_id=eni_id,
            mac=mac,
            primary_ip=primary_ip,
            secondary_ips=_secondaries(eni_id, primary_ip, ips) if secondaries else (),
            device_number=_device_number(eni_id, device),
            subnet_cidr=(cidr or "").strip() or None,
            secondaries_known=secondaries,
        )

    def with_secondaries(self, interface: Interface) -> Interface:
        """``interface`` with its secondary private IPs, read now (one request)."""
        ips = self.get_lines(f"{MACS}{interface.mac}/local-ipv4s")
        secondaries = _secondaries(interface.eni_id, interface.primary_ip, ips)
        return replace(interface, secondary_ips=secondaries, secondaries_known=True)

    # -- internals ---------------------------------------------------------------------------

    def _device0_primary(self, mac: str) -> str:
        if mac != self.mac():
            raise ValueError(f"the primary IP of the ENI with MAC {mac} must be given")
        return self.local_ipv4()

    def _value(self, path: str) -> str:
        value = self.get(path).strip()
        if not value:
            raise MetadataError(f"instance metadata {path} is empty", "HTTP 200 with no content")
        return value

    def _url(self, path: str) -> str:
        return f"{self.endpoint.rstrip('/')}/latest/{path}"

    def _get_answer(self, path: str) -> tuple[int, bytes]:
        status, body = self._get_once(path)
        if status == 401:  # token expired or revoked: once more with a fresh one
            self._token = None
            status, body = self._get_once(path)
        return status, body

    def _get_once(self, path: str) -> tuple[int, bytes]:
        headers = {TOKEN_HEADER: self._current_token()}
        try:
            return self._exchange("GET", f"/latest/{path}", headers)
        except _NoAnswer as exc:
            hint = f"; {_NOT_THERE_HINT}" if exc.nothing_there else ""
            raise MetadataError(
                f"instance metadata {path} could not be read",
                f"no answer from {self.endpoint}: {exc}{hint}",
            ) from None

    def _current_token(self) -> str:
        if self._token is None or self._clock() - self._token_at >= self._renew_after:
            self._token = None
            self._token_at = self._clock()
            self._token = self._fetch_token()
        return self._token

    def _fetch_token(self) -> str:
        try:
            status, body = self._exchange("PUT", TOKEN_PATH, {TTL_HEADER: str(self._token_ttl)})
        except _NoAnswer as exc:
            hint = _NOT_THERE_HINT if exc.nothing_there else _HOP_LIMIT_HINT
            raise MetadataError(
                f"IMDS did not answer at {self.endpoint}", f"{exc}; {hint}"
            ) from None
        token = body.decode("ascii", "replace").strip() if status == 200 else ""
        if token:
            return token
        url = f"{self.endpoint.rstrip('/')}{TOKEN_PATH}"
        if status in _REFUSED:
            raise MetadataError(
                "IMDSv2 token request refused",
                f"HTTP {status} from {url}: this endpoint serves only IMDSv1 or has IMDS "
                "disabled; eipha uses IMDSv2 only",
            )
        why = "empty token" if status == 200 else f"HTTP {status}"
        raise MetadataError("IMDSv2 token request failed", f"{why} from {url}")

    def _exchange(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """One request, retried on network errors and 5xx/429. Returns the last answer;
        raises :class:`_NoAnswer` if the last try got none."""
        last = ""  # what went wrong with the previous try, for a deadline that cuts retries
        for attempt in range(self._attempts):
            if attempt:
                self._pause(attempt)
            self._check_deadline(last)
            try:
                status, body = self._transport.request(
                    method, path, headers, self._request_timeout()
                )
            except OSError as exc:
                if attempt == self._attempts - 1:
                    raise _NoAnswer(exc) from None
                last = f"{method} {self.endpoint.rstrip('/')}{path}: {_describe(exc)}"
                continue
            if not _retryable(status) or attempt == self._attempts - 1:
                return status, body
            last = f"{method} {self.endpoint.rstrip('/')}{path}: HTTP {status}"
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int) -> None:
        base = self._backoff * 2 ** (attempt - 1)
        delay = base * (0.5 + random.random() / 2)
        if self._deadline is not None:
            delay = min(delay, self._deadline.remaining())
        self._sleep(delay)

    def _check_deadline(self, last: str) -> None:
        """Raise DeadlineExceeded if time is up, naming the previous try's failure if any."""
        if self._deadline is None or not self._deadline.expired():
            return
        why = f"deadline of {self._deadline.seconds:g} s passed"
        raise DeadlineExceeded(
            f"{_DOING} did not finish", f"{why}; last try: {last}" if last else why
        )

    def _request_timeout(self) -> float:
        if self._deadline is None:
            return self._timeout
        return self._deadline.cap(self._timeout)


def _retryable(status: int) -> bool:
    return status == 429 or (500 <= status <= 599 and status != 501)


def _describe(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _secondaries(eni_id: str, primary_ip: str, ips: tuple[str, ...]) -> tuple[str, ...]:
    """``local-ipv4s`` minus the primary, ascending. The order of ``local-ipv4s`` is ignored."""
    if primary_ip not in ips:
        raise MetadataError(
            f"inconsistent instance metadata for {eni_id}",
            f"primary IP {primary_ip} is not in local-ipv4s ({', '.join(ips) or 'empty'})",
        )
    try:
        return sort_ips(ip for ip in ips if ip != primary_ip)
    except ValueError as exc:
        raise MetadataError(f"inconsistent instance metadata for {eni_id}", str(exc)) from None


def _device_number(eni_id: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MetadataError(
            f"inconsistent instance metadata for {eni_id}", f"device-number is {text!r}"
        ) from None
