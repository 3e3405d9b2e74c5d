"""More of the command line against the simulated region: what a user relies on beyond one
start/stop/status at a time.

* the per-EIP lock, proven by the request log (concurrent eipha on one node never interleave
  their calls for one EIP);
* two nodes racing ``start`` of one EIP (separate lock directories, as on separate hosts);
* credentials never reach stdout or stderr, even with ``-vv`` and on failure;
* ``eipha show`` and ``show --json``, with and without a config;
* where the region comes from (``--region``, config, ``AWS_REGION``, IMDS placement/region);
* the deadline: an action overruns its ``--timeout`` by at most 2 s and never leaves an EIP
  unassociated that was associated before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby, pairwise
from pathlib import Path

import pytest

from eipha.sim.region import ApiRequest
from tests.integration.conftest import Lab, Result, metadata_for

DESCRIBE, ASSOCIATE, DISASSOCIATE = "DescribeAddresses", "AssociateAddress", "DisassociateAddress"
DESCRIBE_ENIS = "DescribeNetworkInterfaces"
ADDRESS_ACTIONS = {DESCRIBE, ASSOCIATE, DISASSOCIATE}
CLOSED_IMDS = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"}

Launch = tuple[str, Path, str, dict[str, str], tuple[str, ...]]
"""One eipha process: node, config, its own access key (to tell it apart in the request
log), extra environment, arguments."""


# --------------------------------------------------------------------------- helpers


@dataclass
class Finished:
    key: str
    args: tuple[str, ...]
    code: int
    out: str
    err: str


@contextmanager
def processes(lab: Lab, launches: Sequence[Launch]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start one ``python -m eipha`` per launch (node, config, access key, extra env, args)
    all at once; kill whatever is still running on the way out, also on failure."""
    started: list[subprocess.Popen[str]] = []
    try:
        for node, config, key, extra, args in launches:
            env = lab.env(node, config)
            env["AWS_ACCESS_KEY_ID"] = key
            env.update(extra)
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "eipha", *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def finish(
    procs: Sequence[subprocess.Popen[str]],
    launches: Sequence[Launch],
    timeout: float = 60,
) -> list[Finished]:
    done = []
    for proc, (_, _, key, _, args) in zip(procs, launches, strict=True):
        out, err = proc.communicate(timeout=timeout)
        done.append(Finished(key, args, proc.returncode, out, err))
    return done


def on(lab: Lab, eip: str) -> tuple[str | None, str | None]:
    address = lab.where(eip)
    return address.get("NetworkInterfaceId"), address.get("PrivateIpAddress")


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("eipha: error: ")]


def one_error_line(err: str) -> str:
    lines = error_lines(err)
    assert len(lines) == 1, err
    return lines[0]


def settled(lab: Lab, since: int, at_least: int, wait: float = 5.0) -> list[ApiRequest]:
    """The log from ``since`` once it holds ``at_least`` requests (in-flight ones are logged
    when their answer, latency included, has been handed back)."""
    end = time.monotonic() + wait
    while len(lab.region.calls(since=since)) < at_least and time.monotonic() < end:
        time.sleep(0.05)
    return lab.region.calls(since=since)


# --------------------------------------------------------------------------- 1. per-EIP lock


def test_concurrent_start_and_stop_on_one_node_never_interleave(lab: Lab, run_dir: Path):
    config = lab.config("lb-a", timeout=30)  # 12 processes queue on one lock on 2 CPUs
    starts = [f"proc{i:02d}" for i in range(1, 7)]
    stops = [f"proc{i:02d}" for i in range(7, 13)]
    # run_dir: one private lock directory, shared by all twelve (lab.env copies os.environ)
    launches: list[Launch] = [("lb-a", config, key, {}, ("start", "web-b")) for key in starts]
    launches += [("lb-a", config, key, {}, ("stop", "web-b")) for key in stops]
    mark = lab.region.mark()
    with processes(lab, launches) as procs:
        done = finish(procs, launches)
    for proc in done:
        assert proc.code == 0, (proc.key, proc.args, proc.err)
        assert "Traceback" not in proc.err

    # every process's address calls form one contiguous block, in the order EC2 saw them
    calls = sorted(
        (r for r in lab.region.calls(since=mark) if r.action in ADDRESS_ACTIONS),
        key=lambda r: r.started,
    )
    blocks = [list(group) for _, group in groupby(calls, key=lambda r: r.client)]
    order = [block[0].client for block in blocks]
    assert sorted(order) == sorted(starts + stops), f"interleaved or missing: {order}"
    for before, after in pairwise(blocks):
        assert before[-1].ended <= after[0].started, (before[-1], after[0])

    # and each block is exactly what a serial run would do, given the blocks before it
    here = False  # web-b starts unassociated
    for block in blocks:
        actions = [r.action for r in block]
        if block[0].client in starts:
            assert actions == ([DESCRIBE] if here else [DESCRIBE, ASSOCIATE, DESCRIBE])
            here = True
        else:
            assert actions == ([DESCRIBE, DISASSOCIATE] if here else [DESCRIBE])
            here = False

    # EC2 ends as the last process left it: a start puts web-b on lb-a's secondary, a stop
    # (whether it disassociated or found it gone) leaves it unassociated
    last_was_start = blocks[-1][0].client in starts
    expected = (lab.world.nodes["lb-a"].eni_id, "10.0.0.12") if last_was_start else (None, None)
    assert on(lab, "web-b") == expected


# --------------------------------------------------------------------------- 2. two nodes race


def test_two_nodes_racing_start_of_one_eip(lab: Lab, tmp_path: Path):
    """Each node has its own lock directory (they are different hosts). Whatever the
    interleaving, the EIP ends on exactly one of the two bindings, on a node that exited 0,
    and a node that lost says where the EIP is instead of fighting back."""
    bindings = {
        "lb-a": (lab.world.nodes["lb-a"].eni_id, "10.0.0.11"),  # web-a's home: primary
        "lb-b": (lab.world.nodes["lb-b"].eni_id, "10.0.0.22"),  # elsewhere: secondary
    }
    configs = {node: lab.config(node) for node in bindings}
    own_locks = {node: {"EIPHA_RUN_DIR": str(tmp_path / f"run-{node}")} for node in bindings}
    lost = 0
    try:
        for round_ in range(4):
            lab.region.latency = 0.0
            association = lab.where("web-a").get("AssociationId")
            if association:
                lab.client.disassociate_address(AssociationId=association)
            # latency widens the window between AssociateAddress and its read-back (a lost
            # race, almost always); without it, either node may finish before the other
            lab.region.latency = 0.25 if round_ % 2 == 0 else 0.0
            launches: list[Launch] = [
                (node, configs[node], f"{node}-r{round_}", own_locks[node], ("start", "web-a"))
                for node in bindings
            ]
            with processes(lab, launches) as procs:
                done = dict(zip(bindings, finish(procs, launches), strict=True))
            codes = sorted(p.code for p in done.values())
            assert codes in ([0, 0], [0, 1]), {n: (p.code, p.err) for n, p in done.items()}
            for proc in done.values():
                assert "Traceback" not in proc.err
            lab.region.latency = 0.0
            final = on(lab, "web-a")
            assert final in bindings.values()
            winners = [node for node, proc in done.items() if proc.code == 0]
            assert final in [bindings[node] for node in winners]
            if codes == [0, 1]:
                lost += 1
                [winner] = winners
                [loser] = [p for n, p in done.items() if n != winner]
                line = one_error_line(loser.err)
                assert "another node associated it" in line
                eni, ip = bindings[winner]
                assert f"{eni}" in line
                assert f" {ip}" in line
                assert final == bindings[winner]
    finally:
        lab.region.latency = 0.0
    print(f"race lost by one node in {lost} of 4 rounds")


# --------------------------------------------------------------------------- 3. credentials


SECRET = "S3CR3T-do-not-log-7f3a91"
TOKEN = "T0KEN-do-not-log-c41d2e"
ACCESS_KEY = "AKIDNOTLOG55AA77"


def test_credentials_never_appear_in_output(lab: Lab):
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    lab.associate("web-b", "lb-b")
    results: list[tuple[str, Result]] = []
    for args in (
        ("-vv", "start", "web-a"),
        ("-vv", "status", "web-a", "web-b"),
        ("-vv", "show", "--json"),
        ("-vv", "stop", "web-a"),
    ):
        result = lab.run("lb-a", *args, env=env)
        assert result.code in (0, 3), result.err
        results.append((" ".join(args), result))
    lab.region.inject(ASSOCIATE, "UnauthorizedOperation")
    failed = lab.run("lb-a", "-vv", "start", "web-b", env=env)
    assert failed.code == 4
    assert "UnauthorizedOperation" in one_error_line(failed.err)
    results.append(("failing start", failed))

    # the credentials were really in use (the region saw the key), and never shown
    assert {r.client for r in lab.region.requests if r.action in ADDRESS_ACTIONS} >= {ACCESS_KEY}
    for what, result in results:
        if "show" not in what:  # show prints data only; the others really said something
            assert "eipha: " in result.err, what
        for value in (SECRET, TOKEN, ACCESS_KEY):
            assert value not in result.out, (what, value)
            assert value not in result.err, (what, value)


# --------------------------------------------------------------------------- 4. show


def test_show_json_says_where_each_eip_is_and_where_it_belongs(lab: Lab):
    third = lab.client.allocate_address(Domain="vpc")
    config = lab.config(
        "lb-a",
        eips={
            "web-a": {"allocation_id": lab.alloc("web-a"), "home": "lb-a"},
            "web-b": {"allocation_id": lab.alloc("web-b"), "home": "lb-b"},
            "web-c": {
                "allocation_id": third["AllocationId"],
                "home": "lb-b",
                "private_ips": {"lb-b": "10.0.0.22"},
            },
        },
    )
    lab.associate("web-a", "lb-a")
    lab.associate("web-b", "lb-a", "10.0.0.12")
    eni_a, eni_b = lab.world.nodes["lb-a"].eni_id, lab.world.nodes["lb-b"].eni_id

    result = lab.run("lb-a", "show", "--json", config=config)
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE, DESCRIBE_ENIS]
    doc = json.loads(result.out)
    assert doc["region"] == "eu-west-1"
    rows = {row["eip"]: row for row in doc["eips"]}
    assert list(rows) == ["web-a", "web-b", "web-c"]

    web_a = rows["web-a"]
    assert web_a["state"] == "home"
    assert web_a["allocation_id"] == lab.alloc("web-a")
    assert web_a["public_ip"] == lab.world.eips["web-a"].public_ip
    assert web_a["now"]["node"] == "lb-a"
    assert web_a["now"]["private_ip"] == "10.0.0.11"
    assert web_a["belongs"]["node"] == "lb-a"
    assert web_a["belongs"]["private_ip"] == "10.0.0.11"

    web_b = rows["web-b"]
    assert web_b["state"] == "away"
    assert web_b["now"]["node"] == "lb-a"
    assert web_b["now"]["eni"] == eni_a
    assert web_b["now"]["private_ip"] == "10.0.0.12"
    assert web_b["now"]["association_id"] == lab.where("web-b")["AssociationId"]
    assert web_b["belongs"]["node"] == "lb-b"
    assert web_b["belongs"]["private_ip"] == "10.0.0.21"
    assert web_b["belongs"]["eni"] == eni_b

    web_c = rows["web-c"]
    assert web_c["state"] == "unassociated"
    assert web_c["now"]["node"] is None
    assert web_c["now"]["private_ip"] is None
    assert web_c["belongs"]["private_ip"] == "10.0.0.22"  # private_ips beats the rule

    table = lab.run("lb-a", "show", config=config)
    assert table.code == 0, table.err
    assert table.calls == [DESCRIBE, DESCRIBE_ENIS]
    header, *lines = table.out.splitlines()
    assert header.split()[0] == "EIP"
    assert header.split()[-1] == "STATE"
    assert len(lines) == 3
    cells = {line.split()[0]: line.split() for line in lines}
    assert cells["web-a"][-1] == "home"
    assert cells["web-b"][1:5] == [lab.world.eips["web-b"].public_ip, "lb-a", eni_a, "10.0.0.12"]
    assert cells["web-b"][-3:] == ["lb-b", "10.0.0.21", "away"]
    assert cells["web-c"][-1] == "unassociated"


@pytest.mark.parametrize("region_from", ["AWS_REGION", "IMDS"])
def test_show_without_config_lists_every_eip_in_the_region(lab: Lab, region_from: str):
    third = lab.client.allocate_address(Domain="vpc")["AllocationId"]
    lab.associate("web-b", "lb-a", "10.0.0.12")
    env = {"AWS_REGION": "eu-west-1", **CLOSED_IMDS} if region_from == "AWS_REGION" else {}
    result = lab.run("lb-a", "show", "--json", config=None, env=env)
    assert result.code == 0, result.err
    assert result.calls == [DESCRIBE]
    doc = json.loads(result.out)
    assert doc["region"] == "eu-west-1"
    rows = {row["allocation_id"]: row for row in doc["eips"]}
    assert set(rows) == {lab.alloc("web-a"), lab.alloc("web-b"), third}
    assert rows[lab.alloc("web-b")]["state"] == "associated"
    assert rows[lab.alloc("web-b")]["now"]["private_ip"] == "10.0.0.12"
    assert rows[lab.alloc("web-a")]["state"] == "unassociated"
    assert rows[third]["state"] == "unassociated"


# --------------------------------------------------------------------------- 5. region


def imds_region(lab: Lab, node: str, region: str) -> None:
    data = metadata_for(lab.world, node)
    data["meta-data/placement/region"] = region
    lab.imds[node].update(data)


def test_region_comes_from_imds_placement_when_nowhere_else(lab: Lab):
    lab.associate("web-a", "lb-a")
    here = lab.run("lb-a", "status", "web-a")
    assert (here.code, here.out) == (0, "running\n")
    shown = lab.run("lb-a", "show", "--json")
    assert json.loads(shown.out)["region"] == "eu-west-1"

    # the same node told by IMDS that it is in us-east-1 now asks us-east-1, which does not
    # know the allocation: not configured (6), and status still prints "not running"
    imds_region(lab, "lb-a", "us-east-1")
    elsewhere = lab.run("lb-a", "status", "web-a")
    assert (elsewhere.code, elsewhere.out) == (6, "not running\n")
    assert "InvalidAllocationID.NotFound" in one_error_line(elsewhere.err)
    assert elsewhere.calls == [DESCRIBE]
    assert json.loads(lab.run("lb-a", "show", "--json", config=None).out) == {
        "region": "us-east-1",
        "eips": [],
    }


def test_region_option_beats_config_beats_environment_beats_imds(lab: Lab):
    lab.associate("web-a", "lb-a")
    imds_region(lab, "lb-a", "us-west-2")

    # --region on the command line: an empty region that does not know web-a
    option = lab.run("lb-a", "--region", "us-east-1", "status", "web-a")
    assert (option.code, option.out) == (6, "not running\n")
    assert "InvalidAllocationID.NotFound" in one_error_line(option.err)
    assert option.calls == [DESCRIBE]

    # AWS_REGION beats IMDS (us-west-2 would not know web-a either)
    env = lab.run("lb-a", "status", "web-a", env={"AWS_REGION": "eu-west-1"})
    assert (env.code, env.out) == (0, "running\n"), env.err

    # the config's region beats AWS_REGION, and --region beats the config
    config = lab.config("lb-a", region="us-east-1")
    by_config = lab.run("lb-a", "status", "web-a", config=config, env={"AWS_REGION": "eu-west-1"})
    assert by_config.code == 6
    by_option = lab.run("lb-a", "--region", "eu-west-1", "status", "web-a", config=config)
    assert (by_option.code, by_option.out) == (0, "running\n"), by_option.err


# --------------------------------------------------------------------------- 6. deadline


@pytest.mark.parametrize("latency", [2.0, 0.6])
def test_deadline_is_kept_and_the_eip_is_never_lost(lab: Lab, latency: float):
    """web-a is on lb-b; lb-a starts it with --timeout 1 while EC2 answers slowly. eipha ends
    within the deadline + 2 s, with one error line or success, and the EIP is on lb-b or on
    lb-a's binding afterwards, never unassociated (no disassociate-first)."""
    lab.associate("web-a", "lb-b", "10.0.0.22")
    mark = lab.region.mark()
    lab.region.latency = latency
    try:
        began = time.monotonic()
        result = lab.run("lb-a", "start", "--timeout", "1", "web-a")
        wall = time.monotonic() - began
    finally:
        lab.region.latency = 0.0
    # a request still in flight is logged once its (slow) answer is handed back
    calls = [r.action for r in settled(lab, mark, at_least=1)]
    assert wall < 1 + 2 + 1.5, wall
    assert "Traceback" not in result.err
    final = on(lab, "web-a")
    assert final in [
        (lab.world.nodes["lb-b"].eni_id, "10.0.0.22"),
        (lab.world.nodes["lb-a"].eni_id, "10.0.0.11"),
    ]
    if result.code == 0:
        assert final == (lab.world.nodes["lb-a"].eni_id, "10.0.0.11")
        assert error_lines(result.err) == []
    else:
        assert result.code == 1
        one_error_line(result.err)
    if latency == 2.0:
        # not even DescribeAddresses can answer within the deadline + grace: nothing moved
        assert result.code == 1
        assert "deadline" in one_error_line(result.err)
        assert calls == [DESCRIBE]
        assert final == (lab.world.nodes["lb-b"].eni_id, "10.0.0.22")
