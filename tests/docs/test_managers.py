"""The cluster managers' files the docs show, checked against the managers themselves.

- keepalived.conf: ``keepalived -t`` (Debian's keepalived 2.2.7) in a network namespace and
  mount namespace this test creates: the interface the file names exists there and carries
  the file's ``unicast_src_ip``, and /etc/keepalived is a directory holding the file and the
  shim as ``eipha install-agents`` writes it (so ``enable_script_security`` checks the real
  thing). keepalived 2.2 exits 5 on any warning, and an eipha instance has no
  ``virtual_ipaddress``, so the one warning allowed is "No VIP specified". The page's FIFO
  variant (its ``global_defs`` in place of the whole file's, the notify lines out, as the page
  says) is tested the same way. Without the interface the same file must fail: the check is
  not vacuous.
- ha.cf and haresources: the namespace lab (tests/system) runs the real Heartbeat with the
  files ``tests.system.managers.install_heartbeat`` writes; the docs' must be those, but for
  where logs go and the lab's shorter timings, which must keep Heartbeat's own rules.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.ansible.staging import NO_VIP
from tests.docs import markdown as md
from tests.docs.pages import whole_config

EIPHA = str(Path(sys.executable).parent / "eipha")


def keepalived_test(conf: str, stage: Path, interface: str | None, address: str) -> list[str]:
    """keepalived -t on ``conf`` in fresh network and mount namespaces; its messages, or
    ["exit N"] first when it exited other than 0 or 5."""
    result = subprocess.run(
        [EIPHA, "install-agents", "--root", str(stage), "--bin", EIPHA, "keepalived"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    directory = stage / "etc" / "keepalived"
    (directory / "keepalived.conf").write_text(conf)
    steps = ["ip link set lo up"]
    if interface is not None:
        steps += [
            f"ip link add {interface} type veth peer name docs-peer0",
            f"ip address add {address}/24 dev {interface}",
            f"ip link set {interface} up",
        ]
    steps += [
        f"mount --bind {directory} /etc/keepalived",
        "exec keepalived -t -f /etc/keepalived/keepalived.conf",
    ]
    run = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-ec", "; ".join(steps)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    messages = [m for m in (run.stdout + run.stderr).splitlines() if m.strip()]
    return ([] if run.returncode in (0, 5) else [f"exit {run.returncode}"]) + messages


def interface_and_address(conf: str) -> tuple[str, str]:
    interfaces = set(re.findall(r"^\s+interface (\S+)", conf, re.M))
    addresses = set(re.findall(r"^\s+unicast_src_ip (\S+)", conf, re.M))
    assert len(interfaces) == 1, interfaces
    assert len(addresses) == 1, addresses
    return interfaces.pop(), addresses.pop()


def fifo_variant(conf: str, part: str) -> str:
    """The page's FIFO form: its global_defs instead of the file's, no notify lines."""
    defs = re.search(r"^global_defs \{.*?^\}\n", part, re.M | re.S)
    assert defs is not None
    conf = re.sub(r"^global_defs \{.*?^\}\n", lambda _: defs.group(0), conf, flags=re.M | re.S)
    return re.sub(r"^\s+notify(_master_rx_lower_pri)? .*\n", "", conf, flags=re.M)


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize("block", md.of_kind(md.KEEPALIVED_CONF), ids=repr)
def test_keepalived_conf_passes_keepalived_t(block: md.Block, tmp_path: Path):
    interface, address = interface_and_address(block.text)
    assert interface != "eth0", "Nitro instances name it ens5; the page says how to find it"
    messages = keepalived_test(block.text, tmp_path / "stage", interface, address)
    assert [m for m in messages if not NO_VIP.match(m)] == []
    warned = {m.split(")")[0].lstrip("(") for m in messages}
    assert warned == set(re.findall(r"^vrrp_instance (\S+)", block.text, re.M)), messages
    missing = keepalived_test(block.text, tmp_path / "missing", None, address)
    assert [m for m in missing if "doesn't exist" in m], missing


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize("part", md.of_kind(md.KEEPALIVED_PART), ids=repr)
def test_the_fifo_variant_passes_keepalived_t(part: md.Block, tmp_path: Path):
    (whole,) = md.of_kind(md.KEEPALIVED_CONF, part.page)
    conf = fifo_variant(whole.text, part.text)
    assert "vrrp_notify_fifo_script" in conf
    assert "\n    notify " not in conf
    interface, address = interface_and_address(conf)
    messages = keepalived_test(conf, tmp_path / "stage", interface, address)
    assert [m for m in messages if not NO_VIP.match(m)] == []


# --------------------------------------------------------------------------- Heartbeat


def lab_files(tmp_path: Path) -> dict[str, str]:
    """lb-a's ha.cf and haresources, as the namespace lab writes them for Heartbeat."""
    from tests.system.managers import install_heartbeat

    node = SimpleNamespace(dir=tmp_path / "lb-a", peer="10.0.0.21")
    node.dir.mkdir()
    lab = SimpleNamespace(nodes={"lb-a": node}, shim=lambda *_: None)
    install_heartbeat(lab)  # type: ignore[arg-type]
    return {name: (node.dir / "ha.d" / name).read_text() for name in ("ha.cf", "haresources")}


def directives(text: str) -> list[tuple[str, str]]:
    """(directive, value) in file order, comments dropped (Heartbeat cuts at any #)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            out.append((key, " ".join(value.split())))
    return out


def ms(value: str) -> float:
    return float(value[:-2]) if value.endswith("ms") else float(value) * 1000


LOGGING = {"logfile", "debugfile", "logfacility"}  # where logs go: the lab's own
TIMINGS = {"keepalive", "deadtime", "warntime", "initdead"}  # the lab's are shorter


def test_hacf_is_the_labs_but_for_logging_and_timings(tmp_path: Path):
    if not Path("/etc/ha.d").is_dir():
        pytest.fail("Heartbeat is not installed (scripts/test.sh installs it)")
    (block,) = md.of_kind(md.HA_CF)
    doc = directives(block.text)
    lab = directives(lab_files(tmp_path)["ha.cf"])
    config = whole_config(md.REPO / "README.md")
    assert config is not None
    keys = {k for k, _ in doc}
    assert keys - LOGGING == {k for k, _ in lab} - LOGGING
    same = {k for k, _ in lab} - LOGGING - TIMINGS - {"ucast"}
    assert [kv for kv in doc if kv[0] in same] == [kv for kv in lab if kv[0] in same]
    # Heartbeat's rules for the timings (ha.cf(5)), in milliseconds
    t = {k: ms(v) for k, v in doc if k in TIMINGS}
    assert t["deadtime"] > 2 * t["keepalive"]
    assert t["keepalive"] <= t["warntime"] < t["deadtime"]
    assert t["initdead"] >= max(t["deadtime"], 10_000)
    # unicast to every node's primary IP, over one interface, after udpport
    ucast = [v.split() for k, v in doc if k == "ucast"]
    assert {ip for _, ip in ucast} == {n["address"] for n in config["nodes"].values()}
    assert len({interface for interface, _ in ucast}) == 1
    assert [k for k, _ in doc].index("udpport") < [k for k, _ in doc].index("ucast")
    assert [v for k, v in doc if k == "node"] == list(config["nodes"])


def test_haresources_is_the_labs(tmp_path: Path):
    if not Path("/etc/ha.d").is_dir():
        pytest.fail("Heartbeat is not installed (scripts/test.sh installs it)")
    lab = lab_files(tmp_path)["haresources"]
    blocks = md.of_kind(md.HARESOURCES)
    assert len(blocks) >= 2
    for block in blocks:
        body = [line for line in block.lines if not line.startswith("#")]
        assert body == lab.splitlines(), block.where
    config = whole_config(md.REPO / "README.md")
    assert config is not None
    homes = {f"{e['home']} eipha::{name}" for name, e in config["eips"].items()}
    assert set(lab.splitlines()) == homes


def test_the_heartbeat_page_says_how_to_find_the_interface():
    (block,) = md.of_kind(md.HA_CF)
    text = block.page.read_text()
    assert "ip -br -4 addr" in text
