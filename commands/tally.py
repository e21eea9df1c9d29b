"""Commands and handlers for the example Tally aggregate (demo and store benchmarks)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.processor import Command, CommandProcessor, Handler, Store, UnitOfWork, canonical_json
from domain import tally as t
from eventstore.model import StoredEvent


class OpenTally(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    tally_id: str = Field(min_length=1, max_length=100)


class IncrementTally(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    command_id: str = Field(min_length=1, max_length=100)
    tally_id: str = Field(min_length=1, max_length=100)
    amount: int


def encode(event: Any) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(asdict(event))


def rebuild(tally: t.Tally | None, events: Sequence[StoredEvent]) -> t.Tally | None:
    decoded = [t.EVENT_TYPES[e.topic](**json.loads(e.payload)) for e in events]
    if tally is None and decoded:
        tally = t.Tally(decoded[0].tally_id)
    return tally.replay(decoded) if tally is not None else None


def open_tally_command(cmd: OpenTally) -> Command:
    return Command.create(f"open_tally:{cmd.tally_id}", "open_tally", cmd, cmd.model_dump())


def increment_command(cmd: IncrementTally) -> Command:
    return Command.create(f"increment:{cmd.command_id}", "increment_tally", cmd, cmd.model_dump())


def _streams_of(command: Command) -> list[str]:
    return [t.stream_id(command.body.tally_id)]


def build_context(clock: Callable[[], int]) -> CommandContext:
    def open_tally(uow: UnitOfWork, cmd: OpenTally) -> dict[str, Any]:
        tally = t.Tally.open(cmd.tally_id, uow.get(t.stream_id(cmd.tally_id)), clock())
        uow.add(tally)
        return {"tally_id": cmd.tally_id}

    def increment(uow: UnitOfWork, cmd: IncrementTally) -> dict[str, Any]:
        tally = uow.get(t.stream_id(cmd.tally_id))
        if tally is None:
            raise t.TallyNotFound(f"tally {cmd.tally_id} does not exist", cmd.tally_id)
        tally.increment(cmd.amount, clock())
        return {"tally_id": cmd.tally_id, "total": tally.total}

    handlers: dict[str, Handler] = {"open_tally": open_tally, "increment_tally": increment}
    return CommandContext(
        name="tally",
        handlers=handlers,
        streams_of=_streams_of,
        stream_prefixes=(t.stream_id(""),),
        encode=encode,
        rebuild=rebuild,
        rejection_types=(t.TallyRejection,),
        to_outcome=lambda exc: exc.to_outcome() if isinstance(exc, t.TallyRejection) else {},
    )


def build_processor(store: Store, clock: Callable[[], int]) -> CommandProcessor[t.Tally]:
    return CommandProcessor(store, [build_context(clock)])
