"""Reading an event's canonical bytes straight from their layout gives what the general
decoder gives, and nothing for bytes that are not exactly that layout."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.invariant import InvariantViolation
from eventstore.canonical import (
    EVENT_TAG,
    GLOBAL_TAG,
    STREAM_TAG,
    Linker,
    dec,
    enc,
    encode_event,
    parse_event_bytes,
    split_event_bytes,
)
from eventstore.tiles import leaf_hash_of

i64 = st.integers(-(2**63), 2**63 - 1)


@given(position=i64, stream=st.text(), version=i64, topic=st.text(), at=i64, payload=st.binary())
def test_the_layout_read_equals_the_general_decoder(
    position: int, stream: str, version: int, topic: str, at: int, payload: bytes
) -> None:
    data = encode_event(position, stream, version, topic, at, payload)
    parsed = parse_event_bytes(data)
    assert split_event_bytes(data) == (
        parsed.position,
        parsed.stream_id.encode("utf-8"),
        parsed.version,
        parsed.topic.encode("utf-8"),
        parsed.recorded_at_ns,
        parsed.payload,
    )


@given(
    data=st.one_of(
        st.binary(max_size=80),
        # The record's own first bytes, then anything: the layout must still fit exactly.
        st.binary(max_size=80).map(lambda tail: enc(EVENT_TAG) + tail),
        st.binary(max_size=80).map(lambda tail: enc(EVENT_TAG, 1) + tail),
    )
)
def test_bytes_that_are_not_an_event_record_are_not_read_as_one(data: bytes) -> None:
    fields = split_event_bytes(data)
    if fields is not None:  # then they are one, and re-encode to themselves
        assert enc(EVENT_TAG, *fields) == data


def test_well_framed_records_of_another_shape_are_refused() -> None:
    _, fields = dec(encode_event(7, "s", 1, "t", 9, b"{}"))
    assert split_event_bytes(enc(EVENT_TAG, *fields[:-1])) is None  # a field short
    assert split_event_bytes(enc(EVENT_TAG, *fields, b"x")) is None  # a field more
    assert split_event_bytes(enc(EVENT_TAG, b"\x00" + fields[0], *fields[1:])) is None  # wide
    assert split_event_bytes(enc(b"evt/v2", *fields)) is None
    assert split_event_bytes(encode_event(7, "s", 1, "t", 9, b"{}")[:-1]) is None  # cut


hashes = st.binary(min_size=32, max_size=32)


@given(
    position=i64,
    stream=st.text(),
    version=i64,
    topic=st.text(),
    at=i64,
    payload=st.binary(),
    prev_stream=hashes,
    prev_global=hashes,
)
def test_the_write_paths_linker_hashes_as_the_generic_encoding_says(
    position: int,
    stream: str,
    version: int,
    topic: str,
    at: int,
    payload: bytes,
    prev_stream: bytes,
    prev_global: bytes,
) -> None:
    data, digest, s_hash, g_hash = Linker().link(
        position, stream, version, topic, at, payload, prev_stream, prev_global
    )
    assert data == enc(EVENT_TAG, position, stream, version, topic, at, payload)
    assert digest == hashlib.sha256(data).digest()
    sha = hashlib.sha256
    assert s_hash == sha(enc(STREAM_TAG, stream, version, prev_stream, digest)).digest()
    assert g_hash == sha(enc(GLOBAL_TAG, position, prev_global, digest)).digest()
    assert leaf_hash_of(data) == sha(b"\x00" + data).digest()


def test_one_linker_keeps_each_events_topic_and_time() -> None:
    linker = Linker()
    first = linker.link(1, "a", 1, "t.One.v1", 7, b"{}", bytes(32), bytes(32))
    second = linker.link(2, "b", 1, "t.Two.v1", 7, b"{}", bytes(32), first[3])
    third = linker.link(3, "a", 2, "t.One.v1", 9, b"{}", first[2], second[3])
    assert [parse_event_bytes(x[0]).topic for x in (first, second, third)] == [
        "t.One.v1",
        "t.Two.v1",
        "t.One.v1",
    ]
    assert [parse_event_bytes(x[0]).recorded_at_ns for x in (first, second, third)] == [7, 7, 9]


@pytest.mark.parametrize("short", ["stream", "global"])
def test_a_previous_hash_of_the_wrong_length_is_refused_not_padded(short: str) -> None:
    prev_stream = bytes(31) if short == "stream" else bytes(32)
    prev_global = bytes(33) if short == "global" else bytes(32)
    with pytest.raises(InvariantViolation):
        Linker().link(1, "a", 1, "t", 0, b"", prev_stream, prev_global)
