"""Responses leave in one write per loop turn, whole and in order, through a real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ledgerline.http_protocol import FLUSH_BYTES, CoalescingTransport
from tests.http_server import uvicorn_in_thread


class RecordingTransport:
    """A transport that keeps what it is given (a fake: the pure part of the wrapper)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 9)}.get(name, default)


def wrapped() -> tuple[asyncio.AbstractEventLoop, RecordingTransport, CoalescingTransport]:
    loop = asyncio.new_event_loop()
    inner = RecordingTransport()
    return loop, inner, CoalescingTransport(inner, loop)  # type: ignore[arg-type]


def turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_the_writes_of_one_turn_reach_the_transport_as_one_at_its_end() -> None:
    loop, inner, transport = wrapped()
    try:
        transport.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
        transport.write(memoryview(b"{}"))
        transport.write(b"")
        assert inner.writes == []
        assert transport.get_write_buffer_size() == 43 + 2 + 7
        turn(loop)
        assert inner.writes == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]
        transport.write(b"next")
        turn(loop)
        assert inner.writes[1:] == [b"next"]
        assert transport.get_extra_info("peername") == ("127.0.0.1", 9)
    finally:
        loop.close()


def test_a_large_write_goes_out_at_once_after_what_was_pending() -> None:
    loop, inner, transport = wrapped()
    try:
        transport.write(b"head")
        big = b"x" * FLUSH_BYTES
        transport.write(big)
        assert inner.writes == [b"head" + big]  # not held until the turn ends
        turn(loop)
        assert inner.writes == [b"head" + big]
    finally:
        loop.close()


def test_close_and_eof_send_what_is_pending_first_and_abort_drops_it() -> None:
    loop, inner, transport = wrapped()
    try:
        transport.writelines([b"a", b"b"])
        transport.write_eof()
        assert inner.writes == [b"ab"] and inner.eof
        transport.write(b"c")
        transport.close()
        assert inner.writes == [b"ab", b"c"] and inner.closed
        turn(loop)  # the scheduled flush finds nothing, and writes nothing to a closed one
        assert inner.writes == [b"ab", b"c"]
    finally:
        loop.close()
    loop, inner, transport = wrapped()
    try:
        transport.write(b"lost")
        transport.abort()
        turn(loop)
        assert inner.writes == [] and inner.aborted
    finally:
        loop.close()


# ------------------------------------------------------------------ through a real server


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/stream":
        # A streamed body far larger than the flush threshold, in uneven chunks.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(200):
            chunk = bytes([65 + i % 26]) * (1000 + 37 * i)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if i % 50 == 0:
                await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"END"})
        return
    body = scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def port() -> Iterator[int]:
    with uvicorn_in_thread(_app) as free:
        yield free


def _read_response(sock: socket.socket, buffered: bytearray) -> tuple[bytes, bytes]:
    while b"\r\n\r\n" not in buffered:
        buffered += sock.recv(65536)
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    buffered[:] = rest[length:]
    return head, rest[:length]


def test_a_keep_alive_connection_gets_every_answer_whole_and_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buffered = bytearray()
        for i in range(50):
            sock.sendall(f"POST /r{i} HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n".encode())
            head, body = _read_response(sock, buffered)
            assert head.startswith(b"HTTP/1.1 201 ")
            assert body == f"/r{i}".encode()
        # Pipelined requests: answered in the order sent.
        sock.sendall(b"".join(f"GET /p{i} HTTP/1.1\r\nhost: t\r\n\r\n".encode() for i in range(5)))
        assert [_read_response(sock, buffered)[1] for _ in range(5)] == [
            f"/p{i}".encode() for i in range(5)
        ]


def test_a_streamed_body_and_a_closing_connection_arrive_whole(port: int) -> None:
    expected = b"".join(bytes([65 + i % 26]) * (1000 + 37 * i) for i in range(200)) + b"END"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        received = bytearray()
        while chunk := sock.recv(65536):  # until the server closes the connection
            received += chunk
    head, _, chunked = bytes(received).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    body = bytearray()
    while True:
        size_line, _, chunked = chunked.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body += chunked[:size]
        chunked = chunked[size + 2 :]
    assert bytes(body) == expected
