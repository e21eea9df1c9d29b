"""The worker's fast decoding of a consumed message agrees with the careful one on every
input: the same checked event for an intact message, the same named fault for anything else."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.canonical import EVENT_TAG, GENESIS, dec, enc
from eventstore.model import StoredEvent
from projections.messages import (
    PoisonMessage,
    _decode_checked,
    _decode_event_fast,
    decode,
    event_message,
    partition_for,
    watermark_headers,
)

TOPIC = "ledgerline.ledger"

events = st.builds(
    lambda position, stream, version, topic, at, payload: StoredEvent(
        position, stream, version, topic, payload, at, *([GENESIS] * 4)
    ),
    position=st.integers(1, 2**63 - 1),
    stream=st.text(min_size=0, max_size=40),
    version=st.integers(-(2**63), 2**63 - 1),
    topic=st.text(max_size=30),
    at=st.integers(-(2**63), 2**63 - 1),
    payload=st.binary(max_size=200),
)


def outcome(fn: Any, value: Any, headers: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(TOPIC, 3, 17, value, headers)
    except PoisonMessage as exc:
        return "poison", str(exc)


def _mutate(data: st.DataObject, value: bytes, headers: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """One of the ways a message can differ from what the relay writes (or none)."""
    how = data.draw(
        st.sampled_from(
            [
                "none",
                "flip_value",
                "cut_value",
                "extend_value",
                "no_value",
                "drop_header",
                "change_header",
                "duplicate_header",
                "bytes_names",
                "none_value",
                "dict_headers",
                "extra_header",
                "odd_fields",
                "change_field",
            ]
        )
    )
    names = [n for n, _ in headers]
    if how == "flip_value" and value:
        i = data.draw(st.integers(0, len(value) - 1))
        value = value[:i] + bytes([value[i] ^ data.draw(st.integers(1, 255))]) + value[i + 1 :]
    elif how == "cut_value":
        value = value[: data.draw(st.integers(0, len(value)))]
    elif how == "extend_value":
        value = value + data.draw(st.binary(min_size=1, max_size=8))
    elif how == "no_value":
        value = None
    elif how == "drop_header":
        del headers[data.draw(st.integers(0, len(headers) - 1))]
    elif how == "change_header":
        i = data.draw(st.integers(0, len(headers) - 1))
        headers[i] = (
            headers[i][0],
            data.draw(
                st.one_of(
                    st.binary(max_size=70),
                    st.integers(-5, 2**64).map(lambda n: str(n).encode()),
                    st.sampled_from([b" 1", b"+1", b"1_0", b"-0", b"0", b"event", b"watermark"]),
                )
            ),
        )
    elif how == "change_field":
        # One space-separated field of a one-header line (or of a legacy header's value).
        i = data.draw(st.integers(0, len(headers) - 1))
        parts = (headers[i][1] or b"").split(b" ")
        j = data.draw(st.integers(0, len(parts)))
        new = data.draw(
            st.one_of(
                st.integers(0, 2**64).map(lambda n: str(n).encode()),
                st.sampled_from([b"", b"00", b"01", b"-1", b"+1", b"1_0", b"\xd9", b"x"]),
            )
        )
        if j == len(parts):
            parts.append(new)  # one field too many
        else:
            parts[j] = new
        headers[i] = (headers[i][0], b" ".join(parts))
    elif how == "duplicate_header":
        name = data.draw(st.sampled_from(names))
        headers.insert(
            data.draw(st.integers(0, len(headers))), (name, data.draw(st.binary(max_size=20)))
        )
    elif how == "bytes_names":
        headers = [(n.encode(), v) for n, v in headers]
    elif how == "none_value":
        i = data.draw(st.integers(0, len(headers) - 1))
        headers[i] = (headers[i][0], None)
    elif how == "dict_headers":
        return value, dict(headers)
    elif how == "extra_header":
        headers.append(("traceparent", b"00-abc"))
    elif how == "odd_fields":
        # Well framed, but not the relay's layout (an integer of the wrong width, a field
        # more or less), and hashed correctly: only the structure can refuse it.
        fields: list[bytes] = list(dec(value)[1])
        change = data.draw(st.sampled_from(["widen", "narrow", "more", "fewer", "tag"]))
        i = data.draw(st.sampled_from([0, 2, 4]))
        tag = EVENT_TAG
        if change == "widen":
            fields[i] = b"\x00" + fields[i]
        elif change == "narrow":
            fields[i] = fields[i][1:]
        elif change == "more":
            fields.append(data.draw(st.binary(max_size=9)))
        elif change == "fewer":
            fields.pop()
        else:
            tag = b"evt/v2"
        value = enc(tag, *fields)
    if how in ("flip_value", "cut_value", "extend_value", "odd_fields") and data.draw(
        st.booleans()
    ):
        # A producer that hashes what it sends: the hash agrees, the bytes are still wrong.
        digest = hashlib.sha256(value or b"").hexdigest().encode()
        headers = [
            (n, digest if n == "ll-hash" else _with_digest(v, digest) if n == "ll" else v)
            for n, v in headers
        ]
    return value, data.draw(st.sampled_from([list, tuple]))(headers)


def _with_digest(line: bytes, digest: bytes) -> bytes:
    parts = line.split(b" ")
    return b" ".join([*parts[:3], digest, *parts[4:]]) if len(parts) >= 4 else line


def seven_headers(event: StoredEvent, prev: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Value and headers as relays wrote them before the one-header format."""
    _, value, _ = event_message(event, prev)
    return value, [
        ("ll-kind", b"event"),
        ("ll-position", str(event.position).encode()),
        ("ll-stream", event.stream_id.encode("utf-8")),
        ("ll-version", str(event.version).encode()),
        ("ll-topic", event.topic.encode("utf-8")),
        ("ll-hash", hashlib.sha256(value).hexdigest().encode()),
        ("ll-prev", str(prev).encode()),
    ]


@settings(max_examples=800, deadline=None)
@given(event=events, prev=st.integers(0, 2**63 - 1), data=st.data())
def test_fast_and_careful_decoding_agree_on_events(
    event: StoredEvent, prev: int, data: st.DataObject
) -> None:
    prev = min(prev, event.position - 1)
    if data.draw(st.booleans()):
        _, value, headers = event_message(event, prev)
    else:
        value, headers = seven_headers(event, prev)
    value2, headers2 = _mutate(data, value, list(headers))
    careful = outcome(_decode_checked, value2, headers2)
    assert outcome(decode, value2, headers2) == careful
    fast = _decode_event_fast(TOPIC, 3, 17, value2, headers2)
    if fast is not None:  # the fast path never accepts what the careful one refuses
        assert careful == ("ok", fast)


def test_an_intact_event_takes_the_fast_path_and_a_watermark_the_careful_one() -> None:
    event = StoredEvent(42, "account:7", 3, "ledger.AmountPosted.v1", b"{}", 99, *([GENESIS] * 4))
    _, value, headers = event_message(event, 40)
    fast = _decode_event_fast(TOPIC, 0, 5, value, headers)
    assert fast is not None and fast.event == event and fast.prev == 40
    assert _decode_event_fast(TOPIC, 0, 6, b"", watermark_headers(50, 42)) is None
    mark = decode(TOPIC, 0, 6, b"", watermark_headers(50, 42))
    assert mark.event is None and (mark.position, mark.prev) == (50, 42)


def test_the_relay_writes_one_header_and_reads_what_older_relays_wrote() -> None:
    event = StoredEvent(42, "account:7", 3, "ledger.AmountPosted.v1", b"{}", 99, *([GENESIS] * 4))
    key, value, headers = event_message(event, 40)
    digest = hashlib.sha256(value).hexdigest().encode()
    assert key == b"account:7"
    assert headers == [("ll", b"event 42 40 " + digest)]
    assert watermark_headers(50, 42) == [("ll", b"watermark 50 42")]
    old_value, old_headers = seven_headers(event, 40)
    assert old_value == value
    assert _decode_event_fast(TOPIC, 0, 5, value, old_headers) is None  # the careful path
    old = decode(TOPIC, 0, 5, value, old_headers)
    assert (old.event, old.position, old.prev) == (event, 42, 40)
    old_mark = decode(
        TOPIC, 0, 6, b"", [("ll-kind", b"watermark"), ("ll-position", b"50"), ("ll-prev", b"42")]
    )
    assert old_mark.event is None and (old_mark.position, old_mark.prev) == (50, 42)


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        (b"event 43 40 {digest}", "position disagrees"),
        (b"event 42 042 {digest}", "prev is not a plain number"),
        (b"event 42 42 {digest}", "prev 42 is not before position 42"),
        (b"event 42 40 " + b"0" * 64, "does not hash"),
        (b"event 42 40", "not 'event <position> <prev> <sha256>'"),
        (b"watermark 50 51", "watermark prev 51 is after its position 50"),
        (b"snapshot 42 40 {digest}", "unknown message kind"),
    ],
)
def test_a_wrong_ll_header_is_refused_with_its_fault_named(line: bytes, fault: str) -> None:
    event = StoredEvent(42, "account:7", 3, "ledger.AmountPosted.v1", b"{}", 99, *([GENESIS] * 4))
    _, value, _ = event_message(event, 40)
    digest = hashlib.sha256(value).hexdigest().encode()
    with pytest.raises(PoisonMessage) as caught:
        decode(TOPIC, 0, 5, value, [("ll", line.replace(b"{digest}", digest))])
    assert fault in str(caught.value)


@given(event=events)
def test_a_value_that_does_not_hash_to_its_header_is_refused(event: StoredEvent) -> None:
    _, value, headers = event_message(event, 0)
    tampered = value[:-1] + bytes([value[-1] ^ 1])
    assert outcome(decode, tampered, headers)[0] == "poison"


def test_streams_go_to_the_partition_kafkas_own_clients_would_choose() -> None:
    """Keys land where the Java client's default partitioner puts them (its murmur2 vectors,
    as kafka-python checks them), first time and again from the cache."""
    java = {"": 681, "a": 524, "ab": 434, "abc": 107, "123456789": 566, "\x00 ": 742}
    for _ in range(2):
        assert {key: partition_for(key, 1000) for key in java} == java
