"""Converge site.yml into a staging root for both nodes of the example inventory, once per
cluster manager; check every rendered file with its real tool; converge again: no change."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.staging import (
    BIN,
    EIPHA_BIN,
    HOSTS,
    INVENTORY,
    NO_VIP,
    Converge,
    converge,
    isolated,
)

pytestmark = pytest.mark.usefixtures("root_only")
MANAGERS = ("heartbeat", "keepalived", "monitor")
DOUBLES = Path(__file__).with_name("bin")


# the peer monitor's numbers as an operator types them on the command line: strings
MONITOR_ARGS = ["-e", "eipha_monitor_interval=0.5", "-e", "eipha_monitor_dead_after=2"]
MONITOR_ARGS += ["-e", "eipha_monitor_port=7000", "-e", "eipha_monitor_auto_failback=false"]
ARGS = {"monitor": MONITOR_ARGS}

Staged = tuple[str, Path, Converge, Converge]
_STAGES: dict[str, Staged] = {}


def stage(manager: str, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """Converge twice for ``manager`` (once per session)."""
    if manager not in _STAGES:
        root = tmp_path_factory.mktemp(f"stage-{manager}")
        first = converge(root, manager, args=ARGS.get(manager, ()))
        assert first.returncode == 0, first.output
        second = converge(root, manager, args=ARGS.get(manager, ()))
        assert second.returncode == 0, second.output
        _STAGES[manager] = (manager, root, first, second)
    return _STAGES[manager]


@pytest.fixture(params=MANAGERS)
def staged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    return stage(request.param, tmp_path_factory)


@pytest.fixture
def heartbeat_staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    return stage("heartbeat", tmp_path_factory)


@pytest.fixture
def keepalived_staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    return stage("keepalived", tmp_path_factory)


@pytest.fixture
def monitor_staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    return stage("monitor", tmp_path_factory)


def node(root: Path, host: str, path: str) -> Path:
    return root / host / path.lstrip("/")


def test_converge_writes_then_second_run_changes_nothing(staged):
    _, _, first, second = staged
    assert set(first.recap) == set(HOSTS)
    assert all(n > 0 for n in first.changed().values()), first.output
    assert second.changed() == dict.fromkeys(HOSTS, 0), second.output
    assert all(counts["failed"] == 0 for counts in second.recap.values())


def test_eipha_config_check_accepts_each_node(staged):
    manager, root, _, _ = staged
    for host in HOSTS:
        path = node(root, host, "/etc/eipha/eipha.yaml")
        result = subprocess.run(
            [str(EIPHA_BIN), "config", "check", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        config = yaml.safe_load(path.read_text())
        assert config["node_name"] == host
        assert config["eips"] == {
            "web-a": {"allocation_id": "eipalloc-0123456789abcdef0", "home": "lb-a"},
            "web-b": {"allocation_id": "eipalloc-0fedcba9876543210", "home": "lb-b"},
        }
        assert ("keepalived" in config) == (manager == "keepalived")
        assert ("monitor" in config) == (manager == "monitor")
        # no interface (eipha uses device 0's ENI) and no region (from IMDS) by default
        assert "interface" not in config
        assert "region" not in config


def test_haproxy_accepts_each_node_and_drains_excluded_servers(staged):
    _, root, _, _ = staged
    for host in HOSTS:
        path = node(root, host, "/etc/haproxy/haproxy.cfg")
        result = isolated(["haproxy", "-c", "-f", str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
        text = path.read_text()
        assert "bind *:80" in text
        assert "    server web-1 10.0.1.11:80 check\n" in text
        assert "    server web-2 10.0.1.12:80 check\n" in text
        assert "    http-check send meth GET uri /\n" in text
        assert "    default_backend web\n" in text
        assert "use_backend" not in text  # the shipped defaults route nothing
        assert "stats socket /run/haproxy/admin.sock" in text


def test_shims_and_units_are_installed(staged):
    _, root, _, _ = staged
    for host in HOSTS:
        for shim in (
            "/etc/ha.d/resource.d/eipha",
            "/etc/keepalived/eipha-notify",
            "/usr/lib/ocf/resource.d/eipha/eipha",
        ):
            st = node(root, host, shim).stat()
            assert stat.S_IMODE(st.st_mode) == 0o755, shim
            assert st.st_uid == 0, shim
        defaults = node(root, host, "/etc/default/eipha").read_text()
        assert f"EIPHA_BIN={EIPHA_BIN}\n" in defaults
        units = node(root, host, "/etc/systemd/system")
        for unit in ("eipha-secondary-ips.service", "eipha-monitor.service"):
            assert f"ExecStart={EIPHA_BIN} " in (units / unit).read_text()
        assert (units / "eipha-secondary-ips.timer").is_file()


def test_heartbeat_files(heartbeat_staged: Staged):
    _, root, _, _ = heartbeat_staged
    texts = {
        host: {
            name: node(root, host, f"/etc/ha.d/{name}").read_text()
            for name in ("ha.cf", "haresources", "authkeys")
        }
        for host in HOSTS
    }
    assert texts["lb-a"] == texts["lb-b"], "Heartbeat's files must be identical on both nodes"
    body = [ln for ln in texts["lb-a"]["haresources"].splitlines() if not ln.startswith("#")]
    assert body == ["lb-a eipha::web-a", "lb-b eipha::web-b"]
    hacf = texts["lb-a"]["ha.cf"]
    # the interface that carries the node's address (ens5 in the staging namespace)
    for line in ("ucast ens5 10.0.0.11", "ucast ens5 10.0.0.21", "auto_failback on", "crm no"):
        assert f"\n{line}\n" in hacf
    # no ping nodes by default, so no ipfail
    assert re.search(r"^(ping|respawn) ", hacf, re.M) is None, hacf
    assert "\n1 sha1 0123456789abcdef0123456789abcdef\n" in texts["lb-a"]["authkeys"]
    for host in HOSTS:
        assert stat.S_IMODE(node(root, host, "/etc/ha.d/authkeys").stat().st_mode) == 0o600


def test_keepalived_config_test_and_instances(keepalived_staged: Staged):
    """keepalived 2.2.7's -t exits 5 for warnings too; the only ones allowed are the
    per-instance "No VIP specified" (an eipha instance has no virtual_ipaddress)."""
    _, root, _, _ = keepalived_staged
    for host in HOSTS:
        conf = node(root, host, "/etc/keepalived/keepalived.conf")
        raw = isolated(["keepalived", "-t", "-f", str(conf)])
        messages = [ln for ln in (raw.stdout + raw.stderr).splitlines() if ln.strip()]
        assert raw.returncode in (0, 5), messages
        assert [m for m in messages if not NO_VIP.match(m)] == []
        wrapper = node(root, host, "/usr/local/sbin/keepalived-config-test")
        assert isolated([str(wrapper), str(conf)]).returncode == 0
        text = conf.read_text()
        instances = re.findall(r"^vrrp_instance (\S+) \{", text, re.M)
        config = yaml.safe_load(node(root, host, "/etc/eipha/eipha.yaml").read_text())
        assert config["keepalived"]["instances"] == {"VI_LB_A": ["web-a"], "VI_LB_B": ["web-b"]}
        assert instances == list(config["keepalived"]["instances"])
        priorities = [int(p) for p in re.findall(r"^\s+priority (\d+)$", text, re.M)]
        assert priorities == ([150, 100] if host == "lb-a" else [100, 150])
        assert text.count("notify_master_rx_lower_pri") == 2
        assert "track_script" in text
        assert re.findall(r"^\s+interface (\S+)$", text, re.M) == ["ens5", "ens5"]


def test_keepalived_fifo_mode(tmp_path: Path):
    """keepalived_eipha_mode: fifo — the shim becomes the reader of keepalived's notify FIFO
    (global_defs), the instances run no notify scripts, and keepalived -t accepts it."""
    result = converge(tmp_path, "keepalived", {"keepalived_eipha_mode": "fifo"})
    assert result.returncode == 0, result.output[-3000:]
    for host in HOSTS:
        conf = node(tmp_path, host, "/etc/keepalived/keepalived.conf")
        text = conf.read_text()
        shim = node(tmp_path, host, "/etc/keepalived/eipha-notify")
        assert "    vrrp_notify_fifo /run/keepalived-eipha.fifo\n" in text
        assert f'    vrrp_notify_fifo_script "{shim} fifo"\n' in text
        assert re.search(r"^\s*notify", text, re.MULTILINE) is None, text
        wrapper = node(tmp_path, host, "/usr/local/sbin/keepalived-config-test")
        checked = isolated([str(wrapper), str(conf)])
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_keepalived_wrapper_rejects_a_broken_config(tmp_path: Path, keepalived_staged: Staged):
    _, root, _, _ = keepalived_staged
    conf = node(root, "lb-a", "/etc/keepalived/keepalived.conf").read_text()
    broken = tmp_path / "keepalived.conf"
    broken.write_text(conf.replace("unicast_peer {", "unicast_peers {"))
    wrapper = node(root, "lb-a", "/usr/local/sbin/keepalived-config-test")
    result = isolated([str(wrapper), str(broken)])
    assert result.returncode == 1
    assert "Unknown keyword" in result.stderr


def test_monitor_key_is_shared_and_owner_only(monitor_staged: Staged):
    _, root, _, _ = monitor_staged
    keys = {host: node(root, host, "/etc/eipha/monitor.key") for host in HOSTS}
    assert keys["lb-a"].read_bytes() == keys["lb-b"].read_bytes()
    assert len(keys["lb-a"].read_bytes()) == 64
    for key in keys.values():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.stat().st_uid == 0
    config = yaml.safe_load(node(root, "lb-a", "/etc/eipha/eipha.yaml").read_text())
    assert config["monitor"]["key_file"] == str(keys["lb-a"])


def test_monitor_numbers_given_with_e_are_numbers(monitor_staged: Staged):
    """-e eipha_monitor_interval=0.5 arrives as a string; eipha.yaml gets numbers (which
    eipha config check requires) and a boolean."""
    _, root, _, _ = monitor_staged
    monitor = yaml.safe_load(node(root, "lb-a", "/etc/eipha/eipha.yaml").read_text())["monitor"]
    assert (monitor["interval"], monitor["dead_after"], monitor["port"]) == (0.5, 2.0, 7000)
    assert monitor["auto_failback"] is False


@pytest.mark.parametrize(
    ("manager", "extra", "message"),
    [
        (
            "heartbeat",
            {"heartbeat_deadtime": 2, "heartbeat_warntime": 1},
            "deadtime > 2 x keepalive",
        ),
        ("heartbeat", {"heartbeat_initdead": 5}, "initdead >= deadtime"),
        ("heartbeat", {"vault_heartbeat_authkeys_secret": ""}, "heartbeat_authkeys_secret"),
        ("keepalived", {"eipha_timeout": 0}, "eipha.yaml"),
        ("monitor", {"eipha_monitor_dead_after": 1.0}, "monitor.dead_after"),
        ("heartbeat", {"haproxy_bind": "*:notaport"}, "haproxy.cfg"),
        ("heartbeat", {"haproxy_default_backend": "nope"}, "the default backend must be one"),
        ("keepalived", {"keepalived_eipha_mode": "script"}, "keepalived_eipha_mode"),
        # a string, as -e gives it: compared as a number (90 < 100), not as text ("90" > "100")
        ("keepalived", {"keepalived_priority_home": "90"}, "(got 90 and 100)"),
        ("heartbeat", {"heartbeat_keepalive": "abc"}, "heartbeat_keepalive"),
        ("heartbeat", {"heartbeat_ping_nodes": ["10.0.0.21"]}, "never a node's eipha_address"),
    ],
    ids=[
        "deadtime",
        "initdead",
        "no-secret",
        "eipha-config",
        "monitor-timing",
        "haproxy",
        "route",
        "keepalived-mode",
        "priority-string",
        "timing-not-a-number",
        "ping-node-is-a-node",
    ],
)
def test_a_bad_setting_fails_before_anything_is_installed(
    tmp_path: Path, manager: str, extra: dict[str, object], message: str
):
    result = converge(tmp_path, manager, extra)
    assert result.returncode != 0
    assert message in result.output, result.output[-3000:]


def written(root: Path) -> list[Path]:
    """Every file a converge wrote for the nodes (not the controller's or Ansible's own)."""
    return [p for host in HOSTS if (root / host).exists() for p in (root / host).rglob("*")]


def test_an_inventory_whose_eips_cannot_all_be_bound_fails_before_writing(tmp_path: Path):
    """lb-a home to a second EIP with no private_ips: both would need lb-a's primary IP."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    lb_a = inventory["all"]["children"]["lb"]["hosts"]["lb-a"]
    lb_a["eipha_home_eips"]["web-c"] = "eipalloc-0aaaaaaaaaaaaaaaa"
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    result = converge(tmp_path / "root", "heartbeat", inventory=path)
    assert result.returncode != 0
    assert (
        "eipha_home_eips cannot all be bound: lb-a: eipha_home_eips.web-c: web-c and web-a "
        "would both be bound to 10.0.0.11 on lb-a; give it private_ips: "
        "{lb-a: <another private IP of lb-a>}"
    ) in result.output, result.output[-3000:]
    assert written(tmp_path / "root") == []


def test_a_node_without_its_eipha_address_fails_before_writing(tmp_path: Path):
    """The namespace's ens5 carries lb-b's address only: lb-a's eipha_address is nowhere, and
    neither node writes anything (a pair is deployed together)."""
    result = converge(tmp_path, "keepalived", links={"ens5": ["10.0.0.21/24"]})
    assert result.returncode != 0
    assert (
        "no interface of lb-a carries eipha_address 10.0.0.11 (it has 127.0.0.1, 10.0.0.21); "
        "set eipha_address to the node's primary private IP"
    ) in result.output, result.output[-3000:]
    assert written(tmp_path) == []


@pytest.mark.parametrize("enabled", [True, False], ids=["monitor-enabled", "monitor-disabled"])
def test_a_config_change_never_starts_a_stopped_monitor(tmp_path: Path, enabled: bool):
    """systemd does not run here, so systemctl is a recording stand-in (tests/ansible/bin)
    that answers like systemd for an inactive unit. A first converge changes eipha.yaml
    before the monitor's key exists: the handler may only ask systemd to reload a monitor
    that is already running (try-reload-or-restart, a no-op for a stopped one), and must not
    touch the unit at all when eipha_monitor_service_enabled is false."""
    calls = tmp_path / "systemctl-calls"
    result = converge(
        tmp_path / "root",
        "monitor",
        {"eipha_service_manage": True, "eipha_monitor_service_enabled": enabled},
        limit="lb-a",
        env={
            "PATH": f"{DOUBLES}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "SYSTEMCTL_CALLS": str(calls),
        },
    )
    assert result.returncode == 0, result.output[-3000:]
    recorded = calls.read_text().splitlines()
    assert "daemon-reload" in recorded  # the units were installed: systemd re-reads them
    on_monitor = [call for call in recorded if "eipha-monitor" in call]
    assert on_monitor == (["try-reload-or-restart eipha-monitor.service"] if enabled else [])
