"""The quorum's ICMP echo in a fresh network namespace: both socket kinds, with and without
privileges, as ``net.ipv4.ping_group_range`` allows. Only 127.0.0.1 is ever pinged, inside
a namespace of its own (``unshare --net``), so nothing leaves the machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

NOBODY = 65534
EVERYONE = "0 2147483647"
NO_ONE = "1 0"  # the kernel's default: no unprivileged ICMP sockets

PROBE = """
import json
from eipha.monitor import quorum
try:
    sock, raw = quorum.open_icmp_socket()
    sock.close()
    kind = "raw" if raw else "dgram"
except OSError:
    kind = None
print(json.dumps([kind, *quorum.icmp_echo("127.0.0.1", 0.5)]))
"""


def echo_in_netns(
    ping_group_range: str, *, as_nobody: bool, lo_up: bool = True
) -> tuple[str | None, bool, str]:
    """(socket kind, ok, detail) of one echo from a process in a new network namespace."""
    assert shutil.which("unshare"), "util-linux is missing"
    assert shutil.which("setpriv"), "util-linux is missing"
    user = f"setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups " if as_nobody else ""
    script = (
        f"{'ip link set lo up; ' if lo_up else ''}"
        f"echo '{ping_group_range}' > /proc/sys/net/ipv4/ping_group_range; "
        f'exec {user}"$0" -c "$1"'
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script, sys.executable, PROBE],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    kind, ok, detail = json.loads(result.stdout)
    return kind, ok, detail


def test_root_without_ping_group_range_uses_a_raw_socket() -> None:
    assert echo_in_netns(NO_ONE, as_nobody=False) == ("raw", True, "echo reply")


def test_root_within_ping_group_range_uses_an_unprivileged_socket() -> None:
    assert echo_in_netns(EVERYONE, as_nobody=False) == ("dgram", True, "echo reply")


def test_unprivileged_user_within_ping_group_range_pings() -> None:
    assert echo_in_netns(EVERYONE, as_nobody=True) == ("dgram", True, "echo reply")


def test_unprivileged_user_outside_ping_group_range_cannot_ping() -> None:
    kind, ok, detail = echo_in_netns(NO_ONE, as_nobody=True)
    assert (kind, ok) == (None, False)
    assert detail.startswith("cannot open an ICMP socket")


def test_loopback_down_is_no_answer() -> None:
    assert echo_in_netns(EVERYONE, as_nobody=False, lo_up=False) == (
        "dgram",
        False,
        "network is unreachable",
    )
