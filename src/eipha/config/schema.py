"""The little schema language (a record of fields with defaults, a map of names, a list)
and the field tables of every section of the config, with the walk that checks data
against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from eipha.config import checks
from eipha.config.checks import Check
from eipha.config.messages import join, show, unknown_key
from eipha.config.read import BAD


@dataclass(frozen=True)
class Field:
    schema: Schema
    default: object = None
    required: str | None = None  # the message when missing; None means optional


@dataclass(frozen=True)
class Record:
    """A mapping with a fixed set of keys."""

    fields: Mapping[str, Field]


@dataclass(frozen=True)
class MapOf:
    """A mapping of names to values of one schema."""

    key: Check
    value: Schema
    empty: str | None = None  # the message when empty; None allows empty


@dataclass(frozen=True)
class ListOf:
    item: Check
    empty: str | None = None  # the message when empty; None allows empty


Schema: TypeAlias = "Record | MapOf | ListOf | Check"

NODE = Record({"instance_id": Field(checks.instance_id), "address": Field(checks.ipv4)})

EIP = Record(
    {
        "allocation_id": Field(checks.allocation_id, required="missing (the EIP's eipalloc- id)"),
        "home": Field(checks.name, required="missing (the node this EIP belongs on)"),
        "private_ips": Field(MapOf(checks.name, checks.ipv4)),
    }
)

HEALTH_CHECK = Record(
    {
        "command": Field(checks.text),
        "url": Field(checks.url),
        "interval": Field(checks.interval, 2.0),
        "fall": Field(checks.count, 2),
        "rise": Field(checks.count, 3),
    }
)

METRICS = Record({"textfile": Field(checks.absolute_path), "listen": Field(checks.listen)})

MONITOR = Record(
    {
        "port": Field(checks.port, 7694),
        "key_file": Field(checks.key_path, required="missing (the file with the shared key)"),
        "interval": Field(checks.interval, 1.0),
        "dead_after": Field(checks.interval, 5.0),
        "init_dead": Field(checks.interval, 15.0),
        "quorum": Field(ListOf(checks.quorum_target), ()),
        "health_check": Field(HEALTH_CHECK),
        "auto_failback": Field(checks.boolean, True),
        "min_hold": Field(checks.hold, 10.0),
        "release_on_exit": Field(checks.boolean, False),
        "metrics": Field(METRICS),
    }
)

KEEPALIVED = Record(
    {
        "instances": Field(
            MapOf(checks.name, ListOf(checks.name, empty="must name at least one EIP")),
            required="missing (VRRP instance name -> list of EIP names)",
        )
    }
)

TOP = Record(
    {
        "region": Field(checks.region),
        "node_name": Field(checks.name),
        "interface": Field(checks.interface),
        "timeout": Field(checks.timeout, 20.0),
        "nodes": Field(MapOf(checks.name, NODE)),
        "eips": Field(
            MapOf(checks.name, EIP, empty="must hold at least one EIP"),
            required="missing; it must hold at least one EIP",
        ),
        "monitor": Field(MONITOR),
        "keepalived": Field(KEEPALIVED),
    }
)


def check(schema: Schema, value: object, path: str, out: list[str]) -> None:
    if value is BAD:
        return
    if isinstance(schema, Record):
        _check_record(schema, value, path, out)
    elif isinstance(schema, MapOf):
        _check_map(schema, value, path, out)
    elif isinstance(schema, ListOf):
        _check_list(schema, value, path, out)
    else:
        problem = schema(value)
        if problem:
            out.append(f"{path}: {problem}")


def _check_record(record: Record, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: must be a mapping, got {show(value)}")
        return
    for key, item in value.items():
        spec = record.fields.get(key) if isinstance(key, str) else None
        if spec is not None:
            check(spec.schema, item, join(path, key), out)
        elif isinstance(key, str):
            out.append(unknown_key(path, key, record.fields))
        else:
            out.append(f"{path or 'config'}: keys must be strings, got {show(key)}")
    missing = [(k, f.required) for k, f in record.fields.items() if f.required and k not in value]
    out.extend(f"{join(path, key)}: {message}" for key, message in missing)


def _check_map(schema: MapOf, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: must be a mapping, got {show(value)}")
        return
    if not value and schema.empty:
        out.append(f"{path}: {schema.empty}")
    for key, item in value.items():
        check(schema.key, key, join(path, key), out)
        check(schema.value, item, join(path, key), out)


def _check_list(schema: ListOf, value: object, path: str, out: list[str]) -> None:
    if not isinstance(value, list):
        out.append(f"{path}: must be a list, got {show(value)}")
        return
    if not value and schema.empty:
        out.append(f"{path}: {schema.empty}")
    for index, item in enumerate(value):
        check(schema.item, item, f"{path}[{index}]", out)


def value_of(record: Record, data: Mapping[str, Any], key: str) -> Any:
    """The value of ``key``, or the schema's default."""
    return data.get(key, record.fields[key].default)
