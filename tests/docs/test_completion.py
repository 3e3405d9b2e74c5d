"""Shell completion as docs/commands.md documents it.

bash, for real: the script ``_EIPHA_COMPLETE=bash_source eipha`` prints is sourced into a
bash, and its completion function, called as bash calls it (COMP_WORDS, COMP_CWORD), must
complete command names, subcommands and option values by running eipha. zsh and fish are not
installed here: their scripts must be produced, and the protocol those scripts speak to
eipha (``zsh_complete``, ``fish_complete``) must complete a command name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EIPHA = str(Path(sys.executable).parent / "eipha")


def eipha(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EIPHA], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )


def bash_complete(script: str, words: list[str], cword: int) -> list[str]:
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}\n"
        "_eipha_completion eipha\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    env = {**os.environ, "PATH": f"{Path(EIPHA).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def bash_script() -> str:
    result = eipha({"_EIPHA_COMPLETE": "bash_source"})
    assert result.returncode == 0, result.stderr
    assert "complete -o nosort -F _eipha_completion eipha" in result.stdout
    return result.stdout


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        (["eipha", "sta"], 1, ["start", "status"]),
        (["eipha", "config", ""], 2, ["check"]),
        (["eipha", "install-agents", ""], 2, ["heartbeat", "keepalived", "ocf", "systemd"]),
        (["eipha", "sandbox", "--env", ""], 3, ["lb-a", "lb-b"]),
        (["eipha", "drill", "--sim"], 2, ["--simulate"]),
    ],
)
def test_bash_completes(bash_script: str, words: list[str], cword: int, expected: list[str]):
    assert bash_complete(bash_script, words, cword) == expected


@pytest.mark.parametrize(
    ("shell", "mark"),
    [("zsh", "compdef _eipha_completion eipha"), ("fish", "complete --no-files --command eipha")],
)
def test_zsh_and_fish_scripts_are_produced(shell: str, mark: str):
    result = eipha({"_EIPHA_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0, result.stderr
    assert mark in result.stdout


def test_the_zsh_protocol_completes_a_command_name():
    result = eipha({"_EIPHA_COMPLETE": "zsh_complete", "COMP_WORDS": "eipha va", "COMP_CWORD": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["plain", "validate"]  # then its short help


def test_the_fish_protocol_completes_a_command_name():
    result = eipha(
        {"_EIPHA_COMPLETE": "fish_complete", "COMP_WORDS": "eipha va", "COMP_CWORD": "va"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plain,validate")
