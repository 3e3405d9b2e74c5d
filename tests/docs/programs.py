"""What each program named in the docs' shell lines must look like, checked without running
anything that leaves this machine.

- ``eipha``: the line parses with eipha's own click command tree (the command is resolved
  and its options and arguments parsed, callbacks of eager options such as ``--help``
  stopping there), exactly as ``eipha`` would before doing anything.
- ``aws``: the aws CLI installed in the venv parses the line and botocore validates the
  request against the service model; a ``before-call`` hook answers every request with an
  empty success, so nothing is sent and no credentials are used. ``file://`` arguments are
  read from the page's working directory, as the aws CLI does.
- ``pcs``, ``crm``, ``ocf-tester``: only the OCF agent's parameters and operations
  (:data:`eipha.agents.ocf.PARAMETERS`, :data:`~eipha.agents.ocf.ACTIONS`), with timeouts
  no shorter than it advertises, and only the forms these docs use.
- ``systemctl``: only eipha's shipped units and the managers' own.
- The shims by their installed paths stand for ``eipha heartbeat`` and
  ``eipha keepalived notify|fifo``, which is what they exec.
- Everything else is on a list of programs whose use here is plain (``install``, ``scp``,
  ``chmod``, ...); a program on no list is a problem, so a new one is looked at.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import click

from tests.docs.markdown import REPO
from tests.docs.shell import Command

SHIMS = {
    "/etc/ha.d/resource.d/eipha": ["heartbeat"],
    "/etc/keepalived/eipha-notify": ["keepalived", "notify"],
    "/usr/lib/ocf/resource.d/eipha/eipha": ["ocf"],
}
UNITS_DIR = REPO / "src" / "eipha" / "resource_agents" / "systemd"
OTHER_UNITS = {"heartbeat", "keepalived", "haproxy", "pcsd", "corosync", "pacemaker"}
PLAIN = {
    "apt-get", "cat", "cd", "chmod", "cp", "curl", "echo", "export", "head",
    "hostnamectl", "ip", "journalctl", "ln", "man", "mandb", "openssl", "pgrep",
    "pipx", "scp", "ansible-vault", "keepalived",
}  # fmt: skip


@dataclass
class Page:
    """What a page's commands may refer to: its config, and its working directory (files
    its here-documents and redirected eipha commands wrote)."""

    config: Mapping[str, Any]
    cwd: Path
    resources: set[str] = field(default_factory=set)  # pcs/crm resources created so far


def check(command: Command, page: Page) -> list[str]:
    """The problems of one command (empty: fine)."""
    program = command.program
    if program in SHIMS:
        words = [*SHIMS[program], *command.words[1:]]
        if words[:2] == ["keepalived", "notify"] and words[2:3] == ["fifo"]:
            words = ["keepalived", "fifo", *words[3:]]
        return eipha_problems(words)
    if program == "eipha" or program.endswith("/bin/eipha"):
        if "_EIPHA_COMPLETE" in command.env:  # click's completion: the script for a shell
            shells = {f"{s}_source" for s in ("bash", "zsh", "fish")}
            ok = command.env["_EIPHA_COMPLETE"] in shells and len(command.words) == 1
            return [] if ok else [f"{command.line}: not one of {sorted(shells)}"]
        return eipha_problems(command.words[1:])
    checker = CHECKERS.get(program) or CHECKERS.get(Path(program).name)
    if checker is not None:
        return checker(command, page)
    if program in PLAIN:
        return []
    return [f"{program}: a program the docs tests do not know; add a check for it"]


# --------------------------------------------------------------------------- eipha


def eipha_problems(args: Sequence[str]) -> list[str]:
    try:
        parse_eipha(args)
    except click.exceptions.Exit:
        return []  # --help, --version: parsed, and eager
    except click.ClickException as exc:
        return [f"eipha {' '.join(args)}: {exc.format_message()}"]
    return []


def parse_eipha(args: Sequence[str]) -> list[str]:
    """Resolve the command path of ``args`` and parse its options and arguments, as eipha
    would before running anything; the path (``["config", "check"]``)."""
    from eipha.cli import cli

    if os.environ.get("_EIPHA_COMPLETE"):
        raise AssertionError("not under shell completion")
    ctx = cli.make_context("eipha", list(args))
    command: click.Command = cli
    path = []
    with ctx:
        while isinstance(command, click.Group):
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
            if not rest:
                raise click.UsageError("missing command", ctx)
            name, sub, rest = command.resolve_command(ctx, rest)
            if sub is None or name is None:
                raise click.UsageError(f"no such command {rest[:1]}", ctx)
            path.append(name)
            ctx = sub.make_context(name, rest, parent=ctx)
            command = sub
    return path


# --------------------------------------------------------------------------- aws


@cache
def _aws_driver() -> Any:
    from awscli.clidriver import create_clidriver  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSResponse

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return AWSResponse("https://docs.invalid/", 200, {}, None), {}

    driver = create_clidriver()
    driver.session.register("before-call", answer)
    return driver


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "docs-test",
    "AWS_SECRET_ACCESS_KEY": "docs-test",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never used: every call is answered before
}


def check_aws(command: Command, page: Page) -> list[str]:
    """The aws CLI's own parser and botocore's validation; nothing is sent."""
    args = command.words[1:]
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    here = Path.cwd()
    try:
        os.environ.update(AWS_ENV)
        os.chdir(page.cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _aws_driver().main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(here)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if code != 0:
        return [f"aws {' '.join(args)}: exit {code}: {err.getvalue().strip()[-300:]}"]
    return []


# --------------------------------------------------------------------------- Pacemaker


def _ocf() -> tuple[set[str], dict[str, float]]:
    from eipha.agents.ocf import ACTIONS, PARAMETERS

    return {p.name for p in PARAMETERS}, {a.name: seconds(a.timeout) for a in ACTIONS}


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min|m)?", value)
    if not match:
        raise ValueError(f"not a Pacemaker interval: {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "min": 60}[unit]


def _resource(words: Sequence[str], page: Page) -> list[str]:
    """``NAME ocf:eipha:eipha [params] k=v… [op ACTION k=v…]…`` (pcs or crm)."""
    names, timeouts = _ocf()
    problems = []
    if len(words) < 2 or words[1] != "ocf:eipha:eipha":
        return [f"{' '.join(words)}: not a resource of the agent ocf:eipha:eipha"]
    page.resources.add(words[0])
    op: str | None = None
    for word in words[2:]:
        if word in ("params", "meta"):
            continue
        if word == "op":
            op = ""
            continue
        if op == "":
            op = word
            if op not in timeouts:
                problems.append(f"op {op}: the agent does not advertise it")
            continue
        key, sep, value = word.partition("=")
        if not sep:
            problems.append(f"{word}: not key=value")
        elif op is None:
            if key not in names:
                problems.append(f"{key}: not a parameter of the agent ({', '.join(names)})")
            if key == "eip" and value not in page.config.get("eips", {}):
                problems.append(f"eip={value}: not an EIP of the page's config")
        elif key == "timeout" and op in timeouts and seconds(value) < timeouts[op]:
            problems.append(f"op {op} timeout={value}: shorter than the agent's {timeouts[op]:g}s")
        elif key == "interval" and op == "monitor" and seconds(value) <= 0:
            problems.append(f"op monitor interval={value}: must be positive")
    return problems


def check_pcs(command: Command, page: Page) -> list[str]:
    words = command.words[1:]
    nodes = set(page.config.get("nodes", {}))
    match words:
        case ["resource", "create", name, "systemd:haproxy", "clone"]:
            page.resources.add(f"{name}-clone")
            return []
        case ["resource", "create", *rest]:
            return _resource(rest, page)
        case ["constraint", "location", resource, "prefers", preference]:
            node = preference.partition("=")[0]
            problems = [] if resource in page.resources else [f"{resource}: not created above"]
            return problems + ([] if node in nodes else [f"{node}: not a node of the config"])
        case ["constraint", "colocation", "add", a, "with", b]:
            return [f"{r}: not created above" for r in (a, b) if r not in page.resources]
    return [f"pcs {' '.join(words)}: a form the docs tests do not know"]


def check_crm(command: Command, page: Page) -> list[str]:
    words = command.words[1:]
    nodes = set(page.config.get("nodes", {}))
    match words:
        case ["configure", "primitive", *rest]:
            return _resource(rest, page)
        case ["configure", "location", _, resource, score, node] if score.endswith(":"):
            problems = [] if resource in page.resources else [f"{resource}: not created above"]
            return problems + ([] if node in nodes else [f"{node}: not a node of the config"])
    return [f"crm {' '.join(words)}: a form the docs tests do not know"]


def check_ocf_tester(command: Command, page: Page) -> list[str]:
    names, _ = _ocf()
    words = command.words[1:]
    problems = []
    if not words or words[-1] != "/usr/lib/ocf/resource.d/eipha/eipha":
        problems.append("ocf-tester: the last argument must be the installed agent")
    for flag, value in itertools.pairwise(words):
        if flag == "-o" and value.partition("=")[0] not in names:
            problems.append(f"ocf-tester -o {value}: not a parameter of the agent")
    return problems


# --------------------------------------------------------------------------- the rest


def check_systemctl(command: Command, page: Page) -> list[str]:
    words = command.words[1:]
    shipped = {p.name for p in UNITS_DIR.iterdir()}
    match words:
        case ["daemon-reload"]:
            return []
        case ["is-active", "--quiet", unit]:
            units = [unit]
        case ["enable", "--now", *units] | ["reload" | "stop" | "restart", *units]:
            pass
        case _:
            return [f"systemctl {' '.join(words)}: a form the docs tests do not know"]
    unknown = [
        u for u in units if u not in shipped and u.removesuffix(".service") not in OTHER_UNITS
    ]
    problems = [f"systemctl: {u} is neither a shipped unit nor a manager's" for u in unknown]
    for unit in units:  # a timer alone would leave the boot-time run out
        service = unit.replace(".timer", ".service")
        if words[0] == "enable" and unit.endswith(".timer") and service not in units:
            problems.append(f"systemctl enable {unit} without {service}, its boot-time run")
    return problems


@cache
def extras() -> frozenset[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return frozenset(data["project"]["optional-dependencies"])


def check_pip(command: Command, page: Page) -> list[str]:
    words = command.words[1:]
    if words[:1] != ["install"]:
        return [f"pip {' '.join(words)}: only pip install is used here"]
    problems = []
    for word in words[1:]:
        match = re.fullmatch(r"(?P<what>[^\[]+)\[(?P<extras>[^\]]+)\]", word)
        if match:
            wanted = set(match.group("extras").split(","))
            problems += [f"{word}: eipha has no extra {e!r}" for e in sorted(wanted - extras())]
        if word == "eipha" and "--no-index" not in words:
            problems.append("pip install eipha: there is no release on a package index")
    return problems


def check_python(command: Command, page: Page) -> list[str]:
    words = command.words[1:]
    match words:
        case ["-m", "venv", _]:
            return []
        case ["-m", "pip", "wheel", *rest] if rest[-1:] == ["."] and "-w" in rest:
            return []
        case ["-m", "build", *rest] if rest[-1:] == ["."]:
            return []
        case [script, *_] if script.endswith(".py"):
            return [] if (REPO / script).is_file() else [f"{script}: no such file in the repo"]
    return [f"python {' '.join(words)}: a form the docs tests do not know"]


def check_ansible_playbook(command: Command, page: Page) -> list[str]:
    playbooks = [w for w in command.words[1:] if w.endswith(".yml") and w != "inventory.yml"]
    return [
        f"{p}: no such playbook in ansible/"
        for p in playbooks
        if not (REPO / "ansible" / p).is_file()
    ]


def check_bash(command: Command, page: Page) -> list[str]:
    scripts = command.words[1:2]
    return [f"{s}: no such script" for s in scripts if not (REPO / s).is_file()]


def check_install(command: Command, page: Page) -> list[str]:
    """``install [-D] [-m MODE] [-o U -g G] SOURCE… DEST``: a source named relative to the
    checkout must be in it (the shims moved into the package; install-agents puts them)."""
    words = command.words[1:]
    operands = [
        w
        for i, w in enumerate(words)
        if not w.startswith("-") and words[i - 1 : i] not in (["-m"], ["-o"], ["-g"])
    ]
    sources = operands[:-1]
    return [
        f"install {s}: no such file in the checkout"
        for s in sources
        if not s.startswith("/") and not (REPO / s).is_file()
    ]


def check_pytest(command: Command, page: Page) -> list[str]:
    paths = [w for w in command.words[1:] if not w.startswith("-")]
    return [f"{p}: no such test path" for p in paths if not (REPO / p).exists()]


CHECKERS: dict[str, Callable[[Command, Page], list[str]]] = {
    "aws": check_aws,
    "pcs": check_pcs,
    "crm": check_crm,
    "ocf-tester": check_ocf_tester,
    "systemctl": check_systemctl,
    "pip": check_pip,
    "python3": check_python,
    "python": check_python,
    "ansible-playbook": check_ansible_playbook,
    "bash": check_bash,
    "pytest": check_pytest,
    "install": check_install,
}
