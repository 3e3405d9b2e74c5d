"""``eipha install-agents MANAGER…``: the shims and units from the wheel, put in place."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from eipha.errors import PermissionDenied

log = logging.getLogger("eipha")

NEXT_STEPS = {
    "heartbeat": "Heartbeat: name the EIPs in /etc/ha.d/haresources (lb-a eipha::web-a), "
    "then check one: /etc/ha.d/resource.d/eipha web-a status",
    "keepalived": "keepalived: notify /etc/keepalived/eipha-notify in each vrrp_instance "
    '(or vrrp_notify_fifo_script "/etc/keepalived/eipha-notify fifo")',
    "ocf": "Pacemaker: pcs resource create web-a ocf:eipha:eipha eip=web-a "
    "(check first: ocf-tester -n web-a -o eip=web-a /usr/lib/ocf/resource.d/eipha/eipha)",
    "systemd": "systemd: systemctl daemon-reload && systemctl enable --now "
    "eipha-secondary-ips.service eipha-secondary-ips.timer "
    "(and eipha-monitor.service if the peer monitor moves the EIPs)",
}


@click.command("install-agents")
@click.argument(
    "managers",
    nargs=-1,
    required=True,
    metavar="MANAGER...",
    type=click.Choice(["heartbeat", "keepalived", "ocf", "systemd"]),
)
@click.option(
    "--root",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Install under DIR instead of / (staging, images, packages).",
)
@click.option(
    "--bin",
    "eipha_bin",
    metavar="PATH",
    help="The eipha the files run [default: the eipha of this installation].",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
def install_agents(
    managers: tuple[str, ...], root: str | None, eipha_bin: str | None, dry_run: bool
) -> int:
    """Install the cluster-manager shims and systemd units shipped in eipha.

    \b
    heartbeat   /etc/ha.d/resource.d/eipha                        0755
    keepalived  /etc/keepalived/eipha-notify                      0755
    ocf         /usr/lib/ocf/resource.d/eipha/eipha               0755
    systemd     /etc/systemd/system/eipha-secondary-ips.service   0644
                /etc/systemd/system/eipha-secondary-ips.timer     0644
                /etc/systemd/system/eipha-monitor.service         0644

    Each file gets the path of this eipha written in (the shims' default
    EIPHA_BIN, the units' ExecStart), is owned by root, and is written
    atomically. Idempotent: a file already right is left alone, and a run
    that changes nothing says so. Missing directories are created (0755).
    Needs root, except with --root DIR or --dry-run.

    \b
    Exit 0 done, 2 bad usage, 4 not allowed to write, 1 other failure.
    """
    from eipha import install_agents as agents

    target = Path(root) if root else Path("/")
    chosen = agents.check_bin(eipha_bin) if eipha_bin else agents.default_bin()
    if os.geteuid() != 0 and root is None and not dry_run:
        raise PermissionDenied(
            "install-agents writes into /etc and /usr/lib",
            "run it as root, or stage with --root DIR",
        )
    changes = agents.plan(agents.select(managers), target, chosen)
    if not dry_run:
        agents.apply(changes)
    for change in changes:
        click.echo(agents.line(change, dry_run))
    click.echo(agents.summary(changes, chosen, dry_run))
    if root is None and not Path(chosen).exists():
        log.warning("%s does not exist here; the shims fail until it does (see --bin)", chosen)
    done = {c.agent.manager for c in changes if c.needed}
    if not dry_run and done:
        for manager in managers:
            if manager in done:
                log.info("next, %s", NEXT_STEPS[manager])
    return 0
