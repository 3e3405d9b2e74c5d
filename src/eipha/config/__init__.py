"""The config file: find it, read it strictly, turn it into frozen values.

Reading happens in three steps, each unable to raise anything but :class:`ConfigError`:

1. YAML to plain data. Events are scanned first (syntax, nesting depth, one document only),
   then the node tree is walked by hand, so duplicate keys, unsupported tags and values that
   cannot be constructed are reported with their path and line, and alias bombs are bounded.
2. :func:`validate`: the data against a small declarative schema (key -> checker, default),
   then the cross-field rules. Every problem is collected, each as ``path: message``.
3. The dataclasses, built from data already known to be valid, with the schema's defaults.

Importing this module only defines things. Standard library and pyyaml only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias, TypeGuard
from urllib.parse import urlsplit

import yaml

from eipha.binding import EipRule
from eipha.errors import ConfigError, NotConfigured

DEFAULT_PATH = "/etc/eipha/eipha.yaml"
ENV_VAR = "EIPHA_CONFIG"

MAX_BYTES = 1024 * 1024  # a config is a few KiB; anything this big is a mistake
MAX_PROBLEMS = 50  # shown in a ConfigError; the rest are counted
_MAX_DEPTH = 64  # YAML nesting; the schema itself is 5 deep
_MAX_NODES = 100_000  # values after expanding aliases ("billion laughs")


# --------------------------------------------------------------------------- the values


@dataclass(frozen=True)
class NodeSpec:
    """One load balancer of the pair (``nodes.NAME``)."""

    name: str
    instance_id: str | None
    address: str | None


@dataclass(frozen=True)
class EipSpec:
    """One Elastic IP (``eips.NAME``); ``private_ips`` maps node name -> IPv4 (rule 1 of
    :mod:`eipha.binding`)."""

    name: str
    allocation_id: str
    home: str
    private_ips: Mapping[str, str]


@dataclass(frozen=True)
class HealthCheck:
    """``monitor.health_check``: exactly one of ``command`` and ``url`` is set."""

    command: str | None
    url: str | None
    interval: float
    fall: int
    rise: int


@dataclass(frozen=True)
class MonitorSpec:
    """``monitor``: the peer monitor. ``quorum`` entries are ``A.B.C.D`` (ICMP echo) or
    ``A.B.C.D:PORT`` (TCP connect); empty means: use the default gateway."""

    port: int
    key_file: str
    interval: float
    dead_after: float
    init_dead: float
    quorum: tuple[str, ...]
    health_check: HealthCheck | None
    auto_failback: bool
    min_hold: float
    release_on_exit: bool
    metrics_textfile: str | None = None  # Prometheus textfile (node_exporter's collector)
    metrics_listen: str | None = None  # "A.B.C.D:PORT" for a /metrics HTTP endpoint


@dataclass(frozen=True)
class Config:
    """A whole, valid config. ``keepalived_instances`` empty means every instance carries
    every EIP; ``node_name`` None means the caller uses ``uname -n``. ``looked_at`` is the
    file that was looked for when there was none (``path`` None: no config loaded)."""

    path: str | None
    region: str | None
    node_name: str | None
    interface: str | None
    timeout: float
    nodes: Mapping[str, NodeSpec]
    eips: Mapping[str, EipSpec]
    monitor: MonitorSpec | None
    keepalived_instances: Mapping[str, tuple[str, ...]]
    looked_at: str | None = None

    def eip_by_allocation(self, allocation_id: str) -> EipSpec | None:
        """The configured EIP with this allocation id, if any."""
        return next((e for e in self.eips.values() if e.allocation_id == allocation_id), None)

    def eip_rules(self) -> dict[str, EipRule]:
        """Each EIP's part that the binding rule reads, by EIP name."""
        return {name: EipRule(e.home, dict(e.private_ips)) for name, e in self.eips.items()}


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


EMPTY = Config(
    path=None,
    region=None,
    node_name=None,
    interface=None,
    timeout=20.0,
    nodes=_frozen({}),
    eips=_frozen({}),
    monitor=None,
    keepalived_instances=_frozen({}),
)


# --------------------------------------------------------------------------- finding and reading


def resolve_path(explicit: str | None, env: Mapping[str, str]) -> tuple[str, bool]:
    """Which file to read, and whether it was named explicitly: ``--config`` first, then a
    non-empty ``EIPHA_CONFIG``, then :data:`DEFAULT_PATH`."""
    if explicit is not None:
        return explicit, True
    if env.get(ENV_VAR):
        return env[ENV_VAR], True
    return DEFAULT_PATH, False


def load(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config in effect. A missing default file means "no config" (:data:`EMPTY`, with
    the path looked at); a missing file named explicitly is :class:`NotConfigured`; an
    invalid one :class:`ConfigError`."""
    path, named = resolve_path(explicit, os.environ if env is None else env)
    if not named and _missing(path):
        return replace(EMPTY, looked_at=path)
    return parse_file(path)


def not_loaded(config: Config, how: str = f"set --config or {ENV_VAR}") -> str | None:
    """When no config file was found: that, where eipha looked, and ``how`` to name one
    (for a message's "why"); None when a config is loaded or was given in memory."""
    if config.path is not None or config.looked_at is None:
        return None
    return f"no config loaded: looked at {config.looked_at}; {how}"


def load_brief(explicit: str | None = None) -> Config:
    """:func:`load`, with an invalid config reported in one line (the first problem and a
    count), as commands other than ``config check`` report it."""
    try:
        return load(explicit)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else ""
        more = len(exc.problems) - 1
        tail = f"; and {more} more, see 'eipha config check'" if more > 0 else ""
        raise NotConfigured(exc.what, f"{first}{tail}") from None


def parse_file(path: str) -> Config:
    """Read and validate one file (``eipha config check FILE``)."""
    try:
        raw = _read(path)
    except FileNotFoundError:
        raise NotConfigured(f"config file {path} not found") from None
    except OSError as exc:
        raise NotConfigured(f"cannot read config file {path}", exc.strerror or str(exc)) from None
    return _parse_bytes(raw, path)


def _read(path: str) -> bytes:
    """At most MAX_BYTES + 1 bytes. Opened without blocking, so that a FIFO nobody writes to
    reads as empty instead of hanging the command (a ``status`` must never hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.set_blocking(fd, True)  # a pipe with a writer (``--config <(...)``) is read whole
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _missing(path: str) -> bool:
    """Only "no such file" is missing; any other failure is reported by reading it."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def parse_text(text: str, path: str | None = None) -> Config:
    """Validate YAML text; ``path`` only names it in messages and in :attr:`Config.path`."""
    label = path or "config"
    if len(text) > MAX_BYTES:
        raise _invalid(path, [_too_large(label)])
    data, problems = _load_yaml(text, label)
    problems += _validate(data, label)
    if problems:
        raise _invalid(path, problems)
    return _build(data, path)


def validate(data: object) -> list[str]:
    """Every problem of already-loaded data, each as ``path: message``; empty when valid."""
    return _validate(data, "config")


def _parse_bytes(raw: bytes, path: str) -> Config:
    if len(raw) > MAX_BYTES:
        raise _invalid(path, [_too_large(path)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(path, [f"{path}: not UTF-8 text (bad byte at offset {exc.start})"]) from None
    return parse_text(text, path)


def _too_large(label: str) -> str:
    return f"{label}: larger than 1 MiB; a config file is a few KiB"


def _invalid(path: str | None, problems: list[str]) -> ConfigError:
    rest = len(problems) - MAX_PROBLEMS
    shown = problems[:MAX_PROBLEMS]
    if rest > 0:
        shown.append(f"... and {rest} more problem{'s' if rest != 1 else ''}")
    error = ConfigError(f"invalid config {path}" if path else "invalid config", shown)
    error.why = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return error


# --------------------------------------------------------------------------- YAML to plain data


class _Bad:
    """A value that could not be read; already reported, skipped by every check."""

    def __repr__(self) -> str:
        return "<unreadable>"


_BAD: Any = _Bad()
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooBig(Exception):
    """The node tree exceeds a bound; the message says which."""


class _Composer(Protocol):
    """What is used of a PyYAML loader (the libyaml one when present: 20x faster)."""

    def get_single_node(self) -> yaml.Node | None: ...
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any: ...
    def dispose(self) -> None: ...


_LOADER: Callable[[str], _Composer] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


def _load_yaml(text: str, label: str) -> tuple[object, list[str]]:
    """(data, problems). A fatal problem (syntax, several documents) gives data :data:`_BAD`."""
    fatal = _check_characters(text, label) or _scan(text, label)
    if fatal:
        return _BAD, [fatal]
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        return _BAD, [_yaml_error(label, exc)]
    finally:
        loader.dispose()
    return _read_tree(loader, node, label)


def _read_tree(loader: _Composer, node: yaml.Node | None, label: str) -> tuple[object, list[str]]:
    if node is None:
        return None, []
    reader = _TreeReader(loader, label)
    try:
        return reader.read(node, "", 0), reader.problems
    except _TooBig as exc:
        return _BAD, [f"{label}: {exc}"]


def _check_characters(text: str, label: str) -> str | None:
    """YAML forbids control characters; say where the first one is (binary junk)."""
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return None
    at = found.start()
    line, column = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
    character = f"#x{ord(found.group()):04x}"
    return f"{label}: YAML error at line {line} column {column}: unacceptable character {character}"


def _scan(text: str, label: str) -> str | None:
    """One pass over the events before composing, whose recursion follows the nesting."""
    depth = documents = values = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):  # type: ignore[arg-type]
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    return f"{label}: more than one YAML document ({_line(event)} starts another)"
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    return f"{label}: nested deeper than {_MAX_DEPTH} levels ({_line(event)})"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            values += isinstance(event, yaml.NodeEvent)
            if values > _MAX_NODES:
                return f"{label}: more than {_MAX_NODES} values"
    except yaml.YAMLError as exc:
        return _yaml_error(label, exc)
    return None


def _number(item: yaml.Node | yaml.Event) -> int:
    return item.start_mark.line + 1 if item.start_mark is not None else 0


def _line(item: yaml.Node | yaml.Event) -> str:
    return f"line {_number(item)}"


def _yaml_error(label: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        why = "; ".join(part for part in (exc.context, exc.problem) if part)
        return f"{label}: YAML error at line {mark.line + 1} column {mark.column + 1}: {why}"
    return f"{label}: YAML error: {_clip(str(exc), 200)}"


class _TreeReader:
    """Node tree -> dicts, lists and scalars, reporting what plain YAML loading would hide."""

    def __init__(self, loader: _Composer, label: str) -> None:
        self.loader = loader
        self.label = label
        self.problems: list[str] = []
        self.count = 0

    def read(self, node: yaml.Node, path: str, depth: int) -> object:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooBig(f"more than {_MAX_NODES} values (after expanding aliases)")
        if depth > _MAX_DEPTH:
            raise _TooBig(f"nested deeper than {_MAX_DEPTH} levels (a recursive alias?)")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path, depth)
        return self._scalar(node, path)

    def _problem(self, path: str, message: str, node: yaml.Node | None = None) -> None:
        at = f" ({_line(node)})" if node is not None else ""
        self.problems.append(f"{path or self.label}: {message}{at}")

    def _tag_ok(self, node: yaml.Node, tag: str, path: str) -> bool:
        if node.tag != tag:
            self._problem(path, f"unsupported YAML tag {_show(node.tag)}", node)
        return node.tag == tag

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> object:
        if not self._tag_ok(node, _MAP_TAG, path):
            return _BAD
        result: dict[str, object] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in result:
                where = f"duplicate key {_show(key)} at line {_number(key_node)}"
                self._problem(_join(path, key), f"{where} (first at line {lines[key]})")
                continue
            lines[key] = _number(key_node)
            result[key] = self.read(value_node, _join(path, key), depth + 1)
        return result

    def _key(self, node: yaml.Node, path: str) -> str | None:
        """Keys are taken as written (``1:`` names "1", ``on:`` names "on")."""
        if not isinstance(node, yaml.ScalarNode):
            self._problem(path, "keys must be plain names, not a list or mapping", node)
            return None
        if node.tag == _MERGE_TAG:
            self._problem(path, "merge keys ('<<') are not supported; write the keys out", node)
            return None
        return str(node.value)

    def _sequence(self, node: yaml.SequenceNode, path: str, depth: int) -> object:
        if not self._tag_ok(node, _SEQ_TAG, path):
            return _BAD
        return [self.read(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)]

    def _scalar(self, node: yaml.Node, path: str) -> object:
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            self._problem(path, f"cannot read {_show(node.value)}: {_clip(str(reason), 100)}", node)
            return _BAD


# --------------------------------------------------------------------------- message helpers


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: object) -> str:
    """The offending value for a message: strings quoted, containers by kind, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, int) and abs(value) >= 10**30:
        return "a huge number"
    if isinstance(value, str):
        return repr(_clip(value))
    return _clip(repr(value))


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")


def _join(path: str, key: object) -> str:
    """``eips`` + ``web-a`` -> ``eips.web-a``; odd keys are quoted: ``nodes['lb a']``."""
    if isinstance(key, str) and _PLAIN_SEGMENT.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_show(key)}]"


def _names(known: Collection[str]) -> str:
    """Names for a message, odd ones quoted (a newline in a key must not break the line)."""
    shown = [n if _PLAIN_SEGMENT.fullmatch(n) else _show(n) for n in list(known)[:10]]
    return ", ".join(shown) + (", ..." if len(known) > 10 else "")


def _not_one_of(value: str, known: Collection[str], what: str) -> str:
    return f"{_show(value)} is not one of the {what} ({_names(known)})"


def _unknown_key(path: str, key: str, allowed: Collection[str]) -> str:
    import difflib  # only for an invalid config: not paid by every valid load

    close = difflib.get_close_matches(key, list(allowed), n=1) if len(key) < 100 else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{_join(path, key)}: unknown key {_show(key)}{hint}"


# --------------------------------------------------------------------------- value checkers

Check: TypeAlias = Callable[[object], "str | None"]  # None when fine, else the message

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]+")  # eu-west-1, us-gov-west-1, eusc-de-east-1
_INTERFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_INSTANCE_ID = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")
ALLOCATION_ID = re.compile(r"eipalloc-([0-9a-f]{8}|[0-9a-f]{17})")
_NO_SPACE = re.compile(r"[^\s\x00-\x1f\x7f]+")


def _string(value: object) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {_show(value)}"


def _text(value: object) -> str | None:
    if value == "":
        return "must not be empty"
    return _string(value)


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: object) -> str | None:
        problem = _text(value)
        if problem or regex.fullmatch(str(value)):
            return problem
        return f"{_show(value)} is not {what}"

    return check


_name = _pattern(_NAME, "a valid name (up to 63 of A-Z a-z 0-9 . _ -, first a letter or digit)")
_region = _pattern(_REGION, "an AWS region name (like 'eu-west-1')")
_interface = _pattern(_INTERFACE, "an interface name (like 'eth0')")
_instance_id = _pattern(_INSTANCE_ID, "an instance id")
_allocation_id = _pattern(ALLOCATION_ID, "an allocation id")


def _ipv4(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be an IPv4 address, got {_show(value)}"
    if _parses(ipaddress.IPv4Address, value):
        return None
    if _parses(ipaddress.IPv6Address, value):
        return f"{_show(value)} is IPv6; use IPv4"
    return f"{_show(value)} is not an IPv4 address"


_HOST_PORT = re.compile(r"([0-9.]+):([0-9]{1,5})")


def _quorum_target(value: object) -> str | None:
    """``A.B.C.D`` (answers ICMP echo) or ``A.B.C.D:PORT`` (accepts a TCP connection)."""
    if not isinstance(value, str):
        return f"must be an IPv4 address or IPv4:PORT, got {_show(value)}"
    split = _HOST_PORT.fullmatch(value)
    if split is None:
        if _parses(ipaddress.IPv4Address, value) or _parses(ipaddress.IPv6Address, value):
            return _ipv4(value)  # fine, or "is IPv6; use IPv4"
        return f"{_show(value)} is not an IPv4 address or IPv4:PORT"
    host, port = split.groups()
    if _ipv4(host) is not None:
        return f"{_show(value)} is not IPv4:PORT ({_show(host)} is not an IPv4 address)"
    if not 1 <= int(port) <= 65535:
        return f"{_show(value)}: the port must be 1 to 65535"
    return None


def _parses(kind: Callable[[str], object], value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _absolute_path(value: object) -> str | None:
    problem = _text(value)
    if problem or (str(value).startswith("/") and "\x00" not in str(value)):
        return problem
    return f"{_show(value)} is not an absolute path"


def _key_path(value: object) -> str | None:
    """Like :func:`_absolute_path`, but a value long enough to be a key (32 characters) is
    not shown: a key pasted where its path goes must not reach a log."""
    problem = _absolute_path(value)
    if problem is None or len(str(value)) < 32:
        return problem
    return f"not an absolute path ({len(str(value))} characters, not shown: it may be the key)"


def _url(value: object) -> str | None:
    problem = _text(value)
    if problem:
        return problem
    text = str(value)
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        # .port raises ValueError when out of range; 0 is no port either
    except ValueError:
        ok = False
    if ok and _NO_SPACE.fullmatch(text):
        return None
    return f"{_show(value)} is not an http:// or https:// URL"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"


def _seconds(low: str, high: float) -> Check:
    """Seconds as int or float, ``> 0`` (low ">") or ``>= 0`` (low ">="), ``<= high``."""

    def check(value: object) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"must be a number of seconds, got {_show(value)}"
        if (value > 0 if low == ">" else value >= 0) and value <= high:
            return None
        return f"must be {low} 0 and <= {high:g}, got {_show(value)}"

    return check


def _integer(low: int, high: int) -> Check:
    def check(value: object) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {_show(value)}"
        if low <= value <= high:
            return None
        return f"must be >= {low} and <= {high}, got {_show(value)}"

    return check


_timeout = _seconds(">", 3600)
_interval = _seconds(">", 86400)  # a day: far beyond any sane interval
_hold = _seconds(">=", 86400)
_port = _integer(1, 65535)
_count = _integer(1, 1000)


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class _Field:
    schema: _Schema
    default: object = None
    required: str | None = None  # the message when missing; None means optional


@dataclass(frozen=True)
class _Record:
    """A mapping with a fixed set of keys."""

    fields: Mapping[str, _Field]


@dataclass(frozen=True)
class _MapOf:
    """A mapping of names to values of one schema."""

    key: Check
    value: _Schema
    empty: str | None = None  # the message when empty; None allows empty


@dataclass(frozen=True)
class _ListOf:
    item: Check
    empty: str | None = None  # the message when empty; None allows empty


_Schema: TypeAlias = "_Record | _MapOf | _ListOf | Check"

_NODE = _Record({"instance_id": _Field(_instance_id), "address": _Field(_ipv4)})

_EIP = _Record(
    {
        "allocation_id": _Field(_allocation_id, required="missing (the EIP's eipalloc- id)"),
        "home": _Field(_name, required="missing (the node this EIP belongs on)"),
        "private_ips": _Field(_MapOf(_name, _ipv4)),
    }
)

_HEALTH_CHECK = _Record(
    {
        "command": _Field(_text),
        "url": _Field(_url),
        "interval": _Field(_interval, 2.0),
        "fall": _Field(_count, 2),
        "rise": _Field(_count, 3),
    }
)


def _listen(value: object) -> str | None:
    """``A.B.C.D:PORT`` to listen on."""
    if not (isinstance(value, str) and _HOST_PORT.fullmatch(value)):
        return f"must be IPv4:PORT to listen on, got {_show(value)}"
    return _quorum_target(value)


_METRICS = _Record({"textfile": _Field(_absolute_path), "listen": _Field(_listen)})

_MONITOR = _Record(
    {
        "port": _Field(_port, 7694),
        "key_file": _Field(_key_path, required="missing (the file with the shared key)"),
        "interval": _Field(_interval, 1.0),
        "dead_after": _Field(_interval, 5.0),
        "init_dead": _Field(_interval, 15.0),
        "quorum": _Field(_ListOf(_quorum_target), ()),
        "health_check": _Field(_HEALTH_CHECK),
        "auto_failback": _Field(_boolean, True),
        "min_hold": _Field(_hold, 10.0),
        "release_on_exit": _Field(_boolean, False),
        "metrics": _Field(_METRICS),
    }
)

_KEEPALIVED = _Record(
    {
        "instances": _Field(
            _MapOf(_name, _ListOf(_name, empty="must name at least one EIP")),
            required="missing (VRRP instance name -> list of EIP names)",
        )
    }
)

_TOP = _Record(
    {
        "region": _Field(_region),
        "node_name": _Field(_name),
        "interface": _Field(_interface),
        "timeout": _Field(_timeout, 20.0),
        "nodes": _Field(_MapOf(_name, _NODE)),
        "eips": _Field(
            _MapOf(_name, _EIP, empty="must hold at least one EIP"),
            required="missing; it must hold at least one EIP",
        ),
        "monitor": _Field(_MONITOR),
        "keepalived": _Field(_KEEPALIVED),
    }
)


def _check(schema: _Schema, value: object, path: str, out: list[str]) -> None:
    if value is _BAD:
        return
    if isinstance(schema, _Record):
        _check_record(schema, value, path, out)
    elif isinstance(schema, _MapOf):
        _check_map(schema, value, path, out)
    elif isinstance(schema, _ListOf):
        _check_list(schema, value, path, out)
    else:
        problem = schema(value)
        if problem:
            out.append(f"{path}: {problem}")


def _check_record(record: _Record, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: must be a mapping, got {_show(value)}")
        return
    for key, item in value.items():
        spec = record.fields.get(key) if isinstance(key, str) else None
        if spec is not None:
            _check(spec.schema, item, _join(path, key), out)
        elif isinstance(key, str):
            out.append(_unknown_key(path, key, record.fields))
        else:
            out.append(f"{path or 'config'}: keys must be strings, got {_show(key)}")
    missing = [(k, f.required) for k, f in record.fields.items() if f.required and k not in value]
    out.extend(f"{_join(path, key)}: {message}" for key, message in missing)


def _check_map(schema: _MapOf, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: must be a mapping, got {_show(value)}")
        return
    if not value and schema.empty:
        out.append(f"{path}: {schema.empty}")
    for key, item in value.items():
        _check(schema.key, key, _join(path, key), out)
        _check(schema.value, item, _join(path, key), out)


def _check_list(schema: _ListOf, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, list):
        out.append(f"{path}: must be a list, got {_show(value)}")
        return
    if not value and schema.empty:
        out.append(f"{path}: {schema.empty}")
    for index, item in enumerate(value):
        _check(schema.item, item, f"{path}[{index}]", out)


def _get(record: _Record, data: Mapping[str, Any], key: str) -> Any:
    """The value of ``key``, or the schema's default."""
    return data.get(key, record.fields[key].default)


def _valid(check: Check, value: object) -> bool:
    return value is not _BAD and check(value) is None


def _is_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


# --------------------------------------------------------------------------- cross-field rules


def _validate(data: object, top: str) -> list[str]:
    if data is _BAD:
        return []
    if data is None:
        return [f"{top}: is empty; expected a mapping with at least 'eips'"]
    if not isinstance(data, dict):
        return [f"{top}: must be a mapping of settings, got {_show(data)}"]
    out: list[str] = []
    _check(_TOP, data, "", out)
    for rule in _CROSS_RULES:
        rule(data, out)
    return out


def _section(data: Mapping[Any, Any], key: str) -> dict[Any, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _entries(section: Mapping[Any, Any]) -> Iterator[tuple[str, dict[Any, Any]]]:
    """(name, mapping) for the well-formed entries of a name -> mapping section."""
    for name, value in section.items():
        if isinstance(name, str) and isinstance(value, dict):
            yield name, value


def _unique(section: Mapping[Any, Any], path: str, key: str, check: Check, out: list[str]) -> None:
    owner = "node" if path == "nodes" else "EIP"
    seen: dict[str, str] = {}
    for name, spec in _entries(section):
        value = spec.get(key)
        if not (isinstance(value, str) and _valid(check, value)):
            continue
        if value in seen:
            where = _join(_join(path, name), key)
            out.append(f"{where}: {_show(value)} is already used by {owner} {seen[value]!r}")
        else:
            seen[value] = name


def _rule_unique_ids(data: Mapping[Any, Any], out: list[str]) -> None:
    nodes = _section(data, "nodes")
    _unique(nodes, "nodes", "instance_id", _instance_id, out)
    _unique(nodes, "nodes", "address", _ipv4, out)
    _unique(_section(data, "eips"), "eips", "allocation_id", _allocation_id, out)


def _rule_node_name(data: Mapping[Any, Any], out: list[str]) -> None:
    nodes = _section(data, "nodes")
    name = data.get("node_name")
    if nodes and _is_name(name) and name not in nodes:
        out.append(f"node_name: {_not_one_of(name, nodes, 'nodes')}")


def _rule_eip_nodes(data: Mapping[Any, Any], out: list[str]) -> None:
    """When ``nodes:`` is given, homes and ``private_ips`` keys name nodes exactly."""
    nodes = _section(data, "nodes")
    if not nodes:
        return
    for name, spec in _entries(_section(data, "eips")):
        path = _join("eips", name)
        home = spec.get("home")
        if _is_name(home) and home not in nodes:
            out.append(f"{path}.home: {_not_one_of(home, nodes, 'nodes')}")
        for node in _section(spec, "private_ips"):
            if _is_name(node) and node not in nodes:
                where = _join(f"{path}.private_ips", node)
                out.append(f"{where}: {_not_one_of(node, nodes, 'nodes')}")


def _rule_private_ips(data: Mapping[Any, Any], out: list[str]) -> None:
    """One private IP of a node carries one EIP at most."""
    seen: dict[tuple[str, str], str] = {}
    for name, spec in _entries(_section(data, "eips")):
        for node, ip in _section(spec, "private_ips").items():
            if not (isinstance(node, str) and _valid(_ipv4, ip)):
                continue
            if (node, ip) in seen:
                where = _join(_join(_join("eips", name), "private_ips"), node)
                out.append(
                    f"{where}: {_show(ip)} is already given to EIP {seen[node, ip]!r} "
                    f"on node {node!r}"
                )
            else:
                seen[node, ip] = name


def _rule_keepalived(data: Mapping[Any, Any], out: list[str]) -> None:
    eips = _section(data, "eips")
    instances = _section(_section(data, "keepalived"), "instances")
    if not eips:
        return
    for instance, names in instances.items():
        if not isinstance(names, list):
            continue
        for index, name in enumerate(names):
            if _is_name(name) and name not in eips:
                where = f"{_join('keepalived.instances', instance)}[{index}]"
                out.append(f"{where}: {_not_one_of(name, eips, 'EIPs')}")


def _rule_monitor(data: Mapping[Any, Any], out: list[str]) -> None:
    monitor = data.get("monitor")
    if not isinstance(monitor, dict):
        return
    _monitor_nodes(data, out)
    _monitor_timing(monitor, out)
    _monitor_health_check(monitor.get("health_check"), out)
    metrics = monitor.get("metrics")
    if isinstance(metrics, dict) and not metrics:
        out.append("monitor.metrics: give a textfile, a listen address, or both")


def _monitor_nodes(data: Mapping[Any, Any], out: list[str]) -> None:
    """Peers are the other entries of ``nodes:``; each needs an ``address``."""
    if "nodes" not in data:
        out.append("nodes: required by monitor (at least 2 nodes, each with an address)")
        return
    nodes = _section(data, "nodes")
    if isinstance(data["nodes"], dict) and len(nodes) < 2:
        out.append(f"nodes: the peer monitor needs at least 2 nodes, got {len(nodes)}")
    for name, spec in _entries(nodes):
        if "address" not in spec:
            out.append(f"{_join(_join('nodes', name), 'address')}: required by the peer monitor")


def _monitor_timing(monitor: Mapping[Any, Any], out: list[str]) -> None:
    interval, dead, init = (
        _get(_MONITOR, monitor, k) for k in ("interval", "dead_after", "init_dead")
    )
    if not all(_valid(_interval, v) for v in (interval, dead, init)):
        return
    if dead < 3 * interval:
        default = "" if "dead_after" in monitor else " (the default)"
        out.append(
            f"monitor.dead_after: must be at least 3 x interval ({3 * interval:g}), "
            f"got {dead:g}{default}"
        )
    if init < dead:
        default = "" if "init_dead" in monitor else " (the default)"
        out.append(
            f"monitor.init_dead: must be at least dead_after ({dead:g}), got {init:g}{default}"
        )


def _monitor_health_check(check: object, out: list[str]) -> None:
    if not isinstance(check, dict):
        return
    given = [key for key in ("command", "url") if key in check]
    if len(given) == 2:
        out.append("monitor.health_check: give either command or url, not both")
    elif not given:
        out.append("monitor.health_check: needs a command or a url")


def _rule_one_primary(data: Mapping[Any, Any], out: list[str]) -> None:
    """Binding rule 2 gives every EIP whose home is N N's primary IP: at most one may use it."""
    on_primary: dict[str, str] = {}
    for name, spec in _entries(_section(data, "eips")):
        home = spec.get("home")
        if not _is_name(home) or home in _section(spec, "private_ips"):
            continue
        if home in on_primary:
            where = _join("eips", name)
            out.append(
                f"{_join(where, 'home')}: EIP {on_primary[home]!r} already takes "
                f"{home}'s primary IP; give this one {_join(_join(where, 'private_ips'), home)}"
            )
        else:
            on_primary[home] = name


_CROSS_RULES: tuple[Callable[[Mapping[Any, Any], list[str]], None], ...] = (
    _rule_unique_ids,
    _rule_node_name,
    _rule_eip_nodes,
    _rule_private_ips,
    _rule_one_primary,
    _rule_keepalived,
    _rule_monitor,
)


# --------------------------------------------------------------------------- building the values


def _build(data: Any, path: str | None) -> Config:
    """The :class:`Config` for data that :func:`validate` found valid."""
    return Config(
        path=path,
        region=data.get("region"),
        node_name=data.get("node_name"),
        interface=data.get("interface"),
        timeout=float(_get(_TOP, data, "timeout")),
        nodes=_frozen({n: _build_node(n, s) for n, s in data.get("nodes", {}).items()}),
        eips=_frozen({n: _build_eip(n, s) for n, s in data["eips"].items()}),
        monitor=_build_monitor(data.get("monitor")),
        keepalived_instances=_build_keepalived(data.get("keepalived")),
    )


def _build_node(name: str, spec: Mapping[str, Any]) -> NodeSpec:
    return NodeSpec(name=name, instance_id=spec.get("instance_id"), address=spec.get("address"))


def _build_eip(name: str, spec: Mapping[str, Any]) -> EipSpec:
    return EipSpec(
        name=name,
        allocation_id=spec["allocation_id"],
        home=spec["home"],
        private_ips=_frozen(spec.get("private_ips", {})),
    )


def _build_monitor(spec: Mapping[str, Any] | None) -> MonitorSpec | None:
    if spec is None:
        return None

    def get(key: str) -> Any:
        return _get(_MONITOR, spec, key)

    return MonitorSpec(
        port=get("port"),
        key_file=get("key_file"),
        interval=float(get("interval")),
        dead_after=float(get("dead_after")),
        init_dead=float(get("init_dead")),
        quorum=tuple(get("quorum")),
        health_check=_build_health_check(spec.get("health_check")),
        auto_failback=get("auto_failback"),
        min_hold=float(get("min_hold")),
        release_on_exit=get("release_on_exit"),
        metrics_textfile=(spec.get("metrics") or {}).get("textfile"),
        metrics_listen=(spec.get("metrics") or {}).get("listen"),
    )


def _build_health_check(spec: Mapping[str, Any] | None) -> HealthCheck | None:
    if spec is None:
        return None
    return HealthCheck(
        command=spec.get("command"),
        url=spec.get("url"),
        interval=float(_get(_HEALTH_CHECK, spec, "interval")),
        fall=_get(_HEALTH_CHECK, spec, "fall"),
        rise=_get(_HEALTH_CHECK, spec, "rise"),
    )


def _build_keepalived(spec: Mapping[str, Any] | None) -> Mapping[str, tuple[str, ...]]:
    instances = spec["instances"] if spec is not None else {}
    return _frozen({name: tuple(eips) for name, eips in instances.items()})
