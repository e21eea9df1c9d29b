"""Bounded contexts as the shared command processor sees them.

Definition
    A :class:`CommandContext` is one bounded context's write side: its command handlers, the
    streams each command reads, the stream ids it owns, and how its events are encoded and
    its aggregates rebuilt. :func:`build_processor` merges several contexts into ONE
    :class:`~commands.processor.CommandProcessor`: one decider thread, one group commit, one
    aggregate cache. A command of one context may read and write another context's
    aggregates in the same unit of work (a trade posting ledger transfers), atomically.

Guarantees
    * Command types and stream prefixes are unique across the merged contexts; a clash is
      refused when the processor is built, not discovered at run time.
    * A command's rejection, invalid-input refusal, outcome and id-reuse answer are decided by
      its own context; an aggregate's events are encoded and rebuilt by the context owning its
      stream.

Constraints
    Command types are ``"<context>.<verb>"`` for every context but the ledger, whose types
    predate contexts. Command ids carry a per-context prefix so they never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from commands.processor import Command, CommandProcessor, Handler, Rejection
    from eventstore.model import RecordedCommand, StoredEvent


@dataclass(frozen=True)
class CommandContext:
    """One bounded context's write side, as the processor needs it."""

    name: str
    handlers: Mapping[str, Handler]
    # The streams a command reads before its handler runs (read in one round trip with the
    # batch); a handler may read more lazily through ``uow.get``.
    streams_of: Callable[[Command], Sequence[str]]
    # Stream ids this context owns (``"account:"``, ``"book:"``): its aggregates.
    stream_prefixes: tuple[str, ...]
    # A domain event -> (topic, canonical payload bytes).
    encode: Callable[[Any], tuple[str, bytes]]
    # Apply stored events to an aggregate (``None``: start from nothing); return it.
    rebuild: Callable[[Any, Sequence[StoredEvent]], Any]
    rejection_types: tuple[type[Exception], ...] = ()
    # Refused as malformed, not as a business rule: answered but not recorded, so the client
    # may fix the request and reuse the id.
    invalid_types: tuple[type[Exception], ...] = ()
    to_outcome: Callable[[Exception], dict[str, Any]] | None = None
    # None from it: the body spells the known command differently; the first outcome answers.
    on_payload_mismatch: Callable[[RecordedCommand, Command], Rejection | None] | None = None
    # An aggregate from a snapshot: (stream id, version, state) -> aggregate. ``None``: this
    # context's aggregates are never snapshotted.
    restore: Callable[[str, int, dict[str, Any]], Any] | None = None
    # Prefixes (among ``stream_prefixes``) of streams that stay a few events long, such as a
    # transfer's: one no cache holds is read whole with the batch under the writers' lock
    # rather than prefetched before it, so a command that starts a new one (most do) pays no
    # round trip to learn that it is empty.
    short_streams: tuple[str, ...] = ()


def build_processor(
    store: Any, contexts: Sequence[CommandContext], **options: Any
) -> CommandProcessor[Any]:
    """One processor deciding the commands of every context in ``contexts``."""
    from commands.processor import CommandProcessor

    return CommandProcessor(store, contexts, **options)
