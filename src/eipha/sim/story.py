"""``eipha drill --simulate``: the whole failover story in a simulated region on loopback.

No AWS account, no root, no network beyond 127.0.0.1. In this process: a simulated EC2 region
(moto with eipha's private-IP extension), the two-node world of the README's picture, one
IMDSv2 double per node, one tiny web server per node standing in for HAProxy, and a "router"
that plays the internet: a request for an EIP goes to whichever node EC2 says holds it. Each
node runs eipha's own start/status code (the code behind the CLI) against its own metadata.
The story:

    both healthy -> lb-b fails -> lb-a takes web-b onto its secondary IP
    -> lb-b returns -> web-b goes home

Every step is verified (EC2's state, each node's status, what a client sees); the exit code
is 0 only if all of them held.

Here: the environment and the report (:func:`play`). The lab is :mod:`eipha.sim.story_lab`,
its stand-ins :mod:`eipha.sim.stand_ins`, a step and its checks :mod:`eipha.sim.story_steps`,
the acts :mod:`eipha.sim.story_acts`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from eipha.sim.region import SimulatedRegion, build_pair
from eipha.sim.stand_ins import Router
from eipha.sim.story_acts import tell, tell_monitors
from eipha.sim.story_lab import Lab
from eipha.sim.story_steps import StepFailed, Story

SIM_ENV = {
    "AWS_ACCESS_KEY_ID": "simulated",
    "AWS_SECRET_ACCESS_KEY": "simulated",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
}
SIM_UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@contextlib.contextmanager
def simulated_environment(endpoint: str, run_dir: str) -> Iterator[None]:
    """Fake credentials and the simulated endpoint for this process, restored afterwards."""
    saved = dict(os.environ)
    try:
        for key in SIM_UNSET:
            os.environ.pop(key, None)
        os.environ.update(SIM_ENV, AWS_ENDPOINT_URL_EC2=endpoint, EIPHA_RUN_DIR=run_dir)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def play(json_output: bool = False) -> int:
    """Run the story; 0 only if every step verified."""
    logging.getLogger("eipha").setLevel(logging.WARNING)
    lines: list[str] = []
    out: Callable[[str], None] = lines.append if json_output else click.echo
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="eipha-sim-") as run_dir,
        SimulatedRegion() as region,
        simulated_environment(region.endpoint, str(Path(run_dir))),
    ):
        out(f"simulated region {region.region} at {region.endpoint} (moto, loopback only)")
        lab = Lab(region, build_pair(region))
        router = None
        try:
            for node in lab.world.nodes.values():
                lab.bring_up(node)
                out(
                    f"  {node.name}: {node.instance_id}, {node.eni_id}, primary "
                    f"{node.primary_ip}, secondary {', '.join(node.secondary_ips)}"
                )
            for eip in lab.world.eips.values():
                out(f"  {eip.name}: {eip.allocation_id} ({eip.public_ip}), home {eip.home}")
            router = Router(lab).start()
            story = Story(lab, router, out)
            ok = True
            try:
                tell(story)
                tell_monitors(story, Path(run_dir))
            except StepFailed:
                ok = False
        finally:
            if router is not None:
                router.stop()
            lab.close()
    total = time.monotonic() - began
    verdict = "every step verified" if ok else "a step FAILED"
    if json_output:
        click.echo(
            json.dumps({"ok": ok, "seconds": round(total, 2), "steps": story.steps}, indent=2)
        )
    else:
        click.echo(f"\n{verdict} ({total:.1f} s); the simulated region is gone")
    return 0 if ok else 1
