"""What every command shares: global options, config loading, the runtime, reporting."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from eipha.errors import EiphaError
from eipha.exitcodes import CLI, Exit, Table, lookup

if TYPE_CHECKING:
    from eipha.config import Config
    from eipha.failover import Outcome
    from eipha.wiring import Runtime

log = logging.getLogger("eipha")
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Options:
    config_path: str | None
    region: str | None
    verbosity: int


def options(ctx: click.Context) -> Options:
    obj = ctx.find_object(Options)
    return obj if obj is not None else Options(None, None, 0)


def load_config(opts: Options) -> Config:
    from eipha import config

    return config.load_brief(opts.config_path)


def runtime(ctx: click.Context, timeout: float | None) -> Runtime:
    from eipha.clock import Deadline
    from eipha.wiring import Runtime

    opts = options(ctx)
    config = load_config(opts)
    return Runtime(config, Deadline(timeout or config.timeout), region=opts.region)


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


def _verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    from eipha import logsetup

    if not value:
        return
    opts = options(ctx)
    level = -1 if param.name == "quiet" else max(opts.verbosity, 0) + int(value)
    logsetup.configure(level)


def verbosity_options(command: F) -> F:
    """``-v``/``-q`` after the command name too (``eipha start -v web-a``)."""
    command = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_verbosity,
        help="Only errors on stderr.",
    )(command)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_verbosity,
        help="More detail on stderr (repeat for more).",
    )(command)


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

__all__ = ["EiphaError", "Options", "Seconds", "load_config", "options", "report", "runtime"]
