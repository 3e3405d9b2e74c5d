"""The cluster managers' way in: ``eipha heartbeat|keepalived|ocf …`` without click.

Cluster managers run these on every failover (Pacemaker also on every monitor). They pass raw
words that eipha does not parse as options, so click has nothing to do here but cost its
import: skipping it saves about a tenth of a cold start. :func:`eipha.program.main` hands these
commands here unless global options or ``--help`` are given (those go through click, to the
same functions, via :mod:`eipha.cli.agents_cmd`).

Run as the program (:func:`exit_program`), a one-shot call also skips the two costs of a
short-lived Python process that buy it nothing: the cyclic garbage collector, which runs
dozens of times while botocore's modules are imported and finds nothing to free, and the
interpreter's teardown of a thousand modules after the answer is written. Together they took
a cold keepalived notify from 0.196 to 0.170 s (median of 21, on loopback).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from eipha.agents.setup import Setup
    from eipha.config import Config
    from eipha.node import Node

log = logging.getLogger("eipha")


def setup(config_path: str | None = None, region: str | None = None) -> Setup:
    """How an agent loads the config and builds its node (shared with the click path)."""
    from eipha import config as cfg
    from eipha.agents.setup import Setup

    def load(path: str | None) -> Config:
        return cfg.load_brief(path or config_path)

    def build(config: Config) -> Node:
        from eipha import wiring

        return wiring.node(config, region=region)

    return Setup(load, build)


def echo(text: str) -> None:
    print(text, flush=True)


def run(argv: Sequence[str]) -> int:
    """Run one agent call; :func:`eipha.program.plain_agent_call` chose it."""
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
    from eipha.agents import keepalived_fifo

    return keepalived_fifo.fifo(args[1], setup())


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


def exit_program(argv: Sequence[str]) -> NoReturn:
    """Run ``argv`` as the whole process: :func:`main`, then out at once.

    The garbage collector stays off for one-shot calls (a few hundred milliseconds of life;
    reference counting frees what they drop) but on for ``keepalived fifo``, which lives as
    long as keepalived. After the last log line and answer are flushed, :func:`os._exit`
    ends the process: locks are ``flock``s the kernel releases, every file eipha writes is
    closed by then, and a worker thread left behind by a deadline cannot hold the exit up.
    """
    if list(argv[:2]) != ["keepalived", "fifo"]:
        gc.disable()
    code = main(argv)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed: nothing was written there
            continue
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: what was said there is lost
            code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    exit_program(sys.argv[1:])
