"""Building the frozen values from data already known to be valid, with the schema's
defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eipha.config import schema
from eipha.config.values import Config, EipSpec, HealthCheck, MonitorSpec, NodeSpec, frozen


def to_config(data: Any, path: str | None) -> Config:
    """The :class:`Config` for data that passed the schema and the cross-field rules."""
    return Config(
        path=path,
        region=data.get("region"),
        node_name=data.get("node_name"),
        interface=data.get("interface"),
        timeout=float(schema.value_of(schema.TOP, data, "timeout")),
        nodes=frozen({n: _build_node(n, s) for n, s in data.get("nodes", {}).items()}),
        eips=frozen({n: _build_eip(n, s) for n, s in data["eips"].items()}),
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
        private_ips=frozen(spec.get("private_ips", {})),
    )


def _build_monitor(spec: Mapping[str, Any] | None) -> MonitorSpec | None:
    if spec is None:
        return None

    def get(key: str) -> Any:
        return schema.value_of(schema.MONITOR, spec, key)

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
        interval=float(schema.value_of(schema.HEALTH_CHECK, spec, "interval")),
        fall=schema.value_of(schema.HEALTH_CHECK, spec, "fall"),
        rise=schema.value_of(schema.HEALTH_CHECK, spec, "rise"),
    )


def _build_keepalived(spec: Mapping[str, Any] | None) -> Mapping[str, tuple[str, ...]]:
    instances = spec["instances"] if spec is not None else {}
    return frozen({name: tuple(eips) for name, eips in instances.items()})
