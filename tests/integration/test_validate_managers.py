"""`eipha validate` cross-checks the cluster manager's own files with eipha's config: a
keepalived instance that runs eipha-notify but is not in ``keepalived.instances``, or a
haresources line naming an EIP the config does not know, is a failover that does nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import Lab

KEEPALIVED_CONF = """\
global_defs {
    router_id lb-a
    enable_script_security
    script_user root
}

vrrp_instance VI_A {             # web-a: home lb-a
    state BACKUP
    interface ens5
    virtual_router_id 51
    priority 150
    unicast_src_ip 10.0.0.11
    unicast_peer {
        10.0.0.21
    }
    notify /etc/keepalived/eipha-notify
    notify_master_rx_lower_pri "/etc/keepalived/eipha-notify INSTANCE VI_A MASTER_RX_LOWER_PRI"
}

vrrp_instance VI_B {
    state BACKUP
    interface ens5
    virtual_router_id 52
    priority 100
    unicast_src_ip 10.0.0.11
    unicast_peer {
        10.0.0.21
    }
    notify /etc/keepalived/eipha-notify
}

vrrp_instance VI_OTHER {         ! a VIP of its own, nothing to do with eipha
    state BACKUP
    interface ens5
    virtual_router_id 60
    priority 100
    virtual_ipaddress {
        10.0.0.99
    }
}
"""


def checklist(lab: Lab, config: Path, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = lab.run("lb-a", "validate", "--json", *args, config=config)
    assert "Traceback" not in result.err
    return result.code, {c["check"]: c for c in json.loads(result.out)}


def test_instances_missing_from_keepalived_instances_fail(lab: Lab, tmp_path: Path):
    """The README's old pair of examples: VI_WEB in eipha.yaml, VI_A/VI_B in keepalived.conf."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KEEPALIVED_CONF)
    config = lab.config("lb-a", keepalived={"instances": {"VI_WEB": ["web-a", "web-b"]}})
    code, checks = checklist(lab, config, "--keepalived-conf", str(conf))
    assert code == 6
    for instance in ("VI_A", "VI_B"):
        check = checks[f"keepalived.conf: {instance}"]
        assert check["status"] == "fail"
        assert (
            f"{instance} runs eipha-notify, but keepalived.instances in {config}"
            in (check["detail"])
        )
        assert "lists only VI_WEB" in check["detail"]
    assert checks["keepalived.conf: VI_WEB"]["status"] == "warn"
    assert "keepalived.conf: VI_OTHER" not in checks  # it does not run eipha


def test_matching_instances_pass(lab: Lab, tmp_path: Path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KEEPALIVED_CONF)
    config = lab.config("lb-a", keepalived={"instances": {"VI_A": ["web-a"], "VI_B": ["web-b"]}})
    code, checks = checklist(lab, config, "--keepalived-conf", str(conf))
    assert code == 0, checks
    assert checks["keepalived.conf"] == {
        "check": "keepalived.conf",
        "status": "ok",
        "detail": f"{conf}: VI_A -> web-a; VI_B -> web-b",
    }


def test_fifo_mode_warns_for_instances_it_would_ignore(lab: Lab, tmp_path: Path):
    conf = tmp_path / "keepalived.conf"
    fifo = KEEPALIVED_CONF.replace(
        "    script_user root\n",
        "    script_user root\n    vrrp_notify_fifo /run/keepalived-eipha.fifo\n"
        '    vrrp_notify_fifo_script "/etc/keepalived/eipha-notify fifo"\n',
    )
    conf.write_text(fifo.replace("    notify /etc/keepalived/eipha-notify\n", ""))
    config = lab.config("lb-a", keepalived={"instances": {"VI_A": ["web-a"], "VI_B": ["web-b"]}})
    code, checks = checklist(lab, config, "--keepalived-conf", str(conf))
    assert code == 0
    assert checks["keepalived.conf: VI_OTHER"]["status"] == "warn"
    assert "FIFO reader" in checks["keepalived.conf: VI_OTHER"]["detail"]


def test_a_named_file_that_is_missing_fails(lab: Lab, tmp_path: Path):
    code, checks = checklist(lab, lab.config("lb-a"), "--keepalived-conf", str(tmp_path / "no"))
    assert code == 6
    assert checks["keepalived.conf"]["detail"] == (
        f"cannot read {tmp_path}/no (No such file or directory)"
    )


def test_haresources_naming_an_unknown_eip_or_node_fails(lab: Lab, tmp_path: Path):
    (tmp_path / "haresources").write_text(
        "# /etc/ha.d/haresources\n"
        "lb-a eipha::web-a\n"
        "lb-b eipha::web-c \\\n"
        "     eipha::web-b\n"
        "lb-9 eipha::eipalloc-0123456789abcdef0::secondary\n"
    )
    code, checks = checklist(lab, lab.config("lb-a"), "--ha-dir", str(tmp_path))
    assert code == 6
    assert checks["haresources: eipha::web-a"]["status"] == "ok"
    assert checks["haresources: eipha::web-b"]["status"] == "ok"
    unknown = checks["haresources: eipha::web-c"]
    assert unknown["status"] == "fail"
    assert unknown["detail"].startswith(f"{tmp_path}/haresources line 3: unknown EIP 'web-c'")
    stranger = checks["haresources: eipha::eipalloc-0123456789abcdef0"]
    assert stranger["status"] == "fail"
    assert "node lb-9 is not in nodes:" in stranger["detail"]


def test_haresources_preferring_another_node_than_home_warns(lab: Lab, tmp_path: Path):
    (tmp_path / "haresources").write_text("lb-b eipha::web-a\nlb-b eipha::web-b\n")
    code, checks = checklist(lab, lab.config("lb-a"), "--ha-dir", str(tmp_path))
    assert code == 0
    check = checks["haresources: eipha::web-a"]
    assert check["status"] == "warn"
    assert "prefers lb-b for web-a, whose home is lb-a" in check["detail"]


def test_a_default_path_that_is_absent_adds_no_line(tmp_path: Path):
    """Without the options the standard paths are read only when present: a node that runs
    Heartbeat has no keepalived.conf, and that is not a problem."""
    from eipha import config, validate

    empty = config.parse_text(
        "eips: {web-a: {allocation_id: eipalloc-0123456789abcdef0, home: lb-a}}"
    )
    assert validate.check_keepalived(empty, str(tmp_path / "keepalived.conf")) == []
    assert validate.check_haresources(empty, str(tmp_path)) == []
    named = validate.check_haresources(empty, str(tmp_path), named=True)
    assert [(c.status, c.exit) for c in named] == [(validate.Status.FAIL, 6)]
