"""Roll-up balances of a chart of accounts.

Definition
    A chart is a forest: each account names its parent (0: a root). An account's roll-up is
    its own four balances plus its descendants' own balances.

Guarantees
    * ``rollups(own, parents)[a]`` is the sum of ``own`` over ``a``'s subtree, so the roll-ups
      of the roots sum to the sum of every account's own balances.
    * Iterative: a deep chart never exhausts the stack; a parent outside ``own`` (not in
      the chart being rolled up) makes its child a root.
"""

from __future__ import annotations

from collections.abc import Mapping

Balances = tuple[int, int, int, int]  # debits pending, debits posted, credits pending, ... posted


def rollups(own: Mapping[int, Balances], parents: Mapping[int, int]) -> dict[int, Balances]:
    """Each account's own balances plus every descendant's."""
    children: dict[int, list[int]] = {a: [] for a in own}
    for account, parent in parents.items():
        if account in own and parent in children and parent != account:
            children[parent].append(account)
    out: dict[int, Balances] = {}
    for root in own:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if node in out:
                continue
            if done:
                dp, dpo, cp, cpo = own[node]
                for child in children[node]:
                    c = out[child]
                    dp, dpo, cp, cpo = dp + c[0], dpo + c[1], cp + c[2], cpo + c[3]
                out[node] = (dp, dpo, cp, cpo)
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children[node] if c not in out)
    return out


def children_of(own: Mapping[int, Balances], parents: Mapping[int, int]) -> dict[int, list[int]]:
    """Each account's children in the chart, in id order."""
    children: dict[int, list[int]] = {a: [] for a in own}
    for account in sorted(parents):
        parent = parents[account]
        if account in own and parent in children and parent != account:
            children[parent].append(account)
    return children
