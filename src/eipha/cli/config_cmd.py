"""``eipha config check [FILE]``: parse and validate a config, with no network."""

from __future__ import annotations

import logging
import os

import click

from eipha.errors import ConfigError, NotConfigured
from eipha.exitcodes import Exit

log = logging.getLogger("eipha")


@click.group()
def config() -> None:
    """Work with the config file."""


@config.command()
@click.argument("file", required=False, metavar="[FILE]")
@click.pass_context
def check(ctx: click.Context, file: str | None) -> int:
    """Parse and validate FILE (default: the config eipha would use). No network.

    Prints every problem at once, one "path: message" per line. Exit 0 when valid, 6 when
    invalid or missing. Suitable for Ansible's template "validate: eipha config check %s".
    """
    from eipha import config as cfg
    from eipha.cli.common import options

    path, _ = cfg.resolve_path(file or options(ctx).config_path, os.environ)
    try:
        parsed = cfg.parse_file(path)
    except ConfigError as exc:
        log.error("%s", exc)
        for problem in exc.problems:
            # problems about the whole file already start with its path
            shown = problem if problem.startswith(f"{path}: ") else f"{path}: {problem}"
            click.echo(shown, err=True)
        return int(Exit.NOT_CONFIGURED)
    except NotConfigured as exc:
        log.error("%s", exc)
        return int(Exit.NOT_CONFIGURED)
    click.echo(f"{path}: valid ({len(parsed.eips)} EIPs, {len(parsed.nodes)} nodes)")
    return int(Exit.OK)
