"""Reading keepalived.conf and haresources the way their daemons do, for validate."""

from __future__ import annotations

from pathlib import Path

from eipha import manager_files


def test_keepalived_instances_groups_includes_and_comments(tmp_path: Path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text(
        'vrrp_instance VI_B{\n  notify "/usr/local/sbin/eipha-notify --quiet"\n}\n'
    )
    main = tmp_path / "keepalived.conf"
    main.write_text(
        "! a comment\n"
        "global_defs { router_id lb-a }\n"
        "vrrp_sync_group G1 {\n  group {\n    VI_A\n  }\n"
        "  notify /etc/keepalived/eipha-notify  # the whole group\n}\n"
        "vrrp_instance VI_A {\n  track_script {\n    chk\n  }\n"
        "  # notify /etc/keepalived/eipha-notify  (commented out)\n}\n"
        "include conf.d/*.conf\n"
    )
    found = manager_files.read_keepalived(main)
    assert found.instances == ["VI_A", "VI_B"]
    assert found.groups == ["G1"]
    assert found.calling_eipha == ["G1", "VI_B"]
    assert not found.fifo


def test_keepalived_fifo_script(tmp_path: Path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        'global_defs {\n  vrrp_notify_fifo_script "/etc/keepalived/eipha-notify fifo"\n}\n'
        "vrrp_instance VI_A {\n}\n"
    )
    found = manager_files.read_keepalived(conf)
    assert found.fifo
    assert found.calling_eipha == []


def test_an_include_loop_ends(tmp_path: Path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"include {conf}\nvrrp_instance VI_A {{\n}}\n")
    assert "VI_A" in manager_files.read_keepalived(conf).instances


def test_haresources_resources_with_continuations(tmp_path: Path):
    path = tmp_path / "haresources"
    path.write_text(
        "# comment eipha::nope\n"
        "lb-a IPaddr::10.0.0.5 eipha::web-a \\\n"
        "   eipha::eipalloc-0123456789abcdef0::secondary\n"
        "lb-b eipha::web-b  # trailing comment\n"
        "lb-c\n"
    )
    assert manager_files.read_haresources(path) == [
        manager_files.Resource("lb-a", "web-a", None, 2),
        manager_files.Resource("lb-a", "eipalloc-0123456789abcdef0", "secondary", 2),
        manager_files.Resource("lb-b", "web-b", None, 4),
    ]
