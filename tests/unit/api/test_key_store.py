"""The key cache: answers are remembered, but never past a revocation the process can see."""

from __future__ import annotations

import pytest

from api.keys import KeyStore, Role, digest


class FakeKeys:
    """A key table in memory: key id -> (digest, role, revoked)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[bytes, str, bool]] = {}
        self.lookups = 0

    def add(self, key_id: str, role: Role) -> str:
        token = f"ll_{key_id}_secret{key_id}"
        self.rows[key_id] = (digest(token), role.value, False)
        return token

    def revoke(self, key_id: str) -> None:
        d, role, _ = self.rows[key_id]
        self.rows[key_id] = (d, role, True)

    def lookup(self, key_id: str) -> tuple[bytes, str] | None:
        self.lookups += 1
        row = self.rows.get(key_id)
        return (row[0], row[1]) if row and not row[2] else None

    def revocations(self) -> int:
        return sum(1 for r in self.rows.values() if r[2])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_known_token_is_looked_up_once_while_nothing_is_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("api.keys.time.monotonic", clock)
    keys = FakeKeys()
    token = keys.add("aaaaaaaaaaaa", Role.AUDITOR)
    store = KeyStore(keys.lookup, revocations=keys.revocations)
    for _ in range(5):
        assert store.role_of(token) is Role.AUDITOR
        clock.now += 2
    assert keys.lookups == 1


def test_another_process_sees_a_revocation_within_the_probe_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("api.keys.time.monotonic", clock)
    keys = FakeKeys()
    token = keys.add("bbbbbbbbbbbb", Role.OPERATOR)
    elsewhere = KeyStore(keys.lookup, revocations=keys.revocations, probe_s=1.0)
    assert elsewhere.role_of(token) is Role.OPERATOR
    keys.revoke("bbbbbbbbbbbb")  # by another process: this one is not told
    clock.now += 0.5
    assert elsewhere.role_of(token) is Role.OPERATOR  # within the bound, the cache may answer
    clock.now += 0.6
    assert elsewhere.role_of(token) is None


def test_the_revoking_process_refuses_the_key_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("api.keys.time.monotonic", clock)
    keys = FakeKeys()
    token = keys.add("cccccccccccc", Role.ADMIN)
    here = KeyStore(keys.lookup, revocations=keys.revocations, probe_s=60.0)
    assert here.role_of(token) is Role.ADMIN
    keys.revoke("cccccccccccc")
    here.invalidate()
    assert here.role_of(token) is None


def test_malformed_and_unknown_tokens_have_no_role() -> None:
    keys = FakeKeys()
    keys.add("dddddddddddd", Role.ADMIN)
    store = KeyStore(keys.lookup)
    assert store.role_of("") is None
    assert store.role_of("Bearer x") is None
    assert store.role_of("ll_dddddddddddd_wrong") is None
