"""IMDS faults, handled as docs/how-it-works.md and docs/exit-codes.md say.

``eipha start``/``stop``/``status`` (and ``show``, ``validate``) run as real subprocesses
against IMDSv2 doubles of node lb-a that fail in each way anchors D4/F name:

* transient faults (5xx, 429, a read held unanswered twice, a token that expires mid-run,
  an item with a documented fall-back answering 404) are retried or renewed, and the action
  succeeds;
* persistent faults (every answer 5xx, a required item 404 or 500, every token refused,
  answers slower than the timeout, a read held unanswered, a silent token PUT, an
  IMDSv1-only endpoint) end the action with exit 1 (``status``: 4 and ``not running``)
  within the deadline + 2 s, in one line on stderr that names IMDS, with no traceback, no
  AssociateAddress or DisassociateAddress, and both EIPs exactly where they were.

Every eipha process gets its own double (a fresh :class:`ImdsDouble`, faulted), so the cases
of one class run at the same time and each double's log is one process's. Persistent faults
only make eipha read and fail, so the request log of their whole window must hold no EC2
mutation at all. Durations are taken from a process's first IMDS request, when its deadline
is already running, to its exit: interpreter start-up on a loaded machine does not count.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eipha.sim.imds_double import MACS, SILENT, TOKEN_ITEM, TOKEN_PATH, ImdsDouble
from tests.integration.conftest import Lab, Result, metadata_for

NODE = "lb-a"
MAC = "0a:00:00:00:00:0a"  # lb-a's device-0 ENI (eipha.sim.region)
LOCAL_IPV4S = f"{MACS}{MAC}/local-ipv4s"
MUTATIONS = {"AssociateAddress", "DisassociateAddress"}
NAMES_IMDS = re.compile(r"\bIMDS|instance metadata")
LAB_TIMEOUT = 10.0  # the Lab config's `timeout`
GRACE = 2.0  # docs: an action never runs more than 2 s past its deadline

# Three actions on lb-a, each with work to do while web-a is home on lb-a and web-b home on
# lb-b: take web-b over (onto lb-a's secondary IP), take web-a out of service, ask for web-a.
START = ("start", "web-b")
STOP = ("stop", "web-a")
STATUS = ("status", "web-a")
ALL = (START, STOP, STATUS)


@dataclass
class Run:
    case: str
    args: tuple[str, ...]
    double: ImdsDouble  # its own: the log holds this process's requests only
    result: Result
    ended: float  # time.monotonic() when it had exited

    @property
    def seconds(self) -> float:
        """From its first IMDS request (its deadline already running) to its exit: the
        interpreter's start-up on a loaded machine does not count."""
        assert self.double.arrivals, (self.case, "no IMDS request at all")
        return self.ended - self.double.arrivals[0]


@dataclass
class Case:
    """One IMDS fault: ``arrange`` sets it on a fresh double per command; ``expect`` is in
    every error line; ``hit`` (optional) tells, from the double's log, that the fault did
    happen."""

    name: str
    arrange: Callable[[ImdsDouble], None]
    expect: str = ""
    commands: Sequence[tuple[str, ...]] = ALL
    timeout: float | None = None
    hit: Callable[[ImdsDouble], bool] | None = None


def both_home(lab: Lab) -> None:
    for eip in ("web-a", "web-b"):
        lab.associate(eip, lab.world.eips[eip].home)


def where(lab: Lab) -> dict[str, Any]:
    return {eip: lab.where(eip) for eip in ("web-a", "web-b")}


@contextmanager
def fresh_doubles(lab: Lab, n: int) -> Iterator[list[ImdsDouble]]:
    """``n`` IMDSv2 doubles answering as lb-a, stopped on the way out."""
    made: list[ImdsDouble] = []
    try:
        for _ in range(n):
            made.append(ImdsDouble(metadata_for(lab.world, NODE)).start())
        yield made
    finally:
        for double in made:
            double.stop()


def run_cases(lab: Lab, cases: Sequence[Case]) -> list[Run]:
    """Every command of every case at once, each against its own double, faulted."""
    config = lab.config(NODE)
    jobs = [(case, command) for case in cases for command in case.commands]
    with fresh_doubles(lab, len(jobs)) as doubles:

        def one(job: tuple[Case, tuple[str, ...]], double: ImdsDouble) -> Run:
            case, command = job
            if case.timeout is not None:
                command = (command[0], "--timeout", f"{case.timeout:g}", *command[1:])
            env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": double.endpoint}
            result = lab.run(NODE, *command, config=config, env=env)
            return Run(case.name, command, double, result, time.monotonic())

        for (case, _), double in zip(jobs, doubles, strict=True):
            case.arrange(double)
        with ThreadPoolExecutor(len(jobs)) as pool:
            return list(pool.map(one, jobs, doubles))


def met_their_faults(cases: Sequence[Case], runs: Sequence[Run]) -> None:
    """Each run's double logged its case's fault: the outcome came through it."""
    by_name = {case.name: case for case in cases}
    for run in runs:
        hit = by_name[run.case].hit
        assert hit is None or hit(run.double), (run.case, run.args, run.double.requests)


def the_error_line(err: str, label: object) -> str:
    """stderr is one line, ``eipha: error: …``, naming IMDS; never a traceback."""
    assert "Traceback" not in err, (label, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, (label, err)
    assert lines[0].startswith("eipha: error: "), (label, err)
    assert NAMES_IMDS.search(lines[0]), (label, lines[0])
    return lines[0]


def check_fails_cleanly(lab: Lab, cases: Sequence[Case]) -> list[Run]:
    """Run the cases at once; each command failed as documented and EC2 is untouched."""
    both_home(lab)
    before = where(lab)
    mark = lab.region.mark()
    runs = run_cases(lab, cases)
    by_name = {case.name: case for case in cases}
    for run in runs:
        case = by_name[run.case]
        expected = (4, "not running\n") if run.args[0] == "status" else (1, "")
        assert (run.result.code, run.result.out) == expected, run
        assert run.seconds <= (case.timeout or LAB_TIMEOUT) + GRACE, run
        assert case.expect in the_error_line(run.result.err, (run.case, run.args)), (
            run.case,
            run.result.err,
        )
    assert not MUTATIONS & set(lab.region.actions(mark))
    assert where(lab) == before
    met_their_faults(cases, runs)
    return runs


def statuses(double: ImdsDouble, method: str = "GET") -> list[int]:
    return [status for m, _, status in double.requests if m == method]


def set_attr(name: str, value: object) -> Callable[[ImdsDouble], None]:
    return lambda double: setattr(double, name, value)


def answer(item: str, status: int) -> Callable[[ImdsDouble], None]:
    return lambda double: double.path_status.__setitem__(item, status)


def missing(*items: str) -> Callable[[ImdsDouble], None]:
    return lambda double: double.not_found.update(items)


def only_refused_put(status: int) -> Callable[[ImdsDouble], bool]:
    """One PUT, refused, not retried; no GET (no IMDSv1 fall-back)."""
    return lambda double: double.requests == [("PUT", TOKEN_PATH, status)]


def refusing(status: int) -> Callable[[ImdsDouble], None]:
    def arrange(double: ImdsDouble) -> None:
        double.imdsv1_only = True
        double.refuse_status = status

    return arrange


# --------------------------------------------------------------------------- transient


def fail_next(n: int, status: int, path: str | None = None) -> Callable[[ImdsDouble], None]:
    return lambda double: double.fail_next(n, status, path=path)


# status of web-b races the start of web-b: either answer, but a known one (not 4)
RETRIED = (START, STOP, ("status", "web-b"))
TRANSIENT = [
    Case(
        "token PUT 500 twice",
        fail_next(2, 500, TOKEN_ITEM),
        commands=RETRIED,
        hit=lambda d: statuses(d, "PUT").count(500) == 2,
    ),
    Case(
        "local-ipv4s 503 twice",
        fail_next(2, 503, LOCAL_IPV4S),
        commands=(START, ("status", "web-b")),  # what reads them
        hit=lambda d: [s for _, p, s in d.requests if p.endswith(LOCAL_IPV4S)][:2] == [503, 503],
    ),
    Case(
        "throttled, 429 twice",
        fail_next(2, 429),
        commands=RETRIED,
        hit=lambda d: [s for _, _, s in d.requests].count(429) == 2,
    ),
    Case(
        "mac read held unanswered twice",
        fail_next(2, SILENT, "meta-data/mac"),
        commands=(START, ("status", "web-b")),  # a stop reads the ENI list, not the MAC
        hit=lambda d: statuses(d).count(SILENT) == 2,
    ),
    Case(
        "token expires mid-run (good for 2 reads)",
        set_attr("token_uses", 2),
        commands=RETRIED,
        hit=lambda d: statuses(d).count(401) >= 1,  # each command reads three to six items
    ),
    Case(
        "every token good for one read",
        set_attr("token_uses", 1),
        commands=RETRIED,
        hit=lambda d: statuses(d).count(401) >= 2,  # every read but the first
    ),
    Case(
        "placement/region 404 (documented: the zone instead)",
        missing("meta-data/placement/region"),
        commands=RETRIED,
        hit=lambda d: 404 in statuses(d),
    ),
]


def test_transient_imds_faults_are_retried_and_the_action_succeeds(lab: Lab):
    """Every fault at once, each command against its own faulted double: start web-b, stop
    web-a, status of web-b on lb-a. The double's log shows each met its fault; every start
    and stop exits 0 (the first to get the EIP's lock moves it, the others find it done),
    and EC2 ends as they said."""
    both_home(lab)
    runs = run_cases(lab, TRANSIENT)
    for run in runs:
        assert "Traceback" not in run.result.err, run
        if run.args[0] == "status":
            assert (run.result.code, run.result.out) in {(0, "running\n"), (3, "not running\n")}
        else:
            assert (run.result.code, run.result.out) == (0, ""), run
    lb_a = lab.world.nodes[NODE]
    web_b = lab.where("web-b")
    assert (web_b["NetworkInterfaceId"], web_b["PrivateIpAddress"]) == (lb_a.eni_id, "10.0.0.12")
    assert "AssociationId" not in lab.where("web-a")
    met_their_faults(TRANSIENT, runs)


# --------------------------------------------------------------------------- persistent

# Items the commands read (only what each needs), each with the commands tried: start and
# status read who this node is (the MAC, the primary IP, the ENI's id); a takeover (start of
# web-b onto lb-a's secondary IP) and a status of web-b read the ENI's private IPs too, the
# item whose loss did harm elsewhere (amazon-ec2-net-utils #161); a stop reads the
# instance's ENIs (macs/, then each one's id).
REQUIRED: list[tuple[str, Sequence[tuple[str, ...]]]] = [
    ("meta-data/mac", [START]),
    ("meta-data/local-ipv4", [STATUS]),
    (f"{MACS}{MAC}/interface-id", [START, STOP]),
    (LOCAL_IPV4S, [START, ("status", "web-b")]),
]

PERSISTENT = [
    Case("down: every answer 500", set_attr("down", True), "HTTP 500"),
    Case(
        "interface-id always 500",
        answer(f"{MACS}{MAC}/interface-id", 500),
        f"{MACS}{MAC}/interface-id could not be read (HTTP 500",
        commands=[START],
    ),
    Case(
        "token PUT always 503",
        answer(TOKEN_ITEM, 503),
        "IMDSv2 token request failed (HTTP 503",
        commands=[STOP],
    ),
    Case(
        "every token refused (401)",
        set_attr("token_uses", 0),
        "(HTTP 401 from ",
        # renewed once per read, then given up: never a read without a token
        hit=lambda d: statuses(d) == [401, 401] and statuses(d, "PUT") == [200, 200],
        commands=[STATUS],
    ),
    # A 404 is never "nothing there": with no local-ipv4s, a start of web-b could otherwise
    # decide lb-a has no secondary IP (exit 6) or pick another; it must fail as IMDS (1).
    *(
        Case(
            f"{item} 404",
            missing(item),
            f"instance metadata {item} not found (HTTP 404)",
            commands=commands,
        )
        for item, commands in REQUIRED
    ),
    Case(
        "placement/region and availability-zone 404",
        missing("meta-data/placement/region", "meta-data/placement/availability-zone"),
        "placement/availability-zone not found (HTTP 404)",
        commands=[STATUS],
    ),
    # stop looks at every ENI of this node (macs/): a 404 there is not "no other ENIs"
    Case(f"{MACS} 404 (stop)", missing(MACS), f"{MACS} not found (HTTP 404)", commands=[STOP]),
    # An endpoint with no token API (404: no such item; 405/501: no PUT; 403: IMDS off) is
    # refused at once (one PUT, not retried); never an IMDSv1 read.
    *(
        Case(
            f"IMDSv1 only, PUT answers {status}",
            refusing(status),
            f"IMDSv2 token request refused (HTTP {status} from ",
            hit=only_refused_put(status),
            commands=commands,
        )
        for status, commands in ((404, ALL), (403, [START]), (405, [STOP]), (501, [STATUS]))
    ),
]


TIMEOUTS = [
    Case(
        "every answer slower than the 1 s IMDS timeout",
        set_attr("delay", 1.5),
        "deadline of 2 s passed",
        timeout=2.0,
        hit=lambda d: len(statuses(d, "PUT")) >= 2,  # it timed out and tried again
    ),
    Case(
        "local-ipv4 held unanswered",
        answer("meta-data/local-ipv4", SILENT),
        "deadline of 2 s passed",
        timeout=2.0,
        commands=[START, STATUS],  # what reads the primary IP
        hit=lambda d: statuses(d)[-1:] == [SILENT],
    ),
    # The PUT is read and its connection held, as when the hop limit drops the reply: three
    # tries of 1 s, then "IMDS did not answer", naming the endpoint and the hop-limit fix.
    Case(
        "token PUT silent (hop limit)",
        set_attr("silent_put", True),
        "IMDS did not answer at http://127.0.0.1:",
        hit=lambda d: statuses(d, "GET") == [] and statuses(d, "PUT") == [SILENT] * 3,
    ),
]


def test_persistent_imds_faults_fail_within_the_deadline_and_change_nothing(lab: Lab):
    runs = check_fails_cleanly(lab, [*PERSISTENT, *TIMEOUTS])
    refused = [r for r in runs if r.case.startswith("IMDSv1 only")]
    assert len(refused) == 6
    for run in refused:
        assert "serves only IMDSv1" in the_error_line(run.result.err, run.case)
    silent = [r for r in runs if r.case.startswith("token PUT silent")]
    assert len(silent) == 3
    for run in silent:
        assert "hop limit" in the_error_line(run.result.err, run.case)
        assert run.seconds < LAB_TIMEOUT


# --------------------------------------------------------------------------- show, validate


def validate(lab: Lab, double: ImdsDouble) -> tuple[int, dict[str, dict[str, Any]]]:
    mark = lab.region.mark()
    result = lab.run(
        NODE, "validate", "--json", env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": double.endpoint}
    )
    assert "Traceback" not in result.err
    assert not MUTATIONS & {
        r.action for r in lab.region.calls(since=mark) if not r.params.get("DryRun")
    }
    return result.code, {c["check"]: c for c in json.loads(result.out)}


def test_show_and_validate_under_imds_faults(lab: Lab):
    both_home(lab)
    double = lab.imds[NODE]
    double.down = True
    # show reads the EC2 API only: with the region known it never asks IMDS
    shown = lab.run(NODE, "--region", lab.world.region, "show", "--json")
    assert shown.code == 0, shown.err
    states = {e["eip"]: e["state"] for e in json.loads(shown.out)["eips"]}
    assert states == {"web-a": "home", "web-b": "home"}
    assert double.requests == []
    # with no region anywhere it asks IMDS: a failure is one line, exit 1
    unknown = lab.run(NODE, "show")
    assert (unknown.code, unknown.out) == (1, "")
    assert "HTTP 500" in the_error_line(unknown.err, "show")
    assert not MUTATIONS & set(unknown.calls)

    # validate: the failing check names the fault, exit 1; an expiring token is renewed
    failing = {
        "down": (set_attr("down", True), "IMDSv2", "HTTP 500"),
        "IMDSv1 only": (refusing(404), "IMDSv2", "IMDSv1"),
        "mac 404": (missing("meta-data/mac"), "network interface", "meta-data/mac not found"),
    }
    with fresh_doubles(lab, len(failing) + 1) as doubles:
        for (arrange, check, detail), fresh in zip(failing.values(), doubles[:-1], strict=True):
            arrange(fresh)
            code, checks = validate(lab, fresh)
            assert code == 1, checks
            assert [n for n, c in checks.items() if c["status"] == "fail"] == [check], checks
            assert detail in checks[check]["detail"]
        renewing = doubles[-1]
        renewing.token_uses = 2
        code, checks = validate(lab, renewing)
        assert code == 0, checks
        assert statuses(renewing).count(401) >= 2
