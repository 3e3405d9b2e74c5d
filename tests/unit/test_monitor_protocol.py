"""Heartbeat datagrams (docs/monitor.md): what is accepted, every reason for refusing the rest,
a fuzz run that nothing escapes, and the key file's checks."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eipha.errors import EiphaError, NotConfigured, PermissionDenied
from eipha.monitor.protocol import (
    FIELDS,
    MAGIC,
    MAX_DATAGRAM,
    REASONS,
    Heartbeat,
    Receiver,
    Rejection,
    Sender,
    encode,
    load_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_700_000_000.0
SKEW = 30.0


def receiver(**kwargs: object) -> Receiver:
    options: dict[str, object] = {"peers": {"lb-b"}, "max_skew": SKEW, "clock": lambda: NOW}
    options.update(kwargs)
    return Receiver(KEY, **options)  # type: ignore[arg-type]


def heartbeat(**changes: object) -> Heartbeat:
    fields: dict[str, object] = {
        "node": "lb-b",
        "boot_id": "boot-1",
        "seq": 7,
        "sent_at": NOW,
        "healthy": True,
        "holding": ("web-b",),
        "leaving": False,
    }
    fields.update(changes)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def body_of(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "node": "lb-b",
        "boot_id": "boot-1",
        "seq": 7,
        "sent_at": NOW,
        "healthy": True,
        "holding": ["web-b"],
        "leaving": False,
    }
    body.update(changes)
    return body


def signed(body: bytes, key: bytes = KEY) -> bytes:
    """A datagram with a valid tag around any body: tests what comes after the tag check."""
    return MAGIC + hmac.new(key, MAGIC + body, hashlib.sha256).digest() + body


def signed_json(data: object) -> bytes:
    return signed(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())


def reason(result: Heartbeat | Rejection) -> str:
    assert isinstance(result, Rejection), result
    return result.reason


# --------------------------------------------------------------------------- accepted


def test_round_trip() -> None:
    hb = heartbeat()
    assert receiver().accept(encode(hb, KEY)) == hb


def test_wire_format_is_magic_tag_compact_sorted_json() -> None:
    datagram = encode(heartbeat(), KEY)
    body = datagram[len(MAGIC) + 32 :]
    assert datagram.startswith(b"EIPHA1")
    assert body == json.dumps(body_of(), separators=(",", ":"), sort_keys=True).encode()
    assert datagram[6:38] == hmac.new(KEY, MAGIC + body, hashlib.sha256).digest()


def test_sender_counts_up_and_sorts_holding() -> None:
    sender = Sender("lb-b", KEY, boot_id="b1")
    rx = receiver()
    first = rx.accept(sender.next(True, {"web-z", "web-b"}, False, NOW))
    second = rx.accept(sender.next(False, [], True, NOW + 1))
    assert first == heartbeat(boot_id="b1", seq=0, holding=("web-b", "web-z"))
    assert second == heartbeat(
        boot_id="b1", seq=1, sent_at=NOW + 1, healthy=False, holding=(), leaving=True
    )
    assert (rx.accepted, rx.latest["lb-b"]) == (2, second)


def test_sender_boot_ids_are_random() -> None:
    assert Sender("lb-b", KEY).boot_id != Sender("lb-b", KEY).boot_id


def test_sent_at_may_be_an_integer_on_the_wire() -> None:
    result = receiver().accept(signed_json(body_of(sent_at=int(NOW))))
    assert isinstance(result, Heartbeat)
    assert result.sent_at == NOW
    assert isinstance(result.sent_at, float)


# --------------------------------------------------------------------------- refused


def flip(datagram: bytes, at: int) -> bytes:
    return datagram[:at] + bytes([datagram[at] ^ 0x01]) + datagram[at + 1 :]


VALID = encode(heartbeat(), KEY)


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        pytest.param(flip(VALID, 10), "tag", id="forged-tag"),
        pytest.param(flip(VALID, len(VALID) - 3), "tag", id="altered-body"),
        pytest.param(encode(heartbeat(), OTHER_KEY), "tag", id="wrong-key"),
        pytest.param(encode(heartbeat(node="lb-x"), KEY), "unknown-node", id="unknown-node"),
        pytest.param(encode(heartbeat(sent_at=NOW - SKEW - 0.1), KEY), "stale", id="old"),
        pytest.param(encode(heartbeat(sent_at=NOW + SKEW + 0.1), KEY), "stale", id="future"),
        pytest.param(b"", "size", id="empty"),
        pytest.param(VALID + b" " * (MAX_DATAGRAM + 1 - len(VALID)), "size", id="oversized"),
        pytest.param(b"x" * 5000, "size", id="huge"),
        pytest.param(b"EIPHA2" + VALID[6:], "magic", id="other-version"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", "magic", id="http"),
        pytest.param(signed(b"not json"), "json", id="not-json"),
        pytest.param(signed(b"\xff\xfe{}"), "json", id="not-utf8"),
        pytest.param(signed(b'{"sent_at":NaN}'), "json", id="nan"),
        pytest.param(signed(b"[" * 490 + b"]" * 490), "schema", id="deeply-nested"),
        pytest.param(signed(b""), "json", id="empty-body"),
    ],
)
def test_refused(datagram: bytes, expected: str) -> None:
    rx = receiver()
    assert reason(rx.accept(datagram)) == expected
    assert rx.counts[expected] == 1
    assert rx.accepted == 0


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, "size"), (1, "magic"), (5, "magic"), (6, "tag"), (20, "tag"), (38, "tag"), (39, "tag")]
    + [(len(VALID) - n, "tag") for n in (1, 2, 40)],
)
def test_truncated(length: int, expected: str) -> None:
    assert reason(receiver().accept(VALID[:length])) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({k: v for k, v in body_of().items() if k != "seq"}, id="missing-seq"),
        pytest.param({k: v for k, v in body_of().items() if k != "holding"}, id="missing-holding"),
        pytest.param(body_of(extra=1), id="extra-field"),
        pytest.param(body_of(seq=True), id="seq-bool"),
        pytest.param(body_of(seq=-1), id="seq-negative"),
        pytest.param(body_of(seq=2**64), id="seq-huge"),
        pytest.param(body_of(seq=7.0), id="seq-float"),
        pytest.param(body_of(seq="7"), id="seq-string"),
        pytest.param(body_of(sent_at=True), id="sent_at-bool"),
        pytest.param(body_of(sent_at="now"), id="sent_at-string"),
        pytest.param(body_of(sent_at=None), id="sent_at-null"),
        pytest.param(body_of(healthy=1), id="healthy-int"),
        pytest.param(body_of(leaving="no"), id="leaving-string"),
        pytest.param(body_of(node=7), id="node-int"),
        pytest.param(body_of(node=""), id="node-empty"),
        pytest.param(body_of(boot_id=None), id="boot_id-null"),
        pytest.param(body_of(holding="web-b"), id="holding-string"),
        pytest.param(body_of(holding=[1]), id="holding-int"),
        pytest.param(body_of(holding=[["web-b"]]), id="holding-nested"),
        pytest.param(body_of(holding={"web-b": True}), id="holding-object"),
        pytest.param([body_of()], id="list-body"),
        pytest.param("lb-b", id="string-body"),
        pytest.param(None, id="null-body"),
    ],
)
def test_wrong_schema(body: object) -> None:
    assert reason(receiver().accept(signed_json(body))) == "schema"


def test_duplicate_field_is_wrong_schema() -> None:
    text = json.dumps(body_of(), separators=(",", ":"), sort_keys=True)
    body = text[:-1] + ',"node":"lb-b"}'
    assert reason(receiver().accept(signed(body.encode()))) == "schema"


def test_nesting_beyond_the_recursion_limit_is_not_json() -> None:
    """A deep stack at the time of a deeply nested body: the RecursionError is caught."""
    datagram = signed(b"[" * 490 + b"]" * 490)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 200)
    try:
        result = receiver().accept(datagram)
    finally:
        sys.setrecursionlimit(limit)
    assert reason(result) == "json"


def test_sent_at_too_large_for_a_float_is_wrong_schema() -> None:
    text = json.dumps(body_of(sent_at=0), separators=(",", ":"))
    body = text.replace('"sent_at":0', '"sent_at":' + "9" * 400)
    assert reason(receiver().accept(signed(body.encode()))) == "schema"


def test_own_node_is_refused_even_if_listed_as_peer() -> None:
    rx = receiver(peers={"lb-a", "lb-b"}, me="lb-a")
    result = rx.accept(encode(heartbeat(node="lb-a"), KEY), source="10.0.0.11:7694")
    assert isinstance(result, Rejection)
    assert (result.reason, result.source) == ("unknown-node", "10.0.0.11:7694")
    assert "own node name" in result.detail


def test_skew_at_the_limit_is_fresh() -> None:
    assert isinstance(receiver().accept(encode(heartbeat(sent_at=NOW + SKEW), KEY)), Heartbeat)
    assert isinstance(receiver().accept(encode(heartbeat(sent_at=NOW - SKEW), KEY)), Heartbeat)


def test_replayed_datagram() -> None:
    rx = receiver()
    assert isinstance(rx.accept(VALID), Heartbeat)
    assert reason(rx.accept(VALID)) == "replay"
    assert (rx.accepted, rx.counts["replay"]) == (1, 1)


def test_older_seq_of_same_boot() -> None:
    rx = receiver()
    assert isinstance(rx.accept(encode(heartbeat(seq=5), KEY)), Heartbeat)
    assert reason(rx.accept(encode(heartbeat(seq=3), KEY))) == "replay"
    assert isinstance(rx.accept(encode(heartbeat(seq=6), KEY)), Heartbeat)


def test_new_boot_id() -> None:
    rx = receiver()
    assert isinstance(rx.accept(encode(heartbeat(seq=50), KEY)), Heartbeat)
    # a restart begins again at seq 0 with a newer sent_at: accepted
    restarted = heartbeat(boot_id="boot-2", seq=0, sent_at=NOW + 1)
    assert rx.accept(encode(restarted, KEY)) == restarted
    # the old boot, or any boot not newer than the last datagram: a replay
    assert reason(rx.accept(encode(heartbeat(seq=51), KEY))) == "replay"
    same_time = heartbeat(boot_id="boot-3", seq=0, sent_at=NOW + 1)
    assert reason(rx.accept(encode(same_time, KEY))) == "replay"


def test_rejections_do_not_advance_the_replay_window() -> None:
    rx = receiver()
    rx.accept(encode(heartbeat(seq=5), OTHER_KEY))
    assert isinstance(rx.accept(encode(heartbeat(seq=1), KEY)), Heartbeat)


def test_counts_every_reason() -> None:
    rx = receiver()
    assert set(rx.counts) == set(REASONS)
    for datagram in (b"", b"nope", VALID[:-1], VALID, VALID, signed(b"{")):
        rx.accept(datagram)
    expected = dict.fromkeys(REASONS, 0) | {"size": 1, "magic": 1, "tag": 1, "replay": 1}
    assert rx.counts == expected | {"json": 1}
    assert rx.accepted == 1


def test_encode_refuses_more_than_max_datagram() -> None:
    with pytest.raises(ValueError, match="more than 1024"):
        encode(heartbeat(holding=tuple(f"web-{i:04d}" for i in range(100))), KEY)
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode(heartbeat(sent_at=float("nan")), KEY)


def test_sender_seq_unchanged_when_refused() -> None:
    sender = Sender("lb-b", KEY)
    with pytest.raises(ValueError, match="more than 1024"):
        sender.next(True, [f"web-{i:04d}" for i in range(100)], False, NOW)
    assert sender.seq == 0


def test_no_key_in_reprs() -> None:
    for thing in (Sender("lb-b", KEY), receiver()):
        assert repr(KEY) not in repr(thing)
        assert KEY.hex() not in repr(thing)


# --------------------------------------------------------------------------- fuzz


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    n = len(valid)
    flips = st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(
        lambda p: valid[: p[0]] + bytes([valid[p[0]] ^ p[1]]) + valid[p[0] + 1 :]
    )
    cuts = st.integers(0, n).map(lambda k: valid[:k])
    inserts = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(
        lambda p: valid[: p[0]] + p[1] + valid[p[0] :]
    )
    deletes = st.tuples(st.integers(0, n - 1), st.integers(1, 8)).map(
        lambda p: valid[: p[0]] + valid[p[0] + p[1] :]
    )
    return st.one_of(
        st.just(valid),
        st.binary(max_size=1100),
        (st.just(MAGIC) | st.just(valid[:38])).flatmap(lambda h: st.binary().map(h.__add__)),
        flips,
        cuts,
        inserts,
        deletes,
    )


names = st.text(min_size=1, max_size=12)


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, bytes]:
    sender = Sender("lb-b", KEY, boot_id=draw(names))
    sender.seq = draw(st.integers(0, 2**63 - 1))
    holding = draw(st.lists(names, max_size=4))
    valid = sender.next(draw(st.booleans()), holding, draw(st.booleans()), NOW)
    return valid, draw(_mutations(valid))


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fuzz_only_the_exact_valid_datagram_passes(case: tuple[bytes, bytes]) -> None:
    valid, datagram = case
    rx = receiver()
    result = rx.accept(datagram)
    if datagram == valid:
        assert isinstance(result, Heartbeat)
        assert reason(rx.accept(datagram)) == "replay"
    else:
        assert isinstance(result, Rejection)
        assert result.reason in REASONS
    assert sum(rx.counts.values()) + rx.accepted == (2 if datagram == valid else 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
near_heartbeats = st.fixed_dictionaries(
    dict.fromkeys(sorted(FIELDS), json_values),
    optional={"extra": json_values},
)


@settings(max_examples=1000, deadline=None)
@given(json_values | near_heartbeats | st.binary(max_size=900))
def test_fuzz_authenticated_junk_never_escapes(data: object) -> None:
    """Bodies with a valid tag (a peer with the key gone mad) reach the JSON and schema
    checks; they are refused or, if well-formed, accepted, but nothing raises."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    rx = receiver()
    result = rx.accept(signed(body[:900]))
    if isinstance(result, Rejection):
        assert result.reason in REASONS
    else:
        assert set(vars(result)) == FIELDS


# --------------------------------------------------------------------------- the key file


def key_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> str:
    path = tmp_path / "monitor.key"
    path.write_bytes(content)
    os.chmod(path, mode)
    return str(path)


SECRET = b"TOPSECRET-" * 4  # 40 bytes, easy to spot in a message


def assert_secret_free(error: EiphaError) -> None:
    text = str(error) + repr(error) + repr(error.args)
    for piece in (SECRET, SECRET[:10], SECRET[:20]):
        assert piece.decode() not in text
        assert piece.hex() not in text


def test_key_binary(tmp_path: Path) -> None:
    raw = os.urandom(32)
    assert load_key(key_file(tmp_path, raw)) == raw


def test_key_binary_ending_in_whitespace_is_kept_whole(tmp_path: Path) -> None:
    raw = b"\x00" + bytes(range(200, 230)) + b"\n"
    assert load_key(key_file(tmp_path, raw)) == raw


def test_key_text_is_stripped(tmp_path: Path) -> None:
    hex_key = os.urandom(32).hex().encode()
    assert load_key(key_file(tmp_path, b"  " + hex_key + b"\n")) == hex_key


def test_key_text_needs_32_bytes_after_stripping(tmp_path: Path) -> None:
    assert load_key(key_file(tmp_path, b"a" * 32 + b"\n")) == b"a" * 32
    path = key_file(tmp_path, b"a" * 31 + b"\n")
    with pytest.raises(NotConfigured, match="holds 31 bytes, fewer than 32") as caught:
        load_key(path)
    assert f"head -c 32 /dev/urandom > {path}" in str(caught.value)


def test_key_missing(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.key")
    with pytest.raises(NotConfigured, match="not found") as caught:
        load_key(path)
    assert f"head -c 32 /dev/urandom > {path}" in str(caught.value)


def test_key_short(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="fewer than 32") as caught:
        load_key(key_file(tmp_path, SECRET[:20]))
    assert_secret_free(caught.value)


def test_key_empty(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="holds 0 bytes"):
        load_key(key_file(tmp_path, b""))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o601, 0o610, 0o777])
def test_key_mode_open_to_others(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, SECRET, mode)
    with pytest.raises(PermissionDenied) as caught:
        load_key(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert f"mode {mode:04o}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert_secret_free(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_key_owner_only_modes(tmp_path: Path, mode: int) -> None:
    assert load_key(key_file(tmp_path, SECRET, mode)) == SECRET


def test_key_wrong_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = key_file(tmp_path, SECRET)
    someone_else = os.stat(path).st_uid + 4242
    monkeypatch.setattr(os, "geteuid", lambda: someone_else)
    with pytest.raises(PermissionDenied, match="is owned by uid") as caught:
        load_key(path)
    assert f"chown {someone_else} {path}" in str(caught.value)
    assert_secret_free(caught.value)


def test_key_symlink(tmp_path: Path) -> None:
    target = key_file(tmp_path, SECRET)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    with pytest.raises(PermissionDenied, match="is a symlink") as caught:
        load_key(str(link))
    assert str(link) in str(caught.value)
    assert_secret_free(caught.value)


def test_key_directory(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="not a regular file"):
        load_key(str(tmp_path))


def test_key_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(NotConfigured, match="not a regular file"):
        load_key(str(fifo))


def test_key_too_large(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="larger than 64 KiB"):
        load_key(key_file(tmp_path, b"k" * (64 * 1024 + 1)))
