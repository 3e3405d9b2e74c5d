"""The secondary-IP plan, table-tested, and the 'who else manages this interface' check."""

from __future__ import annotations

from pathlib import Path

import pytest

from eipha.model import Interface
from eipha.netlink import OsAddress
from eipha.secondary_ips import can_change_addresses, managed_by, plan

ENI = Interface(
    "eni-0aaaaaaaaaaaaaaaa",
    "0a:00:00:00:00:0a",
    "10.0.0.11",
    ("10.0.0.12", "10.0.0.13"),
    subnet_cidr="10.0.0.0/24",
)
NO_SUBNET = Interface(ENI.eni_id, ENI.mac, ENI.primary_ip, ENI.secondary_ips)


def addrs(*items: str) -> list[OsAddress]:
    out = []
    for item in items:
        ip, _, prefix = item.partition("/")
        out.append(OsAddress(ip, int(prefix or 32)))
    return out


PRIMARY = "10.0.0.11/24"


@pytest.mark.parametrize(
    ("iface", "present", "prune", "add", "remove", "keep", "extra"),
    [
        # a fresh interface: add both secondaries
        (ENI, addrs(PRIMARY), False, ("10.0.0.12", "10.0.0.13"), (), (), ()),
        # in sync: nothing to do
        (
            ENI,
            addrs(PRIMARY, "10.0.0.12", "10.0.0.13"),
            False,
            (),
            (),
            ("10.0.0.12", "10.0.0.13"),
            (),
        ),
        # present with another prefix still counts as present
        (ENI, addrs(PRIMARY, "10.0.0.12/24"), False, ("10.0.0.13",), (), ("10.0.0.12",), ()),
        # stale address in the subnet: reported and kept without --prune ...
        (
            ENI,
            addrs(PRIMARY, "10.0.0.12", "10.0.0.13", "10.0.0.99"),
            False,
            (),
            (),
            ("10.0.0.12", "10.0.0.13"),
            ("10.0.0.99",),
        ),
        # ... removed with it, with its own prefix length
        (
            ENI,
            addrs(PRIMARY, "10.0.0.12", "10.0.0.13", "10.0.0.99/28"),
            True,
            (),
            ("10.0.0.99/28",),
            ("10.0.0.12", "10.0.0.13"),
            (),
        ),
        # outside the subnet: never touched, never reported
        (
            ENI,
            addrs(PRIMARY, "10.0.0.12", "10.0.0.13", "192.168.1.5/24"),
            True,
            (),
            (),
            ("10.0.0.12", "10.0.0.13"),
            (),
        ),
        # the primary is never removed, even if it looks stale
        (
            Interface(ENI.eni_id, ENI.mac, "10.0.0.11", (), subnet_cidr="10.0.0.0/24"),
            addrs(PRIMARY),
            True,
            (),
            (),
            (),
            (),
        ),
        # no subnet known: nothing can be judged stale
        (NO_SUBNET, addrs(PRIMARY, "10.0.0.99"), True, ("10.0.0.12", "10.0.0.13"), (), (), ()),
    ],
)
def test_plan(iface, present, prune, add, remove, keep, extra):
    p = plan("eth0", iface, present, prune)
    assert p.add == add
    assert tuple(f"{a.ip}/{a.prefixlen}" for a in p.remove) == remove
    assert p.keep == keep
    assert p.extra == extra
    assert p.changes == bool(add or remove)


def test_prune_without_a_subnet_says_so():
    p = plan("eth0", NO_SUBNET, addrs(PRIMARY), prune=True)
    assert any("nothing is pruned" in note for note in p.notes)


def test_secondaries_are_added_in_numeric_order():
    iface = Interface(
        ENI.eni_id, ENI.mac, "10.0.0.11", ("10.0.0.100", "10.0.0.9"), subnet_cidr="10.0.0.0/24"
    )
    assert plan("eth0", iface, [], False).add == ("10.0.0.9", "10.0.0.100")


def test_amazon_ec2_net_utils_is_detected(tmp_path: Path):
    (tmp_path / "run/systemd/network/70-eth0.network.d").mkdir(parents=True)
    assert "amazon-ec2-net-utils" in (managed_by("eth0", 2, tmp_path) or "")
    assert managed_by("eth1", 3, tmp_path) is None


@pytest.mark.parametrize(
    ("state", "managed"),
    [
        ("ADMIN_STATE=configured\nOPER_STATE=routable\n", True),
        ("ADMIN_STATE=configuring\n", True),
        ("ADMIN_STATE=unmanaged\n", False),
        ("", False),
    ],
)
def test_systemd_networkd_is_detected_in_the_host_namespace(tmp_path: Path, state, managed):
    links = tmp_path / "run/systemd/netif/links"
    links.mkdir(parents=True)
    (links / "2").write_text(state)
    found = managed_by("eth0", 2, tmp_path, host_netns=lambda: True)
    assert (found is not None) == managed
    # in another network namespace, networkd's state files describe other interfaces
    assert managed_by("eth0", 2, tmp_path, host_netns=lambda: False) is None


@pytest.mark.parametrize(
    ("capeff", "allowed"),
    [
        ("000001ffffffffff", True),
        ("0000000000001000", True),
        ("0000000000000000", False),
        ("0000000000000400", False),
    ],
)
def test_cap_net_admin_decides(tmp_path: Path, capeff, allowed):
    status = tmp_path / "status"
    status.write_text(f"Name:\tx\nCapInh:\t0\nCapEff:\t{capeff}\n")
    assert can_change_addresses(status) is allowed
