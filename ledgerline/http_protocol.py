"""uvicorn's httptools protocol, sending each response in one write instead of two.

Definition
    :class:`CoalescingHttpToolsProtocol` is uvicorn's ``HttpToolsProtocol`` with the
    connection's transport wrapped in :class:`CoalescingTransport`: bytes written during one
    turn of the event loop (a response's status line and headers, then its body) are joined
    and handed to the socket once, at the end of that turn.

Why
    uvicorn writes the head on ``http.response.start`` and the body on ``http.response.body``:
    two ``send`` calls, two TCP segments, and on loopback the kernel delivers each one inside
    the sending call. For the small JSON answers of the command routes that second call is a
    tenth of the event loop's time per request.

Guarantees
    Bytes leave in the order they were written, no later than the end of the loop turn that
    wrote them. A write that brings the pending bytes to :data:`FLUSH_BYTES` or more sends
    them at once (a large or streamed body is never held in memory), and ``close``,
    ``write_eof`` and ``abort`` send (or, for ``abort``, drop) what is pending first, as the
    transport itself would.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_BYTES = 64 * 1024


class CoalescingTransport:
    """A transport whose writes of one loop turn reach the socket as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        # Everything else (extra info, reading and writing flow control, set_protocol) is
        # the transport's own.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        wrapped = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))
