"""``eipha heartbeat``, ``eipha keepalived notify|fifo`` and ``eipha ocf``: what cluster
managers run, through the shims in ``eipha/resource_agents/``. The work is in
:mod:`eipha.agents`; here only the arguments, the environment and the wiring."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from eipha.cli.common import options

if TYPE_CHECKING:
    from eipha.agents.setup import Setup

# Cluster managers pass their own words: nothing after the command is an option of ours.
RAW = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def _setup(ctx: click.Context) -> Setup:
    from eipha.agents import fast_path

    opts = options(ctx)
    return fast_path.setup(opts.config_path, opts.region)


@click.command(context_settings=RAW)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="EIP [BINDING] ACTION")
@click.pass_context
def heartbeat(ctx: click.Context, args: tuple[str, ...]) -> int:
    """Heartbeat v1 resource script (haresources: "lb-a eipha::web-a").

    \b
    ACTION is start, stop or status; BINDING (optional) is primary,
    secondary or an IPv4 address: where an EIP the config does not have
    goes (for one it has, it must agree with the binding rule, else 6).
    status prints exactly "running" or "not running" on stdout, nothing else.
    Exit (LSB): 0 done/running, 1 failure, 2 bad usage, 3 not running,
    4 status unknown or no permission, 6 not configured.
    stop exits 0 unless the EIP is provably still on this node.
    """
    from eipha.agents import heartbeat as agent

    return agent.run(args, _setup(ctx), click.echo)


@click.group()
def keepalived() -> None:
    """keepalived integration: notify scripts and the notify FIFO."""


@keepalived.command(context_settings=RAW)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ARG...] TYPE NAME STATE [PRIO]")
@click.pass_context
def notify(ctx: click.Context, args: tuple[str, ...]) -> int:
    """keepalived's notify script: act on the event at the end of ARGs.

    \b
    keepalived appends TYPE NAME STATE PRIORITY (TYPE: INSTANCE or GROUP);
    for notify_master_rx_lower_pri write them yourself:
      eipha keepalived notify INSTANCE VI_A MASTER_RX_LOWER_PRI
    MASTER, MASTER_RX_LOWER_PRI: start the EIPs of keepalived.instances.NAME
    (every configured EIP when that mapping is empty; a NAME it does not list
    is an error). BACKUP, FAULT, STOP, DELETED: nothing (no API call).
    Exit 0 done, 1 failed, 2 no event found.
    """
    from eipha.agents import keepalived as agent

    return agent.notify(args, _setup(ctx), agent.fork_stamp())


@keepalived.command()
@click.argument("fifo_path", metavar="FIFO")
@click.pass_context
def fifo(ctx: click.Context, fifo_path: str) -> int:
    """Read keepalived's notify FIFO (notify_fifo_script / vrrp_notify_fifo_script).

    Handles each line (INSTANCE "VI_1" MASTER 100) like notify, in order, until end of file
    or SIGTERM (exit 0); a malformed line is logged and skipped.
    """
    from eipha.agents import keepalived_fifo

    return keepalived_fifo.fifo(fifo_path, _setup(ctx))


@click.command()
@click.argument("action", metavar="ACTION")
@click.pass_context
def ocf(ctx: click.Context, action: str) -> int:
    """OCF resource agent for Pacemaker (ocf:eipha:eipha).

    \b
    ACTION: start, stop, monitor, status, meta-data, validate-all, usage.
    Parameters from the environment: OCF_RESKEY_eip (required),
    OCF_RESKEY_private_ip, OCF_RESKEY_config.
    Exit (OCF): 0 success/running, 1 generic (monitor: unknown), 2 args,
    3 unimplemented, 4 permission, 5 not installed, 6 not configured,
    7 not running. Failures also print "ocf-exit-reason:..." on stderr.
    """
    from eipha.agents import ocf as agent

    return agent.run(action, os.environ, _setup(ctx), click.echo)
