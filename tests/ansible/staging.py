"""Converging ansible/site.yml into a staging root, for the Ansible tests and the lab.

Every path the roles write is redirected under ``ROOT/<inventory host>/``; package installs,
pip and systemctl are switched off (``*_install*: false``, ``*_service_manage: false``), and
the play runs with the local connection inside a fresh network namespace that has only
loopback and unconnected veths carrying the nodes' addresses (``ens5`` with both nodes'
``eipha_address``, as on a Nitro instance: the roles find the interface by its address, and
keepalived's config test wants it to exist): no task can reach AWS or any other address. The
template validators are the real tools (``eipha config check``, ``keepalived -t`` through
the role's wrapper, ``haproxy -c``).
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

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
EIPHA_BIN = BIN / "eipha"
INVENTORY = ANSIBLE / "inventory.example.yml"
HOSTS = ("lb-a", "lb-b")
# the interface a Nitro instance has, which the staging namespace gives every node's address
NITRO = "ens5"
# keepalived -t's one expected warning for an eipha instance, which has no virtual_ipaddress
NO_VIP = re.compile(r"^\([^ )]+\) No VIP specified; at least one is sensible$")
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
        "eipha_agents_root": node,
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
        "haproxy_tls_pem": f"{node}/etc/haproxy/certs/haproxy.pem",
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


def isolate_script(links: Mapping[str, Sequence[str]]) -> str:
    """Shell that sets up a fresh network namespace: loopback, and per link an unconnected
    veth carrying the addresses given (its peer stays down: no route leads anywhere)."""
    steps = ["ip link set lo up"]
    for index, (name, addresses) in enumerate(links.items()):
        steps.append(f"ip link add {name} type veth peer name isolated{index}")
        steps += [f"ip address add {address} dev {name}" for address in addresses]
        steps.append(f"ip link set {name} up")
    return " && ".join([*steps, 'exec "$@"'])


def addresses(inventory: Path) -> list[str]:
    """Every ``eipha_address`` an inventory file gives, in order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "eipha_address":
                    found.append(str(value))
                else:
                    walk(value)

    walk(yaml.safe_load(inventory.read_text()))
    return found


def nitro_links(inventory: Path = INVENTORY) -> dict[str, list[str]]:
    """The staging namespace's links: ``ens5`` carrying every node's ``eipha_address``."""
    return {NITRO: [f"{address}/24" for address in addresses(inventory)]}


def isolated(
    cmd: Sequence[str], links: Mapping[str, Sequence[str]] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a new network namespace (root only) with lo and ``links`` (default:
    :func:`nitro_links` of the example inventory)."""
    links = nitro_links() if links is None else links
    return subprocess.run(
        ["unshare", "--net", "sh", "-ec", isolate_script(links), "isolated", *cmd],
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
    links: Mapping[str, Sequence[str]] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    playbook: str = "site.yml",
) -> Converge:
    """``ansible-playbook site.yml`` (or ``playbook``) with the staging variables (plus
    ``extra``, then the command-line ``args``) and ``env``, in a new network namespace with
    ``links`` (default: :func:`nitro_links` of the inventory), or as ``wrap(cmd,
    environment)`` builds it (e.g. inside a lab node)."""
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
    cmd += [*args, *(["--limit", limit] if limit else []), str(ANSIBLE / playbook)]
    if wrap is None:
        env = {
            **os.environ,
            **ansible_env,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            **(env or {}),
        }
        links = nitro_links(inventory) if links is None else links
        result = isolated(cmd, links, cwd=ANSIBLE, env=env, timeout=300)
    else:
        result = subprocess.run(
            wrap(cmd, {**ansible_env, **(env or {})}),
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
