"""The lab's failovers with the configs the Ansible roles render, not hand-written ones.

For each node, ``ansible-playbook site.yml --limit NODE`` runs inside that node (its mount,
UTS and network namespaces: /etc/ha.d, /etc/keepalived and /etc/default are the node's own),
with an inventory built from the simulated region's instance and allocation ids. The roles
write eipha.yaml, /etc/default/eipha, the manager's shim (``eipha install-agents``),
ha.cf/haresources/authkeys (with a ping node, so ipfail runs) or keepalived.conf, on the
interface that carries the node's address; then the real Heartbeat or keepalived runs with
them and must move the EIPs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml

from tests.ansible.staging import converge
from tests.system.lab import API, API_PORT, Lab, Node, wait_for
from tests.system.managers import Watch, start_heartbeat, start_keepalived

HOME_A, HOME_B = ("lb-a", "10.0.0.11"), ("lb-b", "10.0.0.21")
B_ON_A = ("lb-a", "10.0.0.12")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab.build() as built:
        yield built
        assert built.reboots() == [], "a node tried to reboot the machine"


def inventory(lab: Lab, web: dict[str, object] | None = None) -> dict[str, object]:
    lb = {
        n.name: {
            "eipha_instance_id": n.instance_id,
            "eipha_address": n.primary_ip,
            "eipha_home_eips": {
                e.name: e.allocation_id for e in lab.world.eips.values() if e.home == n.name
            },
        }
        for n in lab.world.nodes.values()
    }
    # backends are only written into haproxy.cfg (and checked with haproxy -c), never contacted
    web = web or {"web-1": {"ansible_host": "10.0.0.31"}, "web-2": {"ansible_host": "10.0.0.32"}}
    return {"all": {"children": {"lb": {"hosts": lb}, "web": {"hosts": web}}}}


def deploy(
    lab: Lab, manager: str, web: dict[str, object] | None = None, **overrides: object
) -> None:
    """Converge each node from inside it; the manager's own paths keep their defaults
    (``web``: the inventory's web hosts; ``overrides``: variables over the lab's)."""
    path = lab.tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory(lab, web)))
    for node in lab.nodes.values():
        # Heartbeat's own scripts (harc, rc.d, resource.d/...) as the package installed them
        shutil.copytree("/etc/ha.d", node.dir / "ha.d", dirs_exist_ok=True, symlinks=True)
        d = node.dir
        extra: dict[str, object] = {
            # outside the node's private directories, keep everything under its lab dir
            "eipha_config_dir": str(d),
            "eipha_monitor_key_file": f"{d}/monitor.key",
            "keepalived_config_test_path": f"{d}/keepalived-config-test",
            "haproxy_config_file": f"{d}/haproxy.cfg",
            "haproxy_chroot": "",
            "haproxy_stats_socket": "",
            # the managers' files at their real paths, which inside the node are its own:
            # install-agents puts only this manager's shim in place (/etc/ha.d/resource.d or
            # /etc/keepalived), no units (/etc/systemd/system is the host's)
            "eipha_defaults_file": "/etc/default/eipha",
            "eipha_agents_root": "",
            "eipha_agents": [manager],
            "heartbeat_config_dir": "/etc/ha.d",
            "keepalived_config_dir": "/etc/keepalived",
            "keepalived_notify_script": "/etc/keepalived/eipha-notify",
            # the lab: region from IMDS, EC2 at the simulated region, short timings
            "eipha_region": "",
            "eipha_timeout": 10,
            "eipha_environment": {"AWS_ENDPOINT_URL_EC2": f"http://{API}:{API_PORT}"},
            "heartbeat_keepalive": 0.5,
            "heartbeat_warntime": 1,
            "heartbeat_deadtime": 2,
            "heartbeat_initdead": 4,
            # a ping node the lab answers (the simulated region's address): Heartbeat then
            # respawns ipfail, as the role writes it
            "heartbeat_ping_nodes": [API],
            "heartbeat_logfacility": "none",
            "heartbeat_logfile": f"{d}/log/ha-log",
            "heartbeat_debugfile": f"{d}/log/ha-debug",
            "keepalived_track_haproxy": False,  # no HAProxy in this lab
            **overrides,
        }
        result = converge(
            lab.tmp / "ansible" / node.name,
            manager,
            extra,
            inventory=path,
            wrap=node.argv,
            limit=node.name,
        )
        assert result.returncode == 0, result.output
        assert result.recap[node.name]["failed"] == 0


def runs(node: Node, comm: str) -> bool:
    return node.pids(comm) != []


def test_heartbeat_with_role_rendered_configs(lab: Lab):
    deploy(lab, "heartbeat")
    a = lab.nodes["lb-a"]
    hacf = a.file("/etc/ha.d/ha.cf").read_text()
    assert "\nnode lb-a\nnode lb-b\n" in hacf
    assert f"\nping {API}\nrespawn hacluster /usr/libexec/heartbeat/ipfail\n" in hacf
    assert "\nucast eth0 10.0.0.21\n" in hacf  # the interface that carries lb-a's address
    for node in lab.nodes.values():
        start_heartbeat(node)
    lab.wait_where("web-a", HOME_A, 40)
    lab.wait_where("web-b", HOME_B, 40)
    for node in lab.nodes.values():
        wait_for(f"ipfail on {node.name}", partial(runs, node, "ipfail"), 20)
    with Watch(lab) as watch:
        lab.nodes["lb-b"].kill("heartbeat")
        lab.wait_where("web-b", B_ON_A, 30)
        assert lab.where("web-a") == HOME_A
        start_heartbeat(lab.nodes["lb-b"])
        lab.wait_where("web-b", HOME_B, 60)
        assert lab.where("web-a") == HOME_A
    assert watch.both_unassociated() == []
    log = Path(a.dir / "log" / "ha-log").read_text()
    assert "Running /etc/ha.d//resource.d/eipha web-b start" in log


def test_keepalived_with_role_rendered_configs(lab: Lab):
    deploy(lab, "keepalived")
    conf = lab.nodes["lb-a"].file("/etc/keepalived/keepalived.conf").read_text()
    assert "vrrp_instance VI_LB_A {" in conf
    for node in lab.nodes.values():
        start_keepalived(node)
    lab.wait_where("web-a", HOME_A, 30)
    lab.wait_where("web-b", HOME_B, 30)
    with Watch(lab) as watch:
        lab.nodes["lb-b"].kill("keepalived")
        lab.wait_where("web-b", B_ON_A, 30)
        assert lab.where("web-a") == HOME_A
        start_keepalived(lab.nodes["lb-b"])
        lab.wait_where("web-b", HOME_B, 30)
    assert watch.both_unassociated() == []
