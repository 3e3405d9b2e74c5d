"""Converge site.yml into a staging root for both nodes of the example inventory, once per
cluster manager; check every rendered file with its real tool; converge again: no change."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.staging import EIPHA_BIN, HOSTS, Converge, converge, isolated

pytestmark = pytest.mark.usefixtures("root_only")
MANAGERS = ("heartbeat", "keepalived", "monitor")
NO_VIP = re.compile(r"^\([^ )]+\) No VIP specified; at least one is sensible$")


Staged = tuple[str, Path, Converge, Converge]
_STAGES: dict[str, Staged] = {}


def stage(manager: str, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """Converge twice for ``manager`` (once per session)."""
    if manager not in _STAGES:
        root = tmp_path_factory.mktemp(f"stage-{manager}")
        first = converge(root, manager)
        assert first.returncode == 0, first.output
        second = converge(root, manager)
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


def test_haproxy_accepts_each_node_and_drains_excluded_servers(staged):
    _, root, _, _ = staged
    for host in HOSTS:
        path = node(root, host, "/etc/haproxy/haproxy.cfg")
        result = isolated(["haproxy", "-c", "-f", str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
        text = path.read_text()
        assert "bind *:80" in text
        assert "server web-1 10.0.1.11:80 check\n" in text
        assert "use_backend catalog if catalog_host catalog_path" in text
        assert (
            "server-template catalog- 5 _catalog._tcp.service.consul check resolvers consul" in text
        )
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
    for line in ("ucast eth0 10.0.0.11", "ucast eth0 10.0.0.21", "auto_failback on", "crm no"):
        assert f"\n{line}\n" in hacf
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
    ],
)
def test_a_bad_setting_fails_before_anything_is_installed(
    tmp_path: Path, manager: str, extra: dict[str, object], message: str
):
    result = converge(tmp_path, manager, extra)
    assert result.returncode != 0
    assert message in result.output, result.output[-3000:]
