"""Converging ansible/site.yml into a staging root, for the Ansible tests and the lab.

Every path the roles write is redirected under ``ROOT/<inventory host>/``; package installs,
pip and systemctl are switched off (``*_install*: false``, ``*_service_manage: false``), and
the play runs with the local connection inside a fresh network namespace that has only
loopback and an unconnected veth ``eth0`` (keepalived's config test wants the VRRP interface
to exist): no task can reach AWS or any other address. The template validators are the real tools
(``eipha config check``, ``keepalived -t`` through the role's wrapper, ``haproxy -c``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
EIPHA_BIN = BIN / "eipha"
INVENTORY = ANSIBLE / "inventory.example.yml"
HOSTS = ("lb-a", "lb-b")
# a fresh network namespace: loopback and an unconnected veth eth0, no routes anywhere else
ISOLATE = (
    "ip link set lo up && ip link add eth0 type veth peer name eth0-peer"
    ' && ip link set eth0 up && exec "$@"'
)
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def staging_vars(root: Path, manager: str) -> dict[str, Any]:
    """Extra variables that keep a converge inside ``root`` and off the network."""
    node = f"{root}/{{{{ inventory_hostname }}}}"
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        "eipha_manager": manager,
        "eipha_install": False,
        "eipha_bin": str(EIPHA_BIN),
        "eipha_config_dir": f"{node}/etc/eipha",
        "eipha_defaults_file": f"{node}/etc/default/eipha",
        "eipha_heartbeat_resource_dir": f"{node}/etc/ha.d/resource.d",
        "eipha_keepalived_notify_path": f"{node}/etc/keepalived/eipha-notify",
        "eipha_ocf_dir": f"{node}/usr/lib/ocf/resource.d/eipha",
        "eipha_systemd_dir": f"{node}/etc/systemd/system",
        "eipha_service_manage": False,
        "eipha_secondary_ips_service_manage": False,
        "eipha_monitor_key_file": f"{node}/etc/eipha/monitor.key",
        "eipha_monitor_key_local_path": f"{root}/controller/eipha-monitor.key",
        "eipha_monitor_service_manage": False,
        "heartbeat_config_dir": f"{node}/etc/ha.d",
        "heartbeat_install_package": False,
        "heartbeat_service_manage": False,
        "vault_heartbeat_authkeys_secret": "0123456789abcdef0123456789abcdef",
        "keepalived_config_dir": f"{node}/etc/keepalived",
        "keepalived_notify_script": f"{node}/etc/keepalived/eipha-notify",
        "keepalived_config_test_path": f"{node}/usr/local/sbin/keepalived-config-test",
        "keepalived_install_package": False,
        "keepalived_service_manage": False,
        "haproxy_config_file": f"{node}/etc/haproxy/haproxy.cfg",
        "haproxy_install_package": False,
        "haproxy_service_manage": False,
    }


@dataclass
class Converge:
    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}


def isolated(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a new network namespace (root only) with lo and an unconnected veth eth0."""
    return subprocess.run(
        ["unshare", "--net", "sh", "-ec", ISOLATE, "isolated", *cmd],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def converge(
    root: Path,
    manager: str,
    extra: Mapping[str, Any] | None = None,
    inventory: Path = INVENTORY,
    wrap: Callable[[list[str], dict[str, str]], list[str]] | None = None,
    limit: str | None = None,
) -> Converge:
    """``ansible-playbook site.yml`` with the staging variables (plus ``extra``), in a new
    network namespace, or as ``wrap(cmd, environment)`` builds it (e.g. inside a lab node)."""
    root.mkdir(parents=True, exist_ok=True)
    variables = {**staging_vars(root, manager), **(extra or {})}
    varfile = root / f"vars-{manager}.json"
    varfile.write_text(json.dumps(variables))
    ansible_env = {
        "HOME": str(root),
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(root / ".ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(root / ".ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), "-e", f"@{varfile}"]
    cmd += [*(["--limit", limit] if limit else []), str(ANSIBLE / "site.yml")]
    if wrap is None:
        env = {
            **os.environ,
            **ansible_env,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        result = isolated(cmd, cwd=ANSIBLE, env=env, timeout=300)
    else:
        result = subprocess.run(
            wrap(cmd, ansible_env),
            cwd=ANSIBLE,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    recap: dict[str, dict[str, int]] = {}
    for line in result.stdout.splitlines():
        match = RECAP.match(line)
        if match:
            host, ok, changed, unreachable, failed = match.groups()
            recap[host] = {
                "ok": int(ok),
                "changed": int(changed),
                "unreachable": int(unreachable),
                "failed": int(failed),
            }
    return Converge(result.returncode, result.stdout + result.stderr, recap)
