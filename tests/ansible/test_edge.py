"""site.yml on an inventory unlike the example (edge-inventory.yml), installing eipha as an
operator would: the controller builds a wheel from this checkout, each node gets it and the
dependency wheels of build/wheelhouse, and pip installs them into a virtualenv with no index,
inside a network namespace that reaches nothing. Converged twice (the second changes
nothing); every rendered file is checked with its real tool, and the installed eipha runs.

The pair's interfaces differ (edge-1's address is on enX0, edge-2's on ens6): each node's
ha.cf and keepalived.conf name the interface that carries its own address. Numbers come
from the command line as strings (-e heartbeat_keepalive=0.5), as an operator types them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.staging import REPO, Converge, converge, isolated

pytestmark = pytest.mark.usefixtures("root_only")

EDGE = Path(__file__).with_name("edge-inventory.yml")
HOSTS = ("edge-1", "edge-2")
LINKS = {"enX0": ["172.31.8.10/20"], "ens6": ["172.31.9.20/20"]}
INTERFACE = {"edge-1": "enX0", "edge-2": "ens6"}
WHEELHOUSE = REPO / "build" / "wheelhouse"
GROUP = ["-e", "eipha_cluster_group=edge"]
HEARTBEAT_TIMES = ["-e", "heartbeat_keepalive=0.5", "-e", "heartbeat_warntime=1"]
HEARTBEAT_TIMES += ["-e", "heartbeat_deadtime=2", "-e", "heartbeat_initdead=10"]
EIPS = {
    "api": {"allocation_id": "eipalloc-0a1b2c3d4e5f60718", "home": "edge-1"},
    "www": {
        "allocation_id": "eipalloc-0a1b2c3d4e5f60719",
        "home": "edge-1",
        "private_ips": {"edge-1": "172.31.8.11", "edge-2": "172.31.8.21"},
    },
    "admin": {"allocation_id": "eipalloc-0a1b2c3d4e5f6071a", "home": "edge-2"},
}

Staged = tuple[Path, Converge, Converge, Converge]
_STAGED: dict[str, Staged] = {}


def node(root: Path, host: str, path: str) -> Path:
    return root / host / path.lstrip("/")


def snapshot(dest: Path) -> Path:
    """What the wheel is built from, copied: the checkout may change between the converges
    (the second must find the same wheel)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", dest / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    return dest


def install_vars(root: Path, source: Path) -> dict[str, object]:
    """eipha_install: true into the staging root: the node's venv and PATH link, the
    dependency wheels from build/wheelhouse, the wheel built offline on the controller."""
    where = f"{root}/{{{{ inventory_hostname }}}}"
    return {
        "eipha_install": True,
        "eipha_source_dir": str(source),
        "eipha_venv": f"{where}/opt/eipha",
        "eipha_bin": f"{where}/usr/local/bin/eipha",
        "eipha_python": "/usr/bin/python3",
        "eipha_system_packages": [],
        "eipha_wheelhouse": str(WHEELHOUSE),
        "eipha_build_isolation": False,
    }


@pytest.fixture
def installed(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """Heartbeat on the edge inventory with eipha installed from wheels: first in check mode
    (--check --diff, as ansible/README.md runs it before the first converge), then twice."""
    if "heartbeat" not in _STAGED:
        if not any(WHEELHOUSE.glob("botocore-*.whl")):
            pytest.fail(
                f"{WHEELHOUSE} has no dependency wheels: scripts/test.sh builds it (or: "
                ".venv/bin/pip wheel -c requirements/constraints.txt -w build/wheelhouse "
                "botocore click pyyaml pyroute2)"
            )
        root = tmp_path_factory.mktemp("edge-installed")
        for host in HOSTS:  # present on every Debian node
            node(root, host, "/usr/local/bin").mkdir(parents=True)
        source = snapshot(tmp_path_factory.mktemp("edge-source"))
        runs = []
        for check in (["--check", "--diff"], [], []):
            run = converge(
                root,
                "heartbeat",
                install_vars(root, source),
                inventory=EDGE,
                links=LINKS,
                args=[*GROUP, *HEARTBEAT_TIMES, *check],
            )
            assert run.returncode == 0, run.output[-5000:]
            if check:
                assert written(root) == [], "--check wrote files"
            runs.append(run)
        _STAGED["heartbeat"] = (root, runs[0], runs[1], runs[2])
    return _STAGED["heartbeat"]


def written(root: Path) -> list[Path]:
    """The files under the nodes' staging roots (the directories made for the test aside)."""
    return [p for host in HOSTS for p in (root / host).rglob("*") if not p.is_dir()]


def test_check_mode_on_fresh_nodes_tells_and_writes_nothing(installed: Staged):
    _, check, _, _ = installed
    assert all(n > 0 for n in check.changed().values()), check.output[-3000:]
    assert "+node_name: edge-1\n" in check.output  # --diff shows the eipha.yaml to come


def test_the_second_converge_changes_nothing(installed: Staged):
    _, _, first, second = installed
    assert set(first.recap) == set(HOSTS)
    assert all(n > 0 for n in first.changed().values())
    assert second.changed() == dict.fromkeys(HOSTS, 0), second.output[-5000:]


def test_eipha_runs_from_the_virtualenv_it_was_installed_into(installed: Staged):
    root, _, _, _ = installed
    for host in HOSTS:
        venv = node(root, host, "/opt/eipha")
        assert (venv / "pyvenv.cfg").is_file()
        link = node(root, host, "/usr/local/bin/eipha")
        assert link.resolve() == venv / "bin" / "eipha"
        version = subprocess.run([str(link), "--version"], capture_output=True, text=True)
        assert version.returncode == 0, version.stderr
        assert re.fullmatch(r"eipha, version \S+\n", version.stdout), version.stdout
        # the shims and units were put in place by this eipha, and name it
        shim = node(root, host, "/etc/ha.d/resource.d/eipha").read_text()
        assert f'EIPHA_BIN="${{EIPHA_BIN:-{link}}}"\n' in shim
        unit = node(root, host, "/etc/systemd/system/eipha-monitor.service").read_text()
        assert f"ExecStart={link} monitor" in unit
        assert f"EIPHA_BIN={link}\n" in node(root, host, "/etc/default/eipha").read_text()


def test_eipha_yaml_holds_both_forms_of_home_eips(installed: Staged):
    root, _, _, _ = installed
    for host in HOSTS:
        path = node(root, host, "/etc/eipha/eipha.yaml")
        eipha = node(root, host, "/usr/local/bin/eipha")
        checked = subprocess.run([str(eipha), "config", "check", str(path)], capture_output=True)
        assert checked.returncode == 0, checked.stderr
        config = yaml.safe_load(path.read_text())
        assert config["node_name"] == host
        assert config["eips"] == EIPS
        assert config["nodes"] == {
            "edge-1": {"instance_id": "i-0123456789abcdef0", "address": "172.31.8.10"},
            "edge-2": {"instance_id": "i-0fedcba9876543210", "address": "172.31.9.20"},
        }
        assert "interface" not in config  # eipha uses device 0's ENI
        assert "region" not in config  # from IMDS


def test_heartbeat_uses_the_private_addresses_on_each_nodes_interface(installed: Staged):
    root, _, _, _ = installed
    haresources = set()
    for host in HOSTS:
        hacf = node(root, host, "/etc/ha.d/ha.cf").read_text()
        lines = [ln for ln in hacf.splitlines() if ln and not ln.startswith("#")]
        ucast = [ln for ln in lines if ln.startswith("ucast ")]
        interface = INTERFACE[host]
        assert ucast == [f"ucast {interface} 172.31.8.10", f"ucast {interface} 172.31.9.20"]
        assert "mgmt.example.net" not in hacf
        # -e strings, converted: fractions as milliseconds, whole seconds as they are
        for line in ("keepalive 500ms", "warntime 1", "deadtime 2", "initdead 10"):
            assert line in lines
        assert lines[lines.index("ping 172.31.0.1") + 1] == (
            "respawn hacluster /usr/libexec/heartbeat/ipfail"
        )
        assert [ln for ln in lines if ln.startswith("node ")] == ["node edge-1", "node edge-2"]
        haresources.add(node(root, host, "/etc/ha.d/haresources").read_text())
    assert len(haresources) == 1, "haresources must be identical on both nodes"
    body = [ln for ln in haresources.pop().splitlines() if not ln.startswith("#")]
    assert body == ["edge-1 eipha::api eipha::www", "edge-2 eipha::admin"]


def test_ipfail_is_where_ha_cf_says():
    """The path written into `respawn` is the one Debian 12's heartbeat package installs."""
    assert Path("/usr/libexec/heartbeat/ipfail").is_file()


def test_haproxy_routes_to_the_app_group_and_discovers_the_catalog(installed: Staged):
    root, _, _, _ = installed
    for host in HOSTS:
        path = node(root, host, "/etc/haproxy/haproxy.cfg")
        checked = isolated(["haproxy", "-c", "-f", str(path)], LINKS)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        text = path.read_text()
        assert "    server app-1 172.31.16.11:8080 check\n" in text
        assert "    server app-2 172.31.16.12:8080 check disabled\n" in text
        assert "    default_backend app\n" in text
        assert "    use_backend catalog if catalog_host catalog_path\n" in text
        assert (
            "server-template catalog- 5 _catalog._tcp.service.consul check resolvers consul"
        ) in text


def test_keepalived_on_the_edge_inventory(tmp_path: Path):
    """The same inventory with keepalived: one instance per home (edge-1's carries both of
    its EIPs), each node's own interface and address, numbers given with -e."""
    numbers = ["-e", "keepalived_vrid_base=60", "-e", "keepalived_priority_home=200"]
    numbers += ["-e", "keepalived_priority_other=90", "-e", "keepalived_advert_int=2"]
    run = converge(tmp_path, "keepalived", inventory=EDGE, links=LINKS, args=[*GROUP, *numbers])
    assert run.returncode == 0, run.output[-5000:]
    peers = {"edge-1": "172.31.9.20", "edge-2": "172.31.8.10"}
    for host in HOSTS:
        conf = node(tmp_path, host, "/etc/keepalived/keepalived.conf")
        wrapper = node(tmp_path, host, "/usr/local/sbin/keepalived-config-test")
        checked = isolated([str(wrapper), str(conf)], LINKS)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        text = conf.read_text()
        assert re.findall(r"^vrrp_instance (\S+) \{", text, re.M) == ["VI_EDGE_1", "VI_EDGE_2"]
        assert re.findall(r"^\s+interface (\S+)$", text, re.M) == [INTERFACE[host]] * 2
        assert re.findall(r"^\s+virtual_router_id (\d+)$", text, re.M) == ["60", "61"]
        assert re.findall(r"^\s+advert_int (\d+)$", text, re.M) == ["2", "2"]
        priorities = re.findall(r"^\s+priority (\d+)$", text, re.M)
        assert priorities == (["200", "90"] if host == "edge-1" else ["90", "200"])
        assert re.findall(r"^\s+unicast_peer \{\n\s+(\S+)\n", text, re.M) == [peers[host]] * 2
        config = yaml.safe_load(node(tmp_path, host, "/etc/eipha/eipha.yaml").read_text())
        assert config["keepalived"]["instances"] == {
            "VI_EDGE_1": ["api", "www"],
            "VI_EDGE_2": ["admin"],
        }
