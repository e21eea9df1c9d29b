"""Where the AML engine's cold account windows wait: a private, unnamed file on disk.

Definition
    :class:`SpillFile` is the :class:`~domain.aml.windows.ColdStore` of one engine: account
    states as bytes, appended to an anonymous temporary file (``TMPDIR``, else the system's
    temporary directory; it has no name, so it goes with its engine or its process, and no
    other process can open it), with an index in memory: account -> where its newest bytes
    are. A state saved again is appended again; when the file holds more dead bytes than live
    ones, the live ones are copied to a new file (so the file stays within twice the live
    states, and each byte written is copied at most about once more on average).

Guarantees
    * Bounded memory: the process holds the index (an integer per cold account), never the
      states; their bytes are in the file (and the operating system's page cache, which is
      not the process's resident set).
    * Nothing durable: the engine's durable state is the journal in PostgreSQL; a restarted
      engine is rebuilt from it with a new file.
    * Load, peek, save and drop cost one system call each (a batch of saves: one write).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

_LENGTH_BITS = 32  # an entry's index value: offset << 32 | length
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
COMPACT_FROM_BYTES = 64 << 20  # no compaction below this much dead data
COPY_CHUNK_BYTES = 8 << 20


class SpillFile:
    def __init__(self, compact_from_bytes: int = COMPACT_FROM_BYTES) -> None:
        self.compact_from_bytes = compact_from_bytes
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - the store's life
        self._fd = self._file.fileno()
        self._end = 0  # where the next bytes go
        self._index: dict[str, int] = {}  # account -> offset << 32 | length
        self._live = 0  # bytes of the states in the index
        self.compactions = 0

    def take(self, account: str) -> bytes | None:
        where = self._index.pop(account, None)
        if where is None:
            return None
        self._live -= where & _LENGTH_MASK
        return self._read(self._fd, account, where)

    def peek(self, account: str) -> bytes | None:
        where = self._index.get(account)
        return None if where is None else self._read(self._fd, account, where)

    @staticmethod
    def _read(fd: int, account: str, where: int) -> bytes:
        length = where & _LENGTH_MASK
        data = os.pread(fd, length, where >> _LENGTH_BITS)
        if len(data) != length:
            raise OSError(f"short read of {account}'s window from the spill file")
        return data

    def accounts(self) -> Iterable[str]:
        return list(self._index)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every saved state, in file order (sequential reads), left in place."""
        return self._in_file_order(self._fd)

    def _in_file_order(self, fd: int) -> Iterator[tuple[str, bytes]]:
        for account, where in sorted(self._index.items(), key=lambda kv: kv[1]):
            yield account, self._read(fd, account, where)

    def save(self, items: Iterable[tuple[str, bytes]]) -> None:
        index, offset = self._index, self._end
        chunks = []
        for account, data in items:
            old = index.get(account)
            if old is not None:
                self._live -= old & _LENGTH_MASK
            index[account] = offset << _LENGTH_BITS | len(data)
            self._live += len(data)
            offset += len(data)
            chunks.append(data)
        if chunks:
            self._write_at(self._end, b"".join(chunks))
            self._end = offset
        dead = self._end - self._live
        if dead > self.compact_from_bytes and dead > self._live:
            self._compact()

    def drop(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            old = self._index.pop(account, None)
            if old is not None:
                self._live -= old & _LENGTH_MASK

    def __len__(self) -> int:
        return len(self._index)

    def size_bytes(self) -> int:
        return self._end

    def close(self) -> None:
        self._file.close()

    def _write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _compact(self) -> None:
        """Copy the live states to a new file, in file order (sequential reads)."""
        live = self._in_file_order(self._fd)  # the old file, read as the new one is written
        new = tempfile.TemporaryFile()  # noqa: SIM115 - as in __init__
        self._fd, offset = new.fileno(), 0
        pending: list[bytes] = []
        size = 0
        for account, data in live:
            self._index[account] = (offset + size) << _LENGTH_BITS | len(data)
            pending.append(data)
            size += len(data)
            if size >= COPY_CHUNK_BYTES:
                self._write_at(offset, b"".join(pending))
                offset, size, pending = offset + size, 0, []
        self._write_at(offset, b"".join(pending))
        self._file.close()
        self._file, self._end = new, offset + size
        self.compactions += 1
