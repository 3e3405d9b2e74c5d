"""`eipha secondary-ips` against the real kernel in a network namespace, with an IMDSv2 double
inside it whose data the tests change between runs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eipha.sim.imds_double import node_metadata
from eipha.sim.netns import NodeNetns

MAC = "0a:00:00:00:00:0a"
ENI = "eni-0aaaaaaaaaaaaaaaa"
PRIMARY = "10.0.0.11"


def metadata(secondaries: list[str], cidr: str | None = "10.0.0.0/24") -> dict[str, str]:
    return node_metadata(
        "i-0aaaaaaaaaaaaaaaa",
        "eu-west-1",
        "eu-west-1a",
        [(MAC, ENI, 0, PRIMARY, secondaries, cidr)],
    )


@dataclass
class Node:
    ns: NodeNetns

    def eipha(self, *args: str, user: str | None = None) -> tuple[int, str, str]:
        env = dict(os.environ)
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.ns.imds_endpoint
        config = self.ns.dir / "eipha.yaml"
        config.write_text(
            "eips: {web-a: {allocation_id: eipalloc-0123456789abcdef0, home: lb-a}}\n"
        )
        config.chmod(0o644)
        env["EIPHA_CONFIG"] = str(config)
        cmd = [sys.executable, "-m", "eipha", "secondary-ips", *args]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        result = self.ns.run(cmd, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, result.stdout, result.stderr

    def on_eth0(self) -> set[tuple[str, int]]:
        return set(self.ns.addresses("eth0"))


@pytest.fixture
def node() -> Iterator[Node]:
    with NodeNetns(MAC, PRIMARY) as ns:
        ns.start_imds(metadata(["10.0.0.12", "10.0.0.13"]))
        yield Node(ns)


BASE = {(PRIMARY, 24)}


def test_first_sync_adds_the_secondaries_as_slash_32(node: Node):
    code, out, _ = node.eipha()
    assert code == 0, out
    assert node.on_eth0() == BASE | {("10.0.0.12", 32), ("10.0.0.13", 32)}
    assert "add 10.0.0.12/32" in out
    # no prefix route for the /32s: the subnet route still has the primary as its source
    routes = node.ns.run(["ip", "-4", "route", "show", "dev", "eth0"]).stdout
    assert "10.0.0.12" not in routes
    assert "src 10.0.0.11" in routes


def test_second_sync_changes_nothing(node: Node):
    node.eipha()
    before = node.on_eth0()
    code, out, _ = node.eipha()
    assert code == 0
    assert "in sync (10.0.0.12, 10.0.0.13)" in out
    assert "add" not in out
    assert node.on_eth0() == before


def test_a_secondary_added_to_the_eni_appears_after_the_next_sync(node: Node):
    node.eipha()
    node.ns.metadata(metadata(["10.0.0.12", "10.0.0.13", "10.0.0.14"]))
    code, _out, _ = node.eipha()
    assert code == 0
    assert ("10.0.0.14", 32) in node.on_eth0()


def test_prune_removes_what_the_eni_no_longer_has_and_nothing_else(node: Node):
    node.eipha()
    node.ns.run(["ip", "addr", "add", "192.168.7.7/24", "dev", "eth0"], check=True)
    node.ns.metadata(metadata(["10.0.0.13"]))
    code, out, _ = node.eipha()
    assert code == 0
    assert ("10.0.0.12", 32) in node.on_eth0()  # kept without --prune, and said so
    assert "10.0.0.12 is not on the ENI any more; kept" in out
    code, out, _ = node.eipha("--prune")
    assert code == 0, out
    assert node.on_eth0() == BASE | {("10.0.0.13", 32), ("192.168.7.7", 24)}
    # the primary is never removed, even when the metadata no longer lists secondaries
    node.ns.metadata(metadata([]))
    code, _, _ = node.eipha("--prune")
    assert code == 0
    assert node.on_eth0() == BASE | {("192.168.7.7", 24)}


def test_no_subnet_in_the_metadata_means_nothing_is_pruned(node: Node):
    node.eipha()
    node.ns.metadata(metadata(["10.0.0.13"], cidr=None))
    code, out, _ = node.eipha("--prune")
    assert code == 0
    assert ("10.0.0.12", 32) in node.on_eth0()
    assert "nothing is pruned" in out


def test_an_imds_outage_changes_nothing(node: Node):
    node.eipha()
    before = node.on_eth0()
    node.ns.metadata(metadata([]), down=True)
    code, _, err = node.eipha("--prune")
    assert code == 1
    assert err.startswith("eipha: error: ")
    assert "500" in err
    assert node.on_eth0() == before


def test_dry_run_changes_nothing_and_needs_no_root(node: Node):
    code, out, _ = node.eipha("--dry-run", user="65534")
    assert code == 0, out
    assert "would add 10.0.0.12/32" in out
    assert node.on_eth0() == BASE
    code, _, err = node.eipha(user="65534")
    assert code == 4
    assert "needs root" in err
    assert node.on_eth0() == BASE


def test_unknown_interface_is_not_configured(node: Node):
    code, _, err = node.eipha("--interface", "eth9")
    assert code == 6
    assert "interface eth9 not found" in err
    code, _, err = node.eipha("--interface", "peer0")  # exists, but no ENI has its MAC
    assert code == 6
    assert "no ENI known" in err


def test_the_kernels_own_error_paths_are_idempotent(node: Node):
    """EEXIST on a duplicate add and EADDRNOTAVAIL on an absent delete, from the real kernel."""
    script = (
        "import json\n"
        "from eipha.netlink import open_netlink\n"
        "with open_netlink() as nl:\n"
        "    i = nl.index('eth0')\n"
        "    print(json.dumps([nl.add(i, '10.0.0.50', 32), nl.add(i, '10.0.0.50', 32),\n"
        "                      nl.remove(i, '10.0.0.50', 32), nl.remove(i, '10.0.0.50', 32),\n"
        "                      nl.index('nope')]))\n"
    )
    result = node.ns.run([sys.executable, "-c", script])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, False, True, False, None]
