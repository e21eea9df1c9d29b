"""The spill file of the AML engine's cold windows: what is saved comes back exactly once,
and compaction keeps every live state while the file stays within twice their size."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.aml_windows import SpillFile

ACCOUNTS = [f"ledger:{i}" for i in range(8)]
operations = st.lists(
    st.tuples(
        st.sampled_from(["save", "take", "drop", "peek"]),
        st.sampled_from(ACCOUNTS),
        st.binary(min_size=0, max_size=300),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_the_spill_file_keeps_what_a_dict_would(ops: list[tuple[str, str, bytes]]) -> None:
    spill, model = SpillFile(compact_from_bytes=256), {}
    for op, account, data in ops:
        if op == "save" and account not in model:
            spill.save([(account, data)])
            model[account] = data
        elif op == "take":
            assert spill.take(account) == model.pop(account, None)
        elif op == "peek":
            assert spill.peek(account) == model.get(account)
        elif op == "drop":
            spill.drop([account])
            model.pop(account, None)
    assert dict(spill.items()) == model and len(spill) == len(model)
    assert sorted(spill.accounts()) == sorted(model)


def test_compaction_keeps_the_live_states_and_bounds_the_file() -> None:
    rng = random.Random(7)
    spill, model = SpillFile(compact_from_bytes=4096), {}
    for _ in range(5_000):
        account = f"a{rng.randrange(50)}"
        if account in model:
            assert spill.take(account) == model.pop(account)
        else:
            model[account] = rng.randbytes(rng.randrange(10, 200))
            spill.save([(account, model[account])])
    live = sum(map(len, model.values()))
    assert spill.compactions > 0
    assert spill.size_bytes() <= max(2 * live, live + 4096) + 200
    assert dict(spill.items()) == model
