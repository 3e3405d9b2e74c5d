"""ansible/ is yamllint- and ansible-lint-clean (production profile) and parses."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.ansible.staging import ANSIBLE, BIN

ROLES = sorted(p.name for p in (ANSIBLE / "roles").iterdir())


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(BIN / cmd[0]), *cmd[1:]],
        cwd=ANSIBLE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_yamllint_clean():
    result = run("yamllint", "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile_clean():
    result = run("ansible-lint", "--offline", "--nocolor", "--profile", "production")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.parametrize("playbook", ["site.yml", "iam-policy.yml"])
def test_playbook_syntax_check(playbook: str):
    result = run("ansible-playbook", "-i", "inventory.example.yml", "--syntax-check", playbook)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_has_the_skeleton():
    assert ROLES == [
        "eipha",
        "eipha_monitor",
        "eipha_secondary_ips",
        "haproxy",
        "heartbeat",
        "keepalived",
    ]
    for role in ROLES:
        for part in (
            "defaults/main.yml",
            "tasks/main.yml",
            "handlers/main.yml",
            "meta/main.yml",
            "meta/argument_specs.yml",
            "README.md",
        ):
            assert (ANSIBLE / "roles" / role / part).is_file(), f"{role}/{part}"
        assert (ANSIBLE / "roles" / role / "templates").is_dir(), f"{role}/templates"


def test_defaults_argument_specs_readme_and_group_vars_agree():
    """Every default has an argument spec, is in the role's README and in group_vars, where it
    has its real default value (an example is a comment, never a live value)."""
    group_vars = {
        **yaml.safe_load((ANSIBLE / "group_vars" / "all.yml").read_text()),
        **yaml.safe_load((ANSIBLE / "group_vars" / "lb" / "main.yml").read_text()),
    }
    for role in ROLES:
        base = ANSIBLE / "roles" / role
        defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
        spec = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())
        options = spec["argument_specs"]["main"]["options"]
        readme = (base / "README.md").read_text()
        for name, value in defaults.items():
            assert name in options, f"{role}: {name} has no argument spec"
            assert f"{name}:" in readme, f"{role}: {name} is not in README.md"
            assert name in group_vars, f"{role}: {name} is not shown in group_vars"
            default = options[name].get("default")
            if "{{" not in str(value) and "default" in options[name]:
                assert default == value, f"{role}: {name}: spec default {default!r} != {value!r}"
            if "{{" not in str(value):
                shown = group_vars[name]
                assert shown == value, f"{role}: {name}: group_vars has {shown!r}, not {value!r}"
