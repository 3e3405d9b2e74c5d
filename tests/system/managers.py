"""Configuring and running the real cluster managers on the lab's nodes."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.system.lab import Lab, Node

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"

HA_CF = """\
# eipha lab: heartbeat over unicast UDP 694 between the two nodes
logfile {log}/ha-log
debugfile {log}/ha-debug
logfacility none
use_logd no
keepalive 500ms
warntime 1
deadtime 2
initdead 4
udpport 694
ucast eth0 {peer}
auto_failback on
node lb-a
node lb-b
crm no
"""

KEEPALIVED_CONF = """\
global_defs {{
    router_id {name}
    enable_script_security
    script_user root{fifo}
}}
{instances}
"""
FIFO = (
    "\n    vrrp_notify_fifo /run/keepalived-eipha.fifo"
    '\n    vrrp_notify_fifo_script "/etc/keepalived/eipha-notify fifo"'
)
# keepalived.conf has no line continuation, hence the one long line
NOTIFY = (
    "\n    notify {script}"
    '\n    notify_master_rx_lower_pri "{script} INSTANCE {instance} MASTER_RX_LOWER_PRI"'
)
VRRP_INSTANCE = """\
vrrp_instance {instance} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}{notify}
}}
"""


def install_heartbeat(lab: Lab, resource_script: str | Path = "heartbeat/eipha") -> None:
    """ha.cf, authkeys (0600), haresources (identical on both nodes) and the shim."""
    for node in lab.nodes.values():
        had = node.dir / "ha.d"
        shutil.copytree("/etc/ha.d", had, dirs_exist_ok=True, symlinks=True)
        (had / "ha.cf").write_text(HA_CF.format(log=node.dir / "log", peer=node.peer))
        (had / "authkeys").write_text("auth 1\n1 sha1 eipha-lab-secret\n")
        (had / "authkeys").chmod(0o600)
        (had / "haresources").write_text("lb-a eipha::web-a\nlb-b eipha::web-b\n")
        lab.shim(resource_script, had / "resource.d" / "eipha")


def start_heartbeat(node: Node) -> None:
    result = node.run([HEARTBEAT])
    assert result.returncode == 0, result.stderr


def stop_heartbeat(node: Node) -> None:
    """The graceful way: `heartbeat -k` gives the node's resources up first."""
    result = node.run([HEARTBEAT, "-k"], timeout=120)
    assert result.returncode == 0, result.stderr


def install_keepalived(
    lab: Lab,
    notify_script: str | Path = "keepalived/eipha-notify",
    *,
    fifo: bool = False,
    notify: str | None = "/etc/keepalived/eipha-notify",
) -> None:
    """Two VRRP instances, active-active: lb-a is master of VI_A (web-a), lb-b of VI_B.

    The script is installed as /etc/keepalived/eipha-notify. It is each instance's
    ``notify`` (and ``notify_master_rx_lower_pri``) script, or with ``fifo`` the
    ``vrrp_notify_fifo_script``; ``notify`` names another script for the instances, or none.
    """
    for node in lab.nodes.values():
        config = json.loads((node.dir / "eipha.yaml").read_text())
        config["keepalived"] = {"instances": {"VI_A": ["web-a"], "VI_B": ["web-b"]}}
        (node.dir / "eipha.yaml").write_text(json.dumps(config))
        mine = {"lb-a": "VI_A", "lb-b": "VI_B"}[node.name]
        instances = "".join(
            VRRP_INSTANCE.format(
                instance=instance,
                vrid=vrid,
                me=node.primary,
                peer=node.peer,
                priority=150 if instance == mine else 100,
                notify=NOTIFY.format(script=notify, instance=instance) if notify else "",
            )
            for instance, vrid in (("VI_A", 51), ("VI_B", 52))
        )
        kd = node.dir / "keepalived"
        (kd / "keepalived.conf").write_text(
            KEEPALIVED_CONF.format(name=node.name, instances=instances, fifo=FIFO if fifo else "")
        )
        lab.shim(notify_script, kd / "eipha-notify")


def start_keepalived(node: Node) -> None:
    result = node.run(["keepalived", "-f", "/etc/keepalived/keepalived.conf", "-l", "-D"])
    assert result.returncode == 0, result.stderr


@dataclass
class Watch:
    """Samples where both EIPs are, ten times a second, in a background thread."""

    lab: Lab
    samples: list[tuple[float, tuple[str | None, str | None], tuple[str | None, str | None]]] = (
        field(default_factory=list)
    )
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(
                (time.monotonic(), self.lab.where("web-a"), self.lab.where("web-b"))
            )

    def both_unassociated(self) -> list[float]:
        return [t for t, a, b in self.samples if a[0] is None and b[0] is None]
