"""What the relay puts on Kafka, and how a worker checks it before trusting it.

Definition
    Topic: ``<prefix><context>``, the bounded context being the event topic's first dotted
    part (``ledger.TransferCreated`` -> ``ledgerline.ledger``).
    Partition: murmur2(stream id) mod partitions (Kafka's own key partitioner, computed by
    the relay so it knows each partition's order), so a stream's events share one partition.

    An **event message** has key = stream id, value = the event's canonical ``evt/v1`` bytes
    (position, stream id, version, topic, commit time, payload: see ``eventstore.canonical``),
    and one header, ``ll``: the ASCII line ``event <position> <prev> <sha256>``. ``prev`` is
    the position of the previous event the relay sent to the same partition (0 for the
    first); ``sha256`` is the hex SHA-256 of the value, the event digest the store chains on.
    Stream, version and event type are read from the value itself.

    A **watermark** has no key, an empty value and ``ll`` = ``watermark <W> <prev>``: it says
    "every event up to W meant for this partition precedes me". It lets a worker's
    per-partition position advance past events that went elsewhere, so the minimum over
    partitions is the global position the read model is complete up to.

    Numbers are plain decimal (no sign, no leading zeros). Relays before this format wrote
    seven headers (``ll-kind``, ``ll-position``, ``ll-stream``, ``ll-version``, ``ll-topic``,
    ``ll-hash``, ``ll-prev``); a topic may still hold such messages, and they are read with
    their own rules (every header present, and equal to the value's fields). One header
    instead of seven saves the relay about an eighth of its CPU per message.

Guarantees
    :func:`decode` accepts a message only if the value hashes to the header's digest and
    decodes to an ``evt/v1`` record at the header's position; anything else is a
    :class:`PoisonMessage` (never skipped: the worker stops that partition).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kafka.partitioner.default import murmur2

from eventstore.canonical import (
    EVENT_TAG,
    GENESIS,
    dec,
    decode_i64,
    encode_event,
    split_event_bytes,
)
from eventstore.model import StoredEvent

DEFAULT_TOPIC_PREFIX = "ledgerline."
KIND_EVENT = b"event"
KIND_WATERMARK = b"watermark"
HEADER = "ll"

Headers = Sequence[tuple[str | bytes, bytes | None]] | Mapping[str, bytes]


class PoisonMessage(ValueError):
    """A message that cannot be trusted or understood; its partition stops on it."""


def context_of(event_topic: str) -> str:
    return event_topic.split(".", 1)[0]


def topic_for(event_topic: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    return f"{prefix}{context_of(event_topic)}"


def partition_for(stream_id: str, partitions: int) -> int:
    return _stream_hash(stream_id) % partitions


@functools.lru_cache(maxsize=1 << 16)
def _stream_hash(stream_id: str) -> int:
    """Kafka's key hash (murmur2, as the Java client's default partitioner), kept for the
    streams seen lately: an account's stream recurs in every transfer that touches it, and
    the hash in pure Python costs more than the rest of a message's preparation."""
    digest: int = murmur2(stream_id.encode("utf-8"))
    return digest & 0x7FFFFFFF


def event_message(event: StoredEvent, prev: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one event."""
    value = encode_event(
        event.position,
        event.stream_id,
        event.version,
        event.topic,
        event.recorded_at_ns,
        event.payload,
    )
    line = b"event %d %d %s" % (event.position, prev, hashlib.sha256(value).hexdigest().encode())
    return event.stream_id.encode("utf-8"), value, [(HEADER, line)]


def watermark_headers(position: int, prev: int) -> list[tuple[str, bytes]]:
    return [(HEADER, b"watermark %d %d" % (position, prev))]


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed message, checked. ``event`` is ``None`` for a watermark."""

    topic: str
    partition: int
    offset: int
    position: int
    prev: int
    event: StoredEvent | None


def _header_map(headers: Headers | None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in items:
        key = name.decode() if isinstance(name, bytes) else str(name)
        out[key] = bytes(value) if value is not None else b""
    return out


def _int_header(headers: dict[str, bytes], name: str) -> int:
    raw = headers.get(name)
    if raw is None:
        raise PoisonMessage(f"header {name} is missing")
    try:
        value = int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise PoisonMessage(f"header {name} is not a number: {raw[:40]!r}") from None
    if value < 0:
        raise PoisonMessage(f"header {name} is negative")
    return value


def decode(
    topic: str, partition: int, offset: int, value: bytes | None, headers: Headers | None
) -> Message:
    """Check one consumed message against its own hash and headers; raise PoisonMessage."""
    fast = _decode_event_fast(topic, partition, offset, value, headers)
    if fast is not None:
        return fast
    return _decode_checked(topic, partition, offset, value, headers)


def _decode_event_fast(
    topic: str, partition: int, offset: int, value: bytes | None, headers: Headers | None
) -> Message | None:
    """The common case, an intact event message as the relay writes it, checked with the
    same rules as :func:`_decode_checked` in a fraction of its time. ``None`` for anything
    else (a watermark, a message in any way unusual or wrong): the caller then takes the
    careful path, which accepts or names the fault exactly."""
    if type(value) is not bytes or not isinstance(headers, (list, tuple)) or len(headers) != 1:
        return None
    try:
        name, line = headers[0]
    except (TypeError, ValueError):
        return None
    if name != HEADER or type(line) is not bytes:
        return None
    parts = line.split(b" ")
    if len(parts) != 4 or parts[0] != KIND_EVENT:
        return None
    if parts[3] != hashlib.sha256(value).hexdigest().encode():
        return None
    fields = split_event_bytes(value)
    if fields is None:
        return None
    position, sid, version, top, recorded_at_ns, payload = fields
    prev = _decimal(parts[2])
    if prev is None or prev >= position or parts[1] != b"%d" % position:
        return None
    try:
        stream_id = sid.decode("utf-8")
        event_topic = top.decode("utf-8")
    except UnicodeDecodeError:
        return None
    event = StoredEvent(
        position,
        stream_id,
        version,
        event_topic,
        payload,
        recorded_at_ns,
        GENESIS,
        GENESIS,
        GENESIS,
        GENESIS,
    )
    return Message(topic, partition, offset, position, prev, event)


def _decimal(raw: bytes) -> int | None:
    """A plain decimal number (ASCII digits, no sign, no leading zero), else ``None``."""
    if not raw.isdigit() or (len(raw) > 1 and raw[0] == 0x30):
        return None
    return int(raw)


def _decode_checked(
    topic: str, partition: int, offset: int, value: bytes | None, headers: Headers | None
) -> Message:
    """Every message, every rule, one at a time: the fault, if any, is named."""
    h = _header_map(headers)
    line = h.get(HEADER)
    if line is None:
        return _decode_seven_headers(topic, partition, offset, value, h)
    parts = line.split(b" ")
    kind = parts[0]
    if kind == KIND_WATERMARK:
        if len(parts) != 3:
            raise PoisonMessage("a watermark's ll header is not 'watermark <position> <prev>'")
        position, prev = _number(parts[1], "position"), _number(parts[2], "prev")
        if prev > position:
            raise PoisonMessage(f"watermark prev {prev} is after its position {position}")
        return Message(topic, partition, offset, position, prev, None)
    if kind != KIND_EVENT:
        raise PoisonMessage(f"unknown message kind {kind[:20]!r}")
    if len(parts) != 4:
        raise PoisonMessage("an event's ll header is not 'event <position> <prev> <sha256>'")
    position, prev = _number(parts[1], "position"), _number(parts[2], "prev")
    if prev >= position:
        raise PoisonMessage(f"prev {prev} is not before position {position}")
    event = _checked_event(value, parts[3], position)
    if event.position != position:
        raise PoisonMessage(
            f"the ll header's position disagrees with the event bytes at {position}"
        )
    return Message(topic, partition, offset, position, prev, event)


def _number(raw: bytes, name: str) -> int:
    number = _decimal(raw)
    if number is None:
        raise PoisonMessage(f"the ll header's {name} is not a plain number: {raw[:40]!r}")
    return number


def _checked_event(value: bytes | None, hex_digest: bytes | None, position: int) -> StoredEvent:
    """The event in ``value``, which must hash to ``hex_digest`` and be an ``evt/v1`` record."""
    raw = value or b""
    if hex_digest != hashlib.sha256(raw).hexdigest().encode():
        raise PoisonMessage(
            f"the value does not hash to the header's digest at position {position}"
        )
    try:
        tag, fields = dec(raw)
        if tag != EVENT_TAG or len(fields) != 6:
            raise ValueError(f"not an {EVENT_TAG.decode()} record")
        return StoredEvent(
            position=decode_i64(fields[0]),
            stream_id=fields[1].decode("utf-8"),
            version=decode_i64(fields[2]),
            topic=fields[3].decode("utf-8"),
            recorded_at_ns=decode_i64(fields[4]),
            payload=fields[5],
            # Chain links are not carried: the worker trusts the digest, the store the chains.
            prev_stream_hash=GENESIS,
            stream_hash=GENESIS,
            prev_global_hash=GENESIS,
            global_hash=GENESIS,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"undecodable event bytes at position {position}: {exc}") from None


def _decode_seven_headers(
    topic: str, partition: int, offset: int, value: bytes | None, h: dict[str, bytes]
) -> Message:
    """A message as relays before the one-header format wrote it (still read: a topic keeps
    its history): every fact in a header of its own, each equal to the value's field."""
    kind = h.get("ll-kind")
    position = _int_header(h, "ll-position")
    prev = _int_header(h, "ll-prev")
    if kind == KIND_WATERMARK:
        if prev > position:
            raise PoisonMessage(f"watermark ll-prev {prev} is after ll-position {position}")
        return Message(topic, partition, offset, position, prev, None)
    if kind != KIND_EVENT:
        raise PoisonMessage(f"unknown message kind {kind!r}")
    if prev >= position:
        raise PoisonMessage(f"ll-prev {prev} is not before ll-position {position}")
    event = _checked_event(value, h.get("ll-hash"), position)
    expected = {
        "ll-position": str(event.position).encode(),
        "ll-stream": event.stream_id.encode("utf-8"),
        "ll-version": str(event.version).encode(),
        "ll-topic": event.topic.encode("utf-8"),
    }
    for name, want in expected.items():
        if h.get(name) != want:
            raise PoisonMessage(f"header {name} disagrees with the event bytes at {position}")
    return Message(topic, partition, offset, position, prev, event)
