"""The sandbox's live log: each EC2 request a node made, ids shown by name, and where the
EIPs are after each change."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eipha.sim.sandbox import Running

CHANGES = ("AssociateAddress", "DisassociateAddress")  # followed by where the EIPs are


class RequestLog:
    """Prints the EC2 requests the nodes made since the last call, ids named, and where the
    EIPs are after each change. The sandbox's own requests (router, read-backs) are left
    out."""

    def __init__(self, sandbox: Running, out: Callable[[str], None]) -> None:
        from eipha.sim.region import FAKE_ACCESS_KEY_ID

        self.sandbox = sandbox
        self.out = out
        self.ours = FAKE_ACCESS_KEY_ID
        self.since = sandbox.region.mark()
        world = sandbox.world
        self.names = {e.allocation_id: e.name for e in world.eips.values()}
        self.names |= {e.public_ip: e.name for e in world.eips.values()}
        self.names |= {n.eni_id: n.name for n in world.nodes.values()}
        self.names |= {n.instance_id: n.name for n in world.nodes.values()}

    def show_new(self) -> None:
        region = self.sandbox.region
        new = region.calls(since=self.since)
        self.since += len(new)
        changed = False
        for request in new:
            if request.client == self.ours:
                continue
            self.out(self.line(request))
            dry = request.params.get("DryRun") == "true"
            changed |= request.action in CHANGES and request.status == 200 and not dry
        if changed:
            self.out(f"{'':8}  now: {self.placements()}")

    def line(self, request: Any) -> str:
        """``HH:MM:SS  NODE: Action Param=value,… -> outcome``, ids shown by name."""
        who = request.client.removeprefix("sandbox-")
        dry = request.params.get("DryRun") == "true"
        if request.status == 200:
            outcome = "ok"
        elif dry and request.status == 412:  # moto's status for DryRunOperation
            outcome = "DryRunOperation (would be allowed)"
        else:
            outcome = f"error (HTTP {request.status})"
        params = short_params(request.params, self.names)
        return f"{time.strftime('%H:%M:%S')}  {who}: {request.action} {params} -> {outcome}"

    def placements(self) -> str:
        world = self.sandbox.world
        addresses = self.sandbox.client.describe_addresses()["Addresses"]
        by_id = {a["AllocationId"]: a for a in addresses}
        where = []
        for eip in world.eips.values():
            node, ip = world.placement(by_id.get(eip.allocation_id, {}))
            where.append(f"{eip.name} on {node} {ip}" if node else f"{eip.name} unassociated")
        return "; ".join(where)


_FILTER = re.compile(r"Filter\.(\d+)\.(Name|Value\.\d+)")
_INDEXED = re.compile(r"\.\d+$")


def short_params(params: Mapping[str, str], names: Mapping[str, str]) -> str:
    """A request's parameters, short: ids by name, lists joined (``AllocationId=web-a,web-b``),
    a filter as ``NAME=values``; no Action, Version or ``DryRun=false``."""
    shown: dict[str, list[str]] = {}
    filters: dict[str, str] = {}
    for key, value in params.items():
        if key in ("Action", "Version") or (key == "DryRun" and value == "false"):
            continue
        match = _FILTER.fullmatch(key)
        if match and match.group(2) == "Name":
            filters[match.group(1)] = value
            continue
        label = filters.get(match.group(1), key) if match else _INDEXED.sub("", key)
        shown.setdefault(label, []).append(names.get(value, value))
    return " ".join(f"{label}={','.join(values)}" for label, values in shown.items())
