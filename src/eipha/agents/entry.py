"""The cluster managers' way in: ``eipha heartbeat|keepalived|ocf …`` without click.

Cluster managers run these on every failover (Pacemaker also on every monitor). They pass raw
words that eipha does not parse as options, so click has nothing to do here but cost its
import: skipping it saves about a tenth of a cold start. :func:`eipha.entry.main` hands these
commands here unless global options or ``--help`` are given (those go through click, to the
same functions, via :mod:`eipha.cli.agents_cmd`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eipha.agents import Setup
    from eipha.config import Config
    from eipha.wiring import Runtime

log = logging.getLogger("eipha")


def setup(config_path: str | None = None, region: str | None = None) -> Setup:
    """How an agent loads the config and builds a runtime (shared with the click path)."""
    from eipha import config as cfg
    from eipha.agents import Setup

    def load(path: str | None) -> Config:
        return cfg.load_brief(path or config_path)

    def build(config: Config, seconds: float) -> Runtime:
        from eipha.clock import Deadline
        from eipha.wiring import Runtime

        return Runtime(config, Deadline(seconds), region=region)

    return Setup(load, build)


def echo(text: str) -> None:
    print(text, flush=True)


def run(argv: Sequence[str]) -> int:
    """Run one agent call; :func:`eipha.entry.plain_agent_call` chose it."""
    name, args = argv[0], list(argv[1:])
    if name == "heartbeat":
        from eipha.agents import heartbeat

        return heartbeat.run(tuple(args), setup(), echo)
    if name == "ocf":
        from eipha.agents import ocf

        if len(args) != 1:
            log.error("usage: eipha ocf ACTION")
            return 2
        return ocf.run(args[0], os.environ, setup(), echo)
    from eipha.agents import keepalived

    if args[0] == "notify":
        return keepalived.notify(tuple(args[1:]), setup(), keepalived.fork_stamp())
    if len(args) != 2:
        log.error("usage: eipha keepalived fifo FIFO")
        return 2
    return keepalived.fifo(args[1], setup())


def main(argv: Sequence[str]) -> int:
    """Errors reach people as one line, exactly as through :func:`eipha.cli.main`."""
    from eipha import logsetup
    from eipha.errors import EiphaError
    from eipha.exitcodes import CLI, lookup

    logsetup.configure(0)
    try:
        return run(argv)
    except EiphaError as exc:
        log.error("%s", exc)
        return int(lookup(CLI, exc))
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # a bug: one line, no traceback
        log.error("internal error: %r (please report this)", exc)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
