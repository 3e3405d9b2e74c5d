"""``eipha validate``: is this node ready to take over?"""

from __future__ import annotations

import json

import click

from eipha.cli.common import node, timeout_option


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--keepalived-conf",
    metavar="FILE",
    help="keepalived's config to cross-check [default: /etc/keepalived/keepalived.conf, "
    "when it exists].",
)
@click.option(
    "--ha-dir",
    metavar="DIR",
    help="Heartbeat's directory, for its haresources [default: /etc/ha.d, when it has one].",
)
@timeout_option
@click.pass_context
def validate(
    ctx: click.Context,
    as_json: bool,
    keepalived_conf: str | None,
    ha_dir: str | None,
    timeout: float | None,
) -> int:
    """Check this node: config, the cluster manager's own files, IMDSv2, its ENI, every
    binding IP (on the ENI, and on the OS interface), net.ipv4.ip_nonlocal_bind, and IAM
    permissions by DryRun calls. Changes nothing.

    keepalived.conf: every vrrp_instance that runs eipha-notify must be in the config's
    keepalived.instances (when that mapping is given), or its MASTER moves nothing.
    haresources: every eipha::EIP names an EIP the config knows, on a node it knows.

    Prints a checklist; a warning names its fix. On a host that is not the instance
    (no local interface has the ENI's MAC: `eipha sandbox`, a network namespace of its
    own) the OS interface checks are one warning saying so. Exit 0 when every check
    passes (warnings allowed), 4 when a permission is missing, 6 when the config or the
    ENI is wrong, 1 otherwise (IMDS or the API unreachable).
    """
    from eipha import manager_files
    from eipha import validate as checks

    files = checks.ManagerFiles(
        keepalived_conf or manager_files.KEEPALIVED_CONF,
        ha_dir or manager_files.HA_DIR,
        keepalived_named=keepalived_conf is not None,
        ha_named=ha_dir is not None,
    )
    result = checks.run(node(ctx, timeout), managers=files)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"check": c.name, "status": c.status.value.lower(), "detail": c.detail}
                    for c in result
                ],
                indent=2,
            )
        )
    else:
        click.echo(checks.render(result))
    return int(checks.exit_code(result))
