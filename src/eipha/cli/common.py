"""What every command shares: global options, config loading, the node, reporting."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from eipha import logsetup
from eipha.errors import EiphaError
from eipha.exitcodes import CLI, Exit, Table, lookup

if TYPE_CHECKING:
    from eipha.config import Config
    from eipha.failover import Outcome
    from eipha.node import Node

log = logging.getLogger("eipha")

# a region name is one DNS label (what botocore accepts); anything else is a typo
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


@dataclass
class Options:
    """The global options in effect. Given before the command and again after it, the
    one after it wins (``-v`` counts add up)."""

    config_path: str | None = None
    region: str | None = None
    verbose: int = 0
    quiet_at: int | None = None  # how deep in the command line -q was given, if it was

    @property
    def verbosity(self) -> int:
        """-1 quiet (errors only), 0 info, 1+ debug."""
        return -1 if self.quiet_at is not None else self.verbose


def options(ctx: click.Context) -> Options:
    obj = ctx.find_object(Options)
    return obj if obj is not None else Options()


def load_config(opts: Options) -> Config:
    from eipha import config

    return config.load_brief(opts.config_path)


def node(ctx: click.Context, timeout: float | None = None) -> Node:
    """The node over the config in effect, with ``--region``; ``timeout`` (``--timeout``)
    bounds what a command does with it outside the node's own actions (the reads of show,
    validate, drills) as the config's ``timeout`` does otherwise."""
    from eipha import wiring

    opts = options(ctx)
    this = wiring.node(load_config(opts), region=opts.region)
    if timeout is not None:
        this.deadline.seconds = timeout
        this.deadline.restart()
    return this


def report(outcomes: Sequence[Outcome], began: float, table: Table = CLI) -> int:
    """Log one line per EIP; the exit code is the first failure's, else 0."""
    code = Exit.OK
    for outcome in outcomes:
        if outcome.error is not None:
            log.error("%s", outcome.error)
            code = code or lookup(table, outcome.error)
        else:
            log.info("%s", outcome.message)
    log.debug("done in %.2f s", time.monotonic() - began)
    return int(code)


# --------------------------------------------------------------------------- global options


def _depth(ctx: click.Context) -> int:
    return 0 if ctx.parent is None else 1 + _depth(ctx.parent)


def _global(store: Callable[[click.Context, Options, Any], None]) -> Callable[..., None]:
    """A callback that records a global option given at this level of the command line."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if ctx.resilient_parsing or value is None or value is False or value == 0:
            return
        opts = ctx.ensure_object(Options)
        store(ctx, opts, value)
        logsetup.configure(opts.verbosity)

    return callback


def _config(ctx: click.Context, opts: Options, value: str) -> None:
    opts.config_path = value


def _region(ctx: click.Context, opts: Options, value: str) -> None:
    if not _REGION.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not an AWS region name (like 'eu-west-1')")
    opts.region = value


def _verbose(ctx: click.Context, opts: Options, value: int) -> None:
    opts.verbose += value
    if opts.quiet_at is not None and opts.quiet_at < _depth(ctx):  # -q before the command
        opts.quiet_at = None


def _quiet(ctx: click.Context, opts: Options, value: bool) -> None:
    opts.quiet_at = _depth(ctx)


def global_options() -> list[click.Option]:
    """``--config``, ``--region``, ``-v``, ``-q``: fresh ones for one command."""
    return [
        click.Option(
            ["--config", "config_path"],
            metavar="PATH",
            expose_value=False,
            callback=_global(_config),
            help="Config file [default: $EIPHA_CONFIG or "
            "/etc/eipha/eipha.yaml; a missing default file means no config].",
        ),
        click.Option(
            ["--region"],
            metavar="REGION",
            expose_value=False,
            callback=_global(_region),
            help="AWS region [default: config, AWS_REGION, IMDS].",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_global(_verbose),
            help="More detail on stderr (repeat for more).",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_global(_quiet),
            help="Only errors on stderr.",
        ),
    ]


def with_global_options(command: click.Command, *, first: bool = False) -> click.Command:
    """Give ``command`` (and, for a group, each of its commands) the global options it does
    not have yet, so that they work after the command name as well as before it."""
    taken = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
    missing = [o for o in global_options() if not taken.intersection(o.opts)]
    at = 0 if first else len(command.params)
    command.params[at:at] = missing
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_global_options(sub)
    return command


class Group(click.Group):
    """A group whose commands all take the global options, whenever they are added."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(with_global_options(cmd), name)


class Seconds(click.FloatRange):
    """A number of seconds within a range; unlike click's FloatRange, never NaN (which
    compares false with both bounds and so would pass)."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


timeout_option = click.option(
    "--timeout",
    type=Seconds(min=0.1, max=3600),
    metavar="SECONDS",
    help="Deadline for the whole action [default: config timeout, 20].",
)
private_ip_option = click.option(
    "--private-ip",
    metavar="primary|secondary|IP",
    help="Where the EIP goes on this node, instead of the config's binding rule.",
)

__all__ = [
    "EiphaError",
    "Group",
    "Options",
    "Seconds",
    "global_options",
    "load_config",
    "node",
    "options",
    "report",
    "with_global_options",
]
