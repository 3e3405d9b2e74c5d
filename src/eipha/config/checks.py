"""Value checkers: one per kind of value a config holds (names, ids, addresses,
paths, URLs, seconds, counts). Each takes a value and returns None when it is fine, else
the message."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TypeAlias, TypeGuard
from urllib.parse import urlsplit

from eipha.config.messages import show
from eipha.config.read import BAD

Check: TypeAlias = Callable[[object], "str | None"]  # None when fine, else the message

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")  # eu-west-1, us-gov-west-1, eusc-de-east-1
_INTERFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
ALLOCATION_ID = re.compile(r"eipalloc-([0-9a-f]{8}|[0-9a-f]{17})")
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]+")


def string(value: object) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {show(value)}"


def text(value: object) -> str | None:
    if value == "":
        return "must not be empty"
    return string(value)


def pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: object) -> str | None:
        problem = text(value)
        if problem or regex.fullmatch(str(value)):
            return problem
        return f"{show(value)} is not {what}"

    return check


name = pattern(_NAME, "a valid name (up to 63 of A-Z a-z 0-9 . _ -, first a letter or digit)")
region = pattern(_REGION, "an AWS region name (like 'eu-west-1')")
interface = pattern(_INTERFACE, "an interface name (like 'eth0')")
instance_id = pattern(_INSTANCE_ID, "an instance id")
allocation_id = pattern(ALLOCATION_ID, "an allocation id")


def ipv4(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be an IPv4 address, got {show(value)}"
    if _parses(ipaddress.IPv4Address, value):
        return None
    if _parses(ipaddress.IPv6Address, value):
        return f"{show(value)} is IPv6; use IPv4"
    return f"{show(value)} is not an IPv4 address"


_HOST_PORT = re.compile(r"([0-9.]+):([0-9]{1,5})")


def quorum_target(value: object) -> str | None:
    """``A.B.C.D`` (answers ICMP echo) or ``A.B.C.D:PORT`` (accepts a TCP connection)."""
    if not isinstance(value, str):
        return f"must be an IPv4 address or IPv4:PORT, got {show(value)}"
    split = _HOST_PORT.fullmatch(value)
    if split is None:
        if _parses(ipaddress.IPv4Address, value) or _parses(ipaddress.IPv6Address, value):
            return ipv4(value)  # fine, or "is IPv6; use IPv4"
        return f"{show(value)} is not an IPv4 address or IPv4:PORT"
    host, number = split.groups()
    if ipv4(host) is not None:
        return f"{show(value)} is not IPv4:PORT ({show(host)} is not an IPv4 address)"
    if not 1 <= int(number) <= 65535:
        return f"{show(value)}: the port must be 1 to 65535"
    return None


def _parses(kind: Callable[[str], object], value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def absolute_path(value: object) -> str | None:
    problem = text(value)
    if problem or (str(value).startswith("/") and "\x00" not in str(value)):
        return problem
    return f"{show(value)} is not an absolute path"


def key_path(value: object) -> str | None:
    """Like :func:`absolute_path`, but a value long enough to be a key (32 characters) is
    not shown: a key pasted where its path goes must not reach a log."""
    problem = absolute_path(value)
    if problem is None or len(str(value)) < 32:
        return problem
    return f"not an absolute path ({len(str(value))} characters, not shown: it may be the key)"


def url(value: object) -> str | None:
    problem = text(value)
    if problem:
        return problem
    written = str(value)
    try:
        parts = urlsplit(written)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        # .port raises ValueError when out of range; 0 is no port either
    except ValueError:
        ok = False
    if ok and _NO_SPACE.fullmatch(written):
        return None
    return f"{show(value)} is not an http:// or https:// URL"


def boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {show(value)}"


def seconds(low: str, high: float) -> Check:
    """Seconds as int or float, ``> 0`` (low ">") or ``>= 0`` (low ">="), ``<= high``."""

    def check(value: object) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"must be a number of seconds, got {show(value)}"
        if (value > 0 if low == ">" else value >= 0) and value <= high:
            return None
        return f"must be {low} 0 and <= {high:g}, got {show(value)}"

    return check


def integer(low: int, high: int) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {show(value)}"
        if low <= value <= high:
            return None
        return f"must be >= {low} and <= {high}, got {show(value)}"

    return check


timeout = seconds(">", 3600)
interval = seconds(">", 86400)  # a day: far beyond any sane interval
hold = seconds(">=", 86400)
port = integer(1, 65535)
count = integer(1, 1000)


def listen(value: object) -> str | None:
    """``A.B.C.D:PORT`` to listen on."""
    if not (isinstance(value, str) and _HOST_PORT.fullmatch(value)):
        return f"must be IPv4:PORT to listen on, got {show(value)}"
    return quorum_target(value)


def valid(check: Check, value: object) -> bool:
    return value is not BAD and check(value) is None


def is_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None
