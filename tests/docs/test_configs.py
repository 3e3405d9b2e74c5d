"""The config files the docs show: eipha's, Ansible's, /etc/default/eipha.

Each eipha config passes ``eipha config check`` (the real command, no network); a fragment
(``# part of /etc/eipha/eipha.yaml``) passes merged into its page's whole config; the one
broken on purpose fails. Across pages the examples are one pair: the same nodes and EIPs, and
keepalived instance names that agree with every keepalived.conf shown, so that examples copied
from two pages work together.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs import markdown as md
from tests.docs.pages import merge, whole_config

EIPHA = str(Path(sys.executable).parent / "eipha")
BIN = Path(sys.executable).parent


def config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EIPHA, "config", "check", str(path)], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("block", md.of_kind(md.CONFIG), ids=repr)
def test_each_config_passes_config_check(block: md.Block, tmp_path: Path):
    path = tmp_path / "eipha.yaml"
    path.write_text(block.text)
    result = config_check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: valid ("), result.stdout


@pytest.mark.parametrize("block", md.of_kind(md.CONFIG_FRAGMENT), ids=repr)
def test_each_fragment_passes_merged_into_its_pages_config(block: md.Block, tmp_path: Path):
    base = whole_config(block.page)
    assert base is not None, f"{block.where}: a fragment needs a whole config on its page"
    merged = merge(base, yaml.safe_load(block.text))
    path = tmp_path / "eipha.yaml"
    path.write_text(yaml.safe_dump(merged))
    result = config_check(path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("block", md.of_kind(md.BROKEN_CONFIG), ids=repr)
def test_the_broken_example_is_refused(block: md.Block, tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text(block.text)
    result = config_check(path)
    assert result.returncode == 6
    assert result.stderr.startswith(f"eipha: error: invalid config {path}"), result.stderr


def test_no_config_example_names_an_interface():
    """eipha binds to the device-0 ENI found by MAC; `interface: eth0` copied to a Nitro
    instance (ens5) would be wrong."""
    named = [
        b.where
        for b in [*md.of_kind(md.CONFIG), *md.of_kind(md.CONFIG_FRAGMENT)]
        if "interface" in yaml.safe_load(b.text)
    ]
    assert named == []


def _pair(config: dict[str, Any]) -> tuple[object, ...]:
    eips = {n: (e["allocation_id"], e["home"]) for n, e in config["eips"].items()}
    return config["nodes"], eips, config.get("region")


def test_every_whole_config_is_the_same_pair():
    """Nodes, instance ids, addresses, EIPs, their homes and the region (a page may add
    keys, or spell out a binding the rule gives anyway)."""
    pairs = {b.where: _pair(yaml.safe_load(b.text)) for b in md.of_kind(md.CONFIG)}
    assert len(pairs) >= 4
    first = next(iter(pairs.values()))
    assert {where: pair for where, pair in pairs.items() if pair != first} == {}


def _instances_in_configs() -> dict[str, set[str]]:
    found = {}
    for block in [*md.of_kind(md.CONFIG), *md.of_kind(md.CONFIG_FRAGMENT)]:
        keepalived = yaml.safe_load(block.text).get("keepalived")
        if keepalived:
            found[block.where] = set(keepalived["instances"])
    return found


def test_keepalived_instance_names_agree_everywhere():
    """The README's config, the keepalived page's config and its keepalived.conf name the same
    VRRP instances: a notify for an instance the config does not list starts nothing."""
    confs = md.of_kind(md.KEEPALIVED_CONF)
    assert confs
    configs = _instances_in_configs()
    assert len(configs) >= 2
    for conf in confs:
        names = set(re.findall(r"^vrrp_instance (\S+) \{", conf.text, re.M))
        assert names
        for where, listed in configs.items():
            assert listed == names, f"{where} lists {listed}, {conf.where} has {names}"
        for instance, spelled in re.findall(
            r"^vrrp_instance (\S+) \{.*?INSTANCE (\S+) MASTER_RX_LOWER_PRI", conf.text, re.M | re.S
        ):
            assert spelled == instance, f"{conf.where}: {instance}'s rx_lower_pri line"


@pytest.mark.parametrize("block", md.of_kind(md.INVENTORY), ids=repr)
def test_ansible_inventories_parse_offline_and_lint_clean(block: md.Block, tmp_path: Path):
    path = tmp_path / "inventory.yml"
    path.write_text(block.text)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "--list", "-i", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "[WARNING]" not in listed.stderr, listed.stderr
    inventory = yaml.safe_load(listed.stdout)
    lint = subprocess.run(
        [str(BIN / "yamllint"), "--strict", "-c", str(md.REPO / "ansible/.yamllint"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    # the same pair as the eipha configs
    config = whole_config(md.REPO / "README.md")
    assert config is not None
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(inventory["lb"]["hosts"]) == sorted(config["nodes"])
    for name, node in config["nodes"].items():
        assert hostvars[name]["eipha_instance_id"] == node["instance_id"]
        assert hostvars[name]["eipha_address"] == node["address"]
    homes = {
        eip: (host, allocation)
        for host, v in hostvars.items()
        for eip, allocation in v.get("eipha_home_eips", {}).items()
    }
    assert homes == {
        name: (eip["home"], eip["allocation_id"]) for name, eip in config["eips"].items()
    }


# variables the shims' /etc/default/eipha may set: botocore's and eipha's own
DEFAULT_VARIABLES = {
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "AWS_ENDPOINT_URL_EC2", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "EIPHA_CONFIG",
    "EIPHA_RUN_DIR", "EIPHA_BIN",
}  # fmt: skip


@pytest.mark.parametrize("block", md.of_kind(md.DEFAULTS), ids=repr)
def test_etc_default_eipha_is_plain_assignments_of_known_variables(block: md.Block):
    """The shims read the file with `set -a; . FILE`: it must be valid sh, and only
    VAR=value lines of variables botocore or eipha reads (a typo would be silently unused)."""
    syntax = subprocess.run(["sh", "-n"], input=block.text, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    for raw in block.lines:
        line = raw.removeprefix("# ").strip() if re.match(r"# [A-Z_]+=", raw) else raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, _ = line.partition("=")
        assert sep, f"{block.where}: {raw!r}"
        assert name in DEFAULT_VARIABLES, f"{block.where}: {raw!r}"


def test_the_pacemaker_parameter_table_is_the_agents():
    from eipha.agents.ocf import parameters_markdown

    assert parameters_markdown() in (md.REPO / "docs/pacemaker.md").read_text()
