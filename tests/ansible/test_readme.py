"""ansible/README.md's blocks do what the page says: the inventory is the example, the long
form binds, the connection settings are what ssh reads, the vault command writes a file
Ansible loads, iam-policy.yml writes the policy the aws command attaches, and the wheelhouse
holds what eipha needs. Every fenced block of the page is one of these (or the commands of a
converge, which test_edge.py runs in check mode and for real)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.ansible.staging import ANSIBLE, BIN, INVENTORY, REPO, converge
from tests.ansible.test_pair_filter import pair

README = ANSIBLE / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str) -> list[str]:
    return [text for info, text in FENCE.findall(README.read_text()) if info == lang]


def block(lang: str, *needles: str) -> str:
    """The one ``lang`` block of the page that holds every needle."""
    found = [text for text in blocks(lang) if all(n in text for n in needles)]
    assert len(found) == 1, f"{len(found)} {lang} blocks hold {needles}"
    return found[0]


def test_every_block_is_one_the_tests_know():
    known = {
        "yaml": ("eipha_home_eips", "ProxyJump", "ProxyCommand"),
        "sh": ("encrypt_string", "iam-policy.yml", "pip wheel", "cp inventory.example.yml"),
    }
    for info, text in FENCE.findall(README.read_text()):
        assert info in known, f"a {info or 'plain'} block nobody checks:\n{text}"
        assert [n for n in known[info] if n in text], f"a block nobody checks:\n{text}"


def test_the_inventory_block_is_the_example():
    shown = yaml.safe_load(block("yaml", "eipha_instance_id", "web-1"))
    assert shown == yaml.safe_load(INVENTORY.read_text())


def test_the_long_form_block_binds_both_eips_on_one_node():
    inventory = yaml.safe_load(INVENTORY.read_text())["all"]["children"]["lb"]["hosts"]
    inventory["lb-a"]["eipha_home_eips"] = yaml.safe_load(block("yaml", "web-c"))["eipha_home_eips"]
    result = pair(list(inventory), inventory)
    assert result["problems"] == []
    assert [(e["name"], e["home"], e["private_ips"]) for e in result["eips"]] == [
        ("web-a", "lb-a", {}),
        ("web-b", "lb-b", {}),
        ("web-c", "lb-a", {"lb-a": "10.0.0.13", "lb-b": "10.0.0.23"}),
    ]


@pytest.mark.parametrize(
    ("needle", "host", "expected"),
    [
        ("ProxyJump", "10.0.0.11", "proxyjump admin@bastion.example.com"),
        (
            "ProxyCommand",
            "i-0aaaaaaaaaaaaaaaa",
            "proxycommand aws ssm start-session --target %h --document-name "
            "AWS-StartSSHSession --parameters portNumber=%p",
        ),
    ],
    ids=["bastion", "ssm"],
)
def test_the_connection_settings_are_what_ssh_reads(needle: str, host: str, expected: str):
    """Ansible's ssh connection splits ansible_ssh_common_args with shlex and passes them to
    ssh; ``ssh -G`` prints the configuration ssh would use (and connects to nothing)."""
    group = yaml.safe_load(block("yaml", needle))["all"]["children"]["lb"]
    args = shlex.split(group["vars"]["ansible_ssh_common_args"])
    user = group["vars"]["ansible_user"]
    shown = subprocess.run(
        ["ssh", "-G", *args, "-l", user, host], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert expected in shown
    assert "user admin" in shown


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of ansible/ to run the page's commands in, with the example as inventory.yml."""
    copy = tmp_path / "ansible"
    shutil.copytree(ANSIBLE, copy, ignore=shutil.ignore_patterns("credentials"))
    shutil.copy(INVENTORY, copy / "inventory.yml")
    return copy


def sh(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The page's lines (after its `cd ansible`), run by sh in ``cwd``."""
    lines = [ln for ln in script.splitlines() if ln.strip() != "cd ansible"]
    return subprocess.run(
        ["sh", "-ec", "\n".join(lines)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        timeout=120,
    )


def test_the_vault_command_writes_the_file_ansible_loads(workdir: Path):
    password = workdir.parent / "vault-password"
    password.write_text("correct horse battery staple\n")
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password), "ANSIBLE_CONFIG": "ansible.cfg"}
    made = sh(block("sh", "encrypt_string"), workdir, **env)
    assert made.returncode == 0, made.stderr
    assert "$ANSIBLE_VAULT;1.1;AES256" in (workdir / "group_vars/lb/vault.yml").read_text()
    # group_vars/lb/main.yml's heartbeat_authkeys_secret reads the vaulted value
    shown = sh(
        "ansible -i inventory.yml lb-a -m ansible.builtin.debug -a var=heartbeat_authkeys_secret",
        workdir,
        **env,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert re.search(r'"heartbeat_authkeys_secret": "[0-9a-f]{64}"', shown.stdout), shown.stdout


@pytest.mark.usefixtures("root_only")
def test_the_iam_policy_playbook_writes_what_the_aws_command_attaches(workdir: Path):
    """iam-policy.yml as the page runs it (the controller's eipha is the one on the PATH), in
    a namespace with no network; the file the aws command names then holds the policy."""
    commands = block("sh", "iam-policy.yml", "put-role-policy")
    playbook, attach = [ln for ln in commands.splitlines() if ln.strip() != "cd ansible"]
    assert playbook == "ansible-playbook -i inventory.yml iam-policy.yml"
    run = converge(
        workdir.parent / "root",
        "heartbeat",
        inventory=workdir / "inventory.yml",
        playbook=str(workdir / "iam-policy.yml"),
    )
    assert run.returncode == 0, run.output[-3000:]
    attached = re.search(r"--policy-document file://(\S+)$", attach)
    assert attached is not None
    policy = json.loads((workdir / attached.group(1)).read_text())
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["EiphaDescribe"]["Action"] == [
        "ec2:DescribeAddresses",
        "ec2:DescribeNetworkInterfaces",
    ]
    assert statements["EiphaMoveConfiguredEips"]["Action"] == [
        "ec2:AssociateAddress",
        "ec2:DisassociateAddress",
    ]
    # exactly the inventory's EIPs, both nodes' homes
    eips = [r for r in statements["EiphaMoveConfiguredEips"]["Resource"] if "elastic-ip" in r]
    assert eips == [
        "arn:aws:ec2:*:*:elastic-ip/eipalloc-0123456789abcdef0",
        "arn:aws:ec2:*:*:elastic-ip/eipalloc-0fedcba9876543210",
    ]


def test_the_wheelhouse_holds_what_eipha_needs():
    """The page's `pip wheel` names exactly eipha's run-time dependencies, and the variable
    it passes is the eipha role's."""
    commands = block("sh", "pip wheel")
    wheel = commands.splitlines()[0].split("#")[0].split()
    assert wheel[:4] == ["pip", "wheel", "-w", "build/wheelhouse"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    assert set(wheel[4:]) == needed
    defaults = yaml.safe_load((ANSIBLE / "roles/eipha/defaults/main.yml").read_text())
    assert "eipha_wheelhouse" in defaults
    assert "-e eipha_wheelhouse=" in commands
