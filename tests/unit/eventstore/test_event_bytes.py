"""Reading an event's canonical bytes straight from their layout gives what the general
decoder gives, and nothing for bytes that are not exactly that layout."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstore.canonical import (
    EVENT_TAG,
    dec,
    enc,
    encode_event,
    parse_event_bytes,
    split_event_bytes,
)

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
