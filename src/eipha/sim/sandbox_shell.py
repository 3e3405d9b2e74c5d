"""The shell of a sandbox node: the ``export`` lines that make a shell that node, and the
lines that disarm one when no sandbox runs."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from eipha.sim.sandbox_layout import HOST, Layout

SECRET = "sandbox"  # every node's fake secret access key; the key id names the node
NO_PROXY = "127.0.0.1,localhost"
UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
"""Unset in a node's shell: a profile the empty config file does not have is an error in
botocore, a real session token has no business next to a fake key, and the last one would
make botocore ignore ``AWS_ENDPOINT_URL_EC2``."""


def node_env(layout: Layout, region: str, node: str, imds_port: int) -> dict[str, str]:
    """What a shell needs to be ``node`` of the sandbox."""
    return {
        "AWS_ACCESS_KEY_ID": f"sandbox-{node}",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_EC2": f"http://{HOST}:{layout.port}",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://{HOST}:{imds_port}/",
        "EIPHA_CONFIG": str(layout.config(node)),
        "EIPHA_RUN_DIR": str(layout.run_dir(node)),
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,  # a lowercase no_proxy would hide NO_PROXY from Python's proxies
    }


def shell_lines(state: Mapping[str, Any], node: str) -> str:
    """The ``unset`` and ``export`` lines of ``node``, for ``eval`` in a POSIX shell."""
    spec = state["nodes"][node]
    lines = [
        f"# eipha sandbox (pid {state['pid']}, {state['region']}): this shell is {node} "
        f"({spec['instance_id']}, {spec['primary_ip']})",
        f"unset {' '.join(UNSET)}",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in spec["env"].items()]
    return "\n".join(lines)


CLOSED = f"http://{HOST}:9"  # the discard port on loopback: refused at once


def disarm_lines(node: str) -> str:
    """What ``--env`` prints when no sandbox runs: ``eval`` cannot see the exit code, so
    instead of leaving the shell as it was (the user's real AWS credentials, the real
    metadata service), point it at a closed loopback port, where every command fails at
    once and nothing reaches AWS."""
    closed = {
        "AWS_ACCESS_KEY_ID": f"sandbox-{node}",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_EC2": CLOSED,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{CLOSED}/",
    }
    lines = [
        f"# no eipha sandbox is running: this shell ({node}) now points at a closed port on "
        "127.0.0.1, so nothing reaches AWS; start `eipha sandbox` and eval this again",
        f"unset {' '.join(UNSET)}",
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in closed.items()]
    return "\n".join(lines)
