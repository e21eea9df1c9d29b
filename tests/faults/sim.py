"""A deterministic simulation of the command processor and the projection, in the spirit of
TigerBeetle's VOPR.

One seed fixes everything: the commands a client sends (accounts, single-phase and pending
transfers, posts, voids, ids reused with other bodies), the batches the decider takes, and the
faults: transactions aborted before they commit (the store retries the decision, as the real
recorder does), transactions that commit but whose acknowledgement is lost, processors that
crash and come back with a cold cache (snapshots and all), a second writer on the same store,
duplicate deliveries, and a projection that crashes between batches. Production code decides
and plans every batch (the real processor, the real recorder's planning, the real ledger
domain and the real ``project()``); only the storage is an in-memory fake.

After the run every invariant is checked; a failure names the seed, and
``LEDGERLINE_SIM_SEED=<seed>`` re-runs exactly that schedule.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from commands.context import build_processor
from commands.ledger import (
    CreateAccount,
    CreateLinkedTransfers,
    CreateTransfer,
    PostPendingTransfer,
    VoidPendingTransfer,
    account_command,
    build_context,
    linked_command,
    post_command,
    transfer_command,
    void_command,
)
from commands.processor import Command, CommandProcessor, Outcome, _Pending
from domain.invariant import invariant
from eventstore.canonical import encode_event
from eventstore.model import (
    AppendResult,
    BatchView,
    ChainHead,
    Joined,
    Prefetched,
    RecordedCommand,
    Snapshot,
    StoredEvent,
    Submission,
    _StreamTip,
)
from eventstore.recorder import HashChainRecorder
from eventstore.verify import ChainVerifier
from projections.ledger import decode, project
from readmodels.ledger import AccountRow, TransferRow


class SimulatedOutage(Exception):
    """The fake database went away (a dropped connection, a killed server)."""


# ------------------------------------------------------------------ the fake store


@dataclass
class Faults:
    abort_before_commit: float = 0.0  # the transaction fails; nothing is written
    lose_ack: float = 0.0  # the transaction commits, then the caller sees an error
    retry_decide: float = 0.0  # the store retries the transaction: decide runs again


class _Planner:
    """The real recorder's batch planning (positions, chains, conflicts), on a fake clock."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock

    plan = HashChainRecorder._plan


class SimStore:
    """An in-memory event store with the recorder's semantics and injectable faults."""

    def __init__(self, rng: random.Random, faults: Faults) -> None:
        self.rng = rng
        self.faults = faults
        self.events: list[StoredEvent] = []
        self.streams: dict[str, list[StoredEvent]] = {}
        self.commands: dict[str, RecordedCommand] = {}
        self.snapshots: dict[str, list[tuple[int, bytes, bytes]]] = {}
        self.clock_ns = 1_700_000_000_000_000_000
        self._planner = _Planner(self._tick)
        self.transactions = 0
        self.lost_acks = 0
        self.aborts = 0

    def _tick(self) -> int:
        self.clock_ns += 1_000
        return self.clock_ns

    @property
    def head(self) -> ChainHead:
        if not self.events:
            return ChainHead(0, bytes(32), 0)
        last = self.events[-1]
        return ChainHead(last.position, last.global_hash, last.recorded_at_ns)

    def transact(
        self,
        command_ids: Sequence[str],
        streams_from: Mapping[str, int],
        decide: Callable[[BatchView], Sequence[Submission]],
        *,
        prefetch: Sequence[str] = (),
    ) -> tuple[Sequence[Submission], list[AppendResult]]:
        if self.rng.random() < self.faults.abort_before_commit:
            self.aborts += 1
            raise SimulatedOutage("connection lost before the batch was read")
        recorded = {c: self.commands[c] for c in command_ids if c in self.commands}

        def read(wanted: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
            return {sid: self.streams.get(sid, [])[v - 1 :] for sid, v in wanted.items()}

        def join(ids: Sequence[str], wanted: Mapping[str, int], pre: Sequence[str]) -> Joined:
            found = {c: self.commands[c] for c in ids if c in self.commands}
            return Joined(found, read(wanted), self.prefetch(pre))

        def view() -> BatchView:
            return BatchView(recorded, read(streams_from), read, join, self.prefetch(prefetch))

        submissions = decide(view())
        if self.rng.random() < self.faults.retry_decide:
            # The real recorder retries a transaction that failed mid-way: decide again.
            submissions = decide(view())
        touched = {e.stream_id for sub in submissions for e in sub.events}.union(
            *(sub.reads for sub in submissions)
        )
        tips = {
            sid: _StreamTip(events[-1].version, events[-1].stream_hash)
            for sid in touched
            if (events := self.streams.get(sid))
        }
        plan = self._planner.plan(submissions, self.head, self.commands, tips)
        for row in plan.rows:
            event = StoredEvent(*row)
            self.events.append(event)
            self.streams.setdefault(event.stream_id, []).append(event)
        for sub, done in plan.commands:
            self.commands[sub.command_id] = RecordedCommand(
                sub.command_id,
                sub.command_type,
                sub.payload,
                _digest(sub.payload),
                sub.accepted,
                sub.outcome,
                done.first_position,
                done.last_position,
                done.recorded_at_ns,
            )
        self.transactions += 1
        if self.rng.random() < self.faults.lose_ack:
            self.lost_acks += 1
            raise SimulatedOutage("committed, but the connection dropped before the reply")
        return submissions, plan.results

    def prefetch(self, stream_ids: Sequence[str]) -> dict[str, Prefetched]:
        out: dict[str, Prefetched] = {}
        for sid in stream_ids:
            events = self.streams.get(sid, [])
            taken = self.snapshots.get(sid)
            if taken:
                version, state, stream_hash = taken[-1]
                if events[version - 1].stream_hash == stream_hash:
                    out[sid] = Prefetched(Snapshot(sid, version, state), events[version:])
                    continue
                out[sid] = Prefetched(None, list(events), snapshot_refused=True)
                continue
            out[sid] = Prefetched(None, list(events))
        return out

    def write_snapshots(self, snapshots: Sequence[Snapshot]) -> int:
        for s in snapshots:
            events = self.streams.get(s.stream_id, [])
            if len(events) >= s.version:
                self.snapshots.setdefault(s.stream_id, []).append(
                    (s.version, s.state, events[s.version - 1].stream_hash)
                )
        return len(snapshots)


def _digest(payload: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(payload).digest()


# ------------------------------------------------------------------ the client


@dataclass
class Client:
    """A client that retries every command it was not answered until it is."""

    commands: list[Command]
    unanswered: list[Command] = field(default_factory=list)
    # (command id, body) -> every answer, first one first
    answers: dict[tuple[str, bytes], list[Outcome]] = field(default_factory=dict)


def _commands(rng: random.Random, size: int) -> list[Command]:
    accounts = list(range(1, rng.randint(3, 6)))
    out: list[Command] = []
    for a in accounts:
        out.append(
            account_command(
                CreateAccount(
                    id=a,
                    ledger=1,
                    currency="USD",
                    code=1,
                    debits_must_not_exceed_credits=a > 1 and rng.random() < 0.5,
                )
            )
        )
    holds: list[int] = []
    for n in range(size):
        tid = 1000 + n
        roll = rng.random()
        debit, credit = rng.sample([*accounts, 99], 2)  # 99: an account that never exists
        amount = f"{rng.randint(1, 3000) / 100:.2f}"
        if roll < 0.1 and holds:
            out.append(post_command(PostPendingTransfer(transfer_id=rng.choice(holds))))
        elif roll < 0.16 and holds:
            out.append(void_command(VoidPendingTransfer(transfer_id=rng.choice(holds))))
        elif roll < 0.24:
            # an id reused with another body
            out.append(
                transfer_command(
                    CreateTransfer(
                        id=1000 + rng.randrange(n + 1),
                        debit_account_id=debit,
                        credit_account_id=credit,
                        amount=amount,
                        ledger=1,
                        code=2,
                    )
                )
            )
        elif roll < 0.3:
            members = tuple(
                CreateTransfer(
                    id=500_000 + n * 10 + k,
                    debit_account_id=d,
                    credit_account_id=c,
                    amount=f"{rng.randint(1, 500) / 100:.2f}",
                    ledger=1,
                    code=1,
                )
                for k, (d, c) in enumerate(
                    rng.sample(accounts, 2) for _ in range(rng.randint(2, 3))
                )
            )
            out.append(linked_command(CreateLinkedTransfers(transfers=members)))
        else:
            pending = rng.random() < 0.3
            if pending:
                holds.append(tid)
            out.append(
                transfer_command(
                    CreateTransfer(
                        id=tid,
                        debit_account_id=debit,
                        credit_account_id=credit,
                        amount=amount,
                        ledger=1,
                        code=1,
                        pending=pending,
                    )
                )
            )
    return out


# ------------------------------------------------------------------ one run


@dataclass
class RunReport:
    seed: int
    commands: int
    batches: int = 0
    crashes: int = 0
    transactions: int = 0
    aborts: int = 0
    lost_acks: int = 0
    duplicates: int = 0
    projection_crashes: int = 0


def _new_processor(store: SimStore, every: int) -> CommandProcessor[Any]:
    return build_processor(store, [build_context(store._tick)], snapshot_every=every)


def run(seed: int, size: int = 30) -> RunReport:
    rng = random.Random(seed)
    faults = Faults(
        abort_before_commit=rng.choice([0.0, 0.05, 0.15]),
        lose_ack=rng.choice([0.0, 0.05, 0.15]),
        retry_decide=rng.choice([0.0, 0.1]),
    )
    store = SimStore(rng, faults)
    client = Client(_commands(rng, size))
    report = RunReport(seed, len(client.commands))
    every = rng.choice([0, 2, 5])
    processors = [_new_processor(store, every), _new_processor(store, every)]
    queue_: list[Command] = list(client.commands)
    steps = 0
    while queue_ or client.unanswered:
        steps += 1
        invariant(steps < 10_000, f"seed {seed}: the simulation does not converge")
        # Retries of unanswered commands join the queue at random places.
        for cmd in client.unanswered:
            queue_.insert(rng.randrange(len(queue_) + 1), cmd)
        client.unanswered.clear()
        take = rng.randint(1, 8)
        batch_cmds, queue_ = queue_[:take], queue_[take:]
        if rng.random() < 0.1 and batch_cmds:  # a duplicate delivery in the same batch
            batch_cmds.insert(rng.randrange(len(batch_cmds) + 1), rng.choice(batch_cmds))
            report.duplicates += 1
        if rng.random() < 0.05:  # a crash: this process comes back with a cold cache
            i = rng.randrange(len(processors))
            processors[i] = _new_processor(store, every)
            report.crashes += 1
        proc = rng.choice(processors)  # two writers share the store
        pending = [_Pending(c, Future()) for c in batch_cmds]
        proc._process(pending)
        report.batches += 1
        for p in pending:
            error = p.future.exception()
            if error is not None:
                if not isinstance(error, SimulatedOutage):
                    raise AssertionError(
                        f"seed {seed} (LEDGERLINE_SIM_SEED={seed} re-runs it): "
                        f"{type(error).__name__}: {error}"
                    ) from error
                client.unanswered.append(p.command)
                continue
            key = (p.command.command_id, p.command.payload)
            client.answers.setdefault(key, []).append(p.future.result())
        if rng.random() < 0.05:
            for p in processors:
                _snapshot_flush(p)
    for p in processors:
        _snapshot_flush(p)
    report.transactions = store.transactions
    report.aborts = store.aborts
    report.lost_acks = store.lost_acks
    check(seed, store, client, rng, report)
    return report


def _snapshot_flush(proc: CommandProcessor[Any]) -> None:
    """Write the snapshots the processor queued (its writer thread is not running here)."""
    import queue as q

    items = []
    while True:
        try:
            item = proc._snapshot_queue.get_nowait()
        except q.Empty:
            break
        if item is not None:
            items.append(item)
    if items and proc._write_snapshots is not None:
        proc._write_snapshots(items)


# ------------------------------------------------------------------ the invariants


def check(seed: int, store: SimStore, client: Client, rng: random.Random, r: RunReport) -> None:
    where = f"seed {seed} (LEDGERLINE_SIM_SEED={seed} re-runs it)"
    # 1. The log is one unbroken chain with gapless positions.
    verifier = ChainVerifier()
    for e in store.events:
        data = encode_event(
            e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
        )
        assert verifier.feed(e, _digest(data)), f"{where}: chain broken at {e.position}"
    assert [e.position for e in store.events] == list(range(1, len(store.events) + 1)), where
    # 2. Once a command is recorded, every answer to it is that first outcome (retries,
    #    duplicates, lost acknowledgements). A refusal that is never recorded (a transfer to
    #    post that does not exist yet) may be answered differently later, by design.
    for (cid, _), outcomes in client.answers.items():
        recorded = [o for o in outcomes if o.recorded_at_ns]
        if not recorded:
            continue
        first = recorded[0]
        later = outcomes[outcomes.index(first) :]
        for o in later:
            assert (o.accepted, o.result, o.last_position) == (
                first.accepted,
                first.result,
                first.last_position,
            ), f"{where}: {cid} answered {o} after {first}"
    # 3. Nothing was applied twice: one creation per transfer and account, one command row
    #    per id, and each accepted command's events sit at the positions it was told.
    created: dict[str, int] = {}
    for e in store.events:
        if e.version == 1:
            created[e.stream_id] = created.get(e.stream_id, 0) + 1
    assert all(n == 1 for n in created.values()), f"{where}: a stream was created twice"
    for cid, rec in store.commands.items():
        if rec.first_position is not None:
            span = store.events[rec.first_position - 1 : rec.last_position]
            assert span, f"{where}: {cid} points at positions that do not exist"
    # 4. Money is conserved: per currency, debits equal credits, and no balance is negative.
    accounts: dict[int, AccountRow] = {}
    transfers: dict[int, TransferRow] = {}
    project(decode(store.events), accounts, transfers)
    posted = sum(a.debits_posted for a in accounts.values())
    assert posted == sum(a.credits_posted for a in accounts.values()), f"{where}: unbalanced"
    pend = sum(a.debits_pending for a in accounts.values())
    assert pend == sum(a.credits_pending for a in accounts.values()), f"{where}: unbalanced"
    for a in accounts.values():
        assert min(a.debits_posted, a.credits_posted, a.debits_pending) >= 0, where
        if a.debits_must_not_exceed_credits:
            assert a.debits_pending + a.debits_posted <= a.credits_posted, f"{where}: limit"
    # 5. A projection fed in any batching, crashing between batches and resuming from its
    #    tracking position, ends where a one-shot projection does.
    position = 0
    acc: dict[int, AccountRow] = {}
    trs: dict[int, TransferRow] = {}
    while position < len(store.events):
        size = rng.randint(1, 12)
        batch = store.events[position : position + size]
        if rng.random() < 0.2:
            # the batch's transaction dies before commit: its rows are lost with it, and the
            # runner starts over from its tracking position (rebuild what it had)
            r.projection_crashes += 1
            acc, trs = {}, {}
            project(decode(store.events[:position]), acc, trs)
            continue
        project(decode(batch), acc, trs)
        position += len(batch)
    assert _rows(acc) == _rows(accounts) and _rows(trs) == _rows(transfers), where
    # 6. What the log recorded for a command is what its sender was told when it was.
    for cid, rec in store.commands.items():
        told = [o for o in client.answers.get((cid, rec.payload), []) if o.recorded_at_ns]
        assert told, f"{where}: {cid} is recorded but its sender was never answered"
        assert (told[0].accepted, told[0].result) == (rec.accepted, json.loads(rec.outcome)), (
            f"{where}: {cid} recorded {rec.outcome!r}, its sender was told {told[0]}"
        )


def _rows(rows: Mapping[int, Any]) -> dict[int, tuple[Any, ...]]:
    return {k: dataclasses.astuple(v) for k, v in rows.items()}
