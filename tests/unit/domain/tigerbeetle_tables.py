# ruff: noqa: E501
"""TigerBeetle's own state-machine test tables, vendored.

From ``src/state_machine_tests.zig`` of tigerbeetle/tigerbeetle at commit 52ad553f
(Apache License 2.0, Copyright TigerBeetle, Inc.): the ``check(...)`` tables of every test
that creates accounts and transfers or queries them, with the Zig comments left out. The
format is TigerBeetle's; ``tests/unit/domain/tigerbeetle_runner.py`` reads it.
"""

TABLES: dict[str, list[str]] = {
    "create_accounts": [
        """\
account A1  0  0  0  0 U2 U2 U2 _ L3 C4 _   _   _ _ _ _ _ _ created
account A0  1  1  1  1  _  _  _ 1 L0 C0 _ D<C C<D _ _ _ 1 1 timestamp_must_be_zero
account A0  1  1  1  1  _  _  _ 1 L0 C0 _ D<C C<D _ _ _ 1 _ reserved_field
account A0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ 1 _ reserved_flag
account A0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ _ _ id_must_not_be_zero
account -0  1  1  1  1  _  _  _ _ L0 C0 _ D<C C<D _ _ _ _ _ id_must_not_be_int_max
account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ exists_with_different_flags
account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _   _ C<D _ _ _ _ _ exists_with_different_flags
account A1  0  0  0  0 U1 U1 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_128
account A1  0  0  0  0 U2 U1 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_64
account A1  0  0  0  0 U2 U2 U1 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_user_data_32
account A1  0  0  0  0 U2 U2 U2 _ L9 C9 _   _   _ _ _ _ _ _ exists_with_different_ledger
account A1  0  0  0  0 U2 U2 U2 _ L3 C9 _   _   _ _ _ _ _ _ exists_with_different_code
account A1  0  0  0  0 U2 U2 U2 _ L3 C4 _   _   _ _ _ _ _ _ exists
account A2  1  1  1  1 U1 U1 U1 _ L0 C0 _ D<C C<D _ _ _ _ _ flags_are_mutually_exclusive
account A2  1  1  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ debits_pending_must_be_zero
account A2  0  1  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ debits_posted_must_be_zero
account A2  0  0  1  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ credits_pending_must_be_zero
account A2  0  0  0  1 U1 U1 U1 _ L9 C9 _ D<C   _ _ _ _ _ _ credits_posted_must_be_zero
account A2  0  0  0  0 U1 U1 U1 _ L0 C0 _ D<C   _ _ _ _ _ _ ledger_must_not_be_zero
account A2  0  0  0  0 U1 U1 U1 _ L9 C0 _ D<C   _ _ _ _ _ _ code_must_not_be_zero
commit create_accounts

lookup_account -0 _
lookup_account A0 _
lookup_account A1 0 0 0 0 _
lookup_account A2 _
commit lookup_accounts
""",
    ],
    "create_accounts: empty": [
        """\
commit create_transfers
""",
    ],
    "linked accounts": [
        """\
account A7  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A1  0  0  0  0  _  _  _ _ L1 C2 LNK   _   _ _ _ _ _ _ exists_with_different_flags
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A1  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ exists_with_different_ledger
account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

lookup_account A7 0 0 0 0 _
lookup_account A1 0 0 0 0 _
lookup_account A2 0 0 0 0 _
lookup_account A3 0 0 0 0 _
lookup_account A4 0 0 0 0 _
commit lookup_accounts
""",
        """\
account A7  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ linked_event_failed
commit create_accounts

lookup_account A7 0 0 0 0 _
lookup_account A1 _
lookup_account A2 _
lookup_account A3 _
commit lookup_accounts
""",
    ],
    "linked_event_chain_open": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A5  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
commit create_accounts

lookup_account A1 0 0 0 0 _
lookup_account A2 0 0 0 0 _
lookup_account A3 0 0 0 0 _
lookup_account A4 _
lookup_account A5 _
commit lookup_accounts
""",
    ],
    "linked_event_chain_open for an already failed batch": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_failed
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ exists_with_different_flags
account A3  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
commit create_accounts

lookup_account A1 0 0 0 0 _
lookup_account A2 _
lookup_account A3 _
commit lookup_accounts
""",
    ],
    "linked_event_chain_open for a batch of 1": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1 LNK   _   _ _ _ _ _ _ linked_event_chain_open
commit create_accounts

lookup_account A1 _
commit lookup_accounts
""",
    ],
    "create_transfers/lookup_transfers": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L2 C2   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A5  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
commit create_accounts
setup A1  100   200    0     0
setup A2    0     0    0     0
setup A3    0     0  110   210
setup A4   20  -700    0  -500
setup A5    0 -1000   10 -1100
tick -3 seconds
transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _ _    _   P1 1 timestamp_must_be_zero
transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _ _    _   P1 _ reserved_flag
transfer   T0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ id_must_not_be_zero
transfer   -0 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ id_must_not_be_int_max
transfer   T1 A0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_id_must_not_be_zero
transfer   T1 -0 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_id_must_not_be_int_max
transfer   T1 A8 A0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_id_must_not_be_zero
transfer   T1 A8 -0    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_id_must_not_be_int_max
transfer   T1 A8 A8    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ accounts_must_be_different
transfer   T1 A8 A9    9  T1  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ pending_id_must_be_zero
transfer   T1 A8 A9    9   _  _  _  _    1 L0 C0   _   _   _   _   _   _ _  _   _   _ _ timeout_reserved_for_pending_transfer
transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _   _   _   _   _   _ _  CDR _   _ _ closing_transfer_must_be_pending
transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _   _   _   _   _   _ _  _   CCR _ _ closing_transfer_must_be_pending
transfer   T1 A8 A9    9   _  _  _  _    _ L0 C0   _ PEN   _   _   _   _ _  _   _   _ _ ledger_must_not_be_zero
transfer   T1 A8 A9    9   _  _  _  _    _ L9 C0   _ PEN   _   _   _   _ _  _   _   _ _ code_must_not_be_zero
transfer   T1 A8 A9    9   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ debit_account_not_found
transfer   T1 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
transfer   T2 A1 A9    9   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ credit_account_not_found
transfer   T2 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
commit create_transfers

transfer   T3 A1 A2    1   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ accounts_must_have_the_same_ledger
transfer   T3 A1 A3    1   _  _  _  _    _ L9 C1   _ PEN   _   _   _   _ _  _   _   _ _ transfer_must_have_the_same_ledger_as_accounts
transfer   T3 A1 A3  -99   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits_pending
transfer   T3 A1 A3 -109   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits_pending
transfer   T3 A1 A3 -199   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits_posted
transfer   T3 A1 A3 -209   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits_posted
transfer   T3 A1 A3 -299   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_debits
transfer   T3 A1 A3 -319   _  _  _  _    _ L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_credits
transfer   T3 A4 A5  199   _  _  _  _  999 L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ overflows_timeout
transfer   T3 A4 A5  199   _  _  _  _    _ L1 C1   _   _   _   _   _   _ _  _   _   _ _ exceeds_credits
transfer   T3 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed
transfer   T4 A4 A5   91   _  _  _  _    _ L1 C1   _   _   _   _   _   _ _  _   _   _ _ exceeds_debits
transfer   T4 A1 A3  123   _  _  _  _    _ L1 C1   _ _     _   _   _   _ _  _   _   _ _ id_already_failed

transfer   T5 A1 A3  123   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _ _  _   _   _ _ created
commit create_transfers
transfer   T5 A1 A3  123   _  _  _  _    1 L2 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_ledger
transfer   T5 A1 A3   -0   _ U1 U1 U1    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ exists_with_different_flags
transfer   T5 A3 A1   -0   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_debit_account_id
transfer   T5 A1 A4   -0   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_credit_account_id
transfer   T5 A1 A3   -0   _ U1 U1 U1    1 L1 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_amount
transfer   T5 A1 A3  123   _ U1 U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_128
transfer   T5 A1 A3  123   _  _ U1 U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_64
transfer   T5 A1 A3  123   _  _  _ U1    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_user_data_32
transfer   T5 A1 A3  123   _  _  _  _    2 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_timeout
transfer   T5 A1 A3  123   _  _  _  _    1 L1 C2   _ PEN   _   _   _   _ _  _ _ _ _ exists_with_different_code
transfer   T5 A1 A3  123   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _ _  _ _ _ _ exists

transfer   T6 A3 A1    7   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
transfer   T7 A1 A3    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
transfer   T8 A1 A3    0   _  _  _  _    _ L1 C2   _   _   _   _   _   _ _  _ _ _ _ created
commit create_transfers

lookup_account A1 223 203   0   7  _
lookup_account A3   0   7 233 213  _
commit lookup_accounts

lookup_transfer T5 exists true
lookup_transfer T6 exists true
lookup_transfer T7 exists true
lookup_transfer T8 exists true
lookup_transfer -0 exists false
commit lookup_transfers
""",
    ],
    "create/lookup 2-phase transfers": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts
transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer   T2 A1 A2   15   _  _  _  _ 1000 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T3 A1 A2   15   _  _  _  _   50 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T4 A1 A2   15   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T5 A1 A2    7   _ U9 U9 U9   50 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T6 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T7 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
commit create_transfers
lookup_account A1 54 15  0  0  _
lookup_account A2  0  0 54 15  _
commit lookup_accounts
tick 1 seconds
transfer T101 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
transfer   T0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ 1 timestamp_must_be_zero
transfer   T0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ id_must_not_be_zero
transfer   -0 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ id_must_not_be_int_max
transfer T101 A1 A2   15  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ exists_with_different_flags
transfer T101 A1 A2   14  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T101 A1 A2    _  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T101 A1 A2   13  T3 U2 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_pending_id
transfer T101 A1 A2   13  T2 U2 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_128
transfer T101 A1 A2   13  T2 U1 U2 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_64
transfer T101 A1 A2   13  T2 U1 U1 U2    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_user_data_32
transfer T101 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _   _  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN POS VOI   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _ PEN   _ VOI   _   _  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _ BDR   _  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _ BDR BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _ POS   _   _ BCR  _ _ _ _ _ flags_are_mutually_exclusive
transfer T102 A8 A9   16  T0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_not_be_zero
transfer T102 A8 A9   16  -0 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_not_be_int_max
transfer T102 A8 A9   16 102 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_id_must_be_different
transfer T102 A8 A9   16 103 U2 U2 U2   50 L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ timeout_reserved_for_pending_transfer
commit create_transfers
transfer T102 A8 A9   16 103 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_not_found
transfer T102 A1 A2   13   _ U1 U1 U1    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ id_already_failed

transfer T103 A8 A9   16  T1 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_not_pending
transfer T103 A8 A9   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_debit_account_id
transfer T103 A1 A9   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_credit_account_id
transfer T103 A1 A2   16  T3 U2 U2 U2    _ L6 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_ledger
transfer T103 A1 A2   16  T3 U2 U2 U2    _ L1 C7   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_code
transfer T103 A1 A2   16  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ exceeds_pending_transfer_amount
transfer T103 A1 A2   14  T3 U2 U2 U2    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_has_different_amount
transfer T103 A1 A2   13  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_already_posted
transfer T103 A1 A2   15  T3 U1 U1 U1    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ created
transfer T104 A1 A2   13  T3 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_already_voided
transfer T104 A1 A2   15  T4 U1 U1 U1    _ L1 C1   _   _   _ VOI   _   _  _ _ _ _ _ pending_transfer_expired
commit create_transfers
transfer T101 A0 A0   14  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T101 A0 A0   14  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T101 A0 A0   12  T2 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount

transfer T105 A0 A0    8  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exceeds_pending_transfer_amount
transfer T105 A0 A0   -0  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created
transfer T105 A0 A0    7  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T105 A0 A0    7  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T105 A0 A0   -0  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T105 A0 A0    8  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T105 A0 A0    6  T5 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T105 A0 A0    0  T5 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount

transfer T106 A0 A0   -1  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exceeds_pending_transfer_amount
transfer T106 A0 A0   -0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
transfer T106 A0 A0   -0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T106 A0 A0    1  T6 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T106 A0 A0    2  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
transfer T106 A0 A0    0  T6 U0 U0 U0    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount

transfer T107 A0 A0    0  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created
transfer T107 A0 A0    0  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists
transfer T107 A0 A0    1  T7 U0 U0 U0    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ exists_with_different_amount
commit create_transfers
lookup_account A1  0 36  0  0  _
lookup_account A2  0  0  0 36  _
commit lookup_accounts
lookup_transfer T101 amount 13
lookup_transfer T105 amount 7
lookup_transfer T106 amount 1
lookup_transfer T107 amount 0
commit lookup_transfers
""",
    ],
    "create/lookup 2-phase transfers (amount=maxInt)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts
transfer T1 A1 A2   -0   _  _  _  _ _ L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2   -0  T1  _  _  _ _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2   -0  T1  _  _  _ _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ exists
commit create_transfers
lookup_account A1  0 -0  0  0 _
lookup_account A2  0  0  0 -0 _
commit lookup_accounts

lookup_transfer T1 amount -0
lookup_transfer T2 amount -0
commit lookup_transfers
""",
    ],
    "create/lookup expired transfers": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts
transfer   T1 A1 A2   10   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T2 A1 A2   11   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T3 A1 A2   12   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer   T4 A1 A2   13   _  _  _  _    3 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
commit create_transfers
lookup_account A1 46  0  0  0  _
lookup_account A2  0  0 46  0  _
commit lookup_accounts
tick 1 seconds
lookup_account A1 35  0  0  0  _
lookup_account A2  0  0 35  0  _
commit lookup_accounts
tick 1 seconds
lookup_account A1 23  0  0  0  _
lookup_account A2  0  0 23  0  _
commit lookup_accounts
tick 1 seconds
lookup_account A1 10  0  0  0  _
lookup_account A2  0  0 10  0  _
commit lookup_accounts
transfer T101 A1 A2   10  T1 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
transfer T102 A1 A2   11  T2 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
transfer T103 A1 A2   12  T3 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
transfer T104 A1 A2   13  T4 U1 U1 U1    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ pending_transfer_expired
commit create_transfers
lookup_account A1  0 10  0  0  _
lookup_account A2  0  0  0 10  _
commit lookup_accounts
lookup_transfer T101 exists true
lookup_transfer T102 exists false
lookup_transfer T103 exists false
lookup_transfer T104 exists false
commit lookup_transfers
""",
    ],
    "create_transfers: empty": [
        """\
commit create_transfers
""",
    ],
    "create_transfers/lookup_transfers: failed transfer does not exist": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer   T2 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
commit create_transfers

lookup_account A1 0 15 0  0  _
lookup_account A2 0  0 0 15  _
commit lookup_accounts

lookup_transfer T1 exists true
lookup_transfer T2 exists false
commit lookup_transfers
""",
    ],
    "create_transfers: failed linked-chains are undone": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

transfer   T1 A1 A2   15   _  _  _  _    _ L1 C1 LNK   _   _   _   _   _  _ _ _ _ _ linked_event_failed
transfer   T2 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
commit create_transfers

transfer   T3 A1 A2   15   _  _  _  _    1 L1 C1 LNK PEN   _   _   _   _  _ _ _ _ _ linked_event_failed
transfer   T4 A1 A2   15   _  _  _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
commit create_transfers

lookup_account A1 0 0 0 0 _
lookup_account A2 0 0 0 0 _
commit lookup_accounts

lookup_transfer T1 exists false
lookup_transfer T2 exists false
lookup_transfer T3 exists false
lookup_transfer T4 exists false
commit lookup_transfers
""",
    ],
    "create_transfers: failed linked-chains are undone within a commit": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 0 0 0 20

transfer   T1 A1 A2   15   _ _   _  _    _ L1 C1 LNK   _   _   _   _   _  _ _ _ _ _ linked_event_failed
transfer   T2 A1 A2    5   _ _   _  _    _ L0 C1   _   _   _   _   _   _  _ _ _ _ _ ledger_must_not_be_zero
transfer   T3 A1 A2   15   _ _   _  _    _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 15 0 20  _
lookup_account A2 0  0 0 15  _
commit lookup_accounts

lookup_transfer T1 exists false
lookup_transfer T2 exists false
lookup_transfer T3 exists true
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit | balancing_credit (*_must_not_exceed_*)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 1  0 0 10
setup A2 0 10 2  0

transfer   T1 A1 A3  3     _  _  _  _    _ L2 C1   _   _   _   _ BDR   _  _ _ _ _ _ transfer_must_have_the_same_ledger_as_accounts
transfer   T1 A3 A2  3     _  _  _  _    _ L2 C1   _   _   _   _   _ BCR  _ _ _ _ _ transfer_must_have_the_same_ledger_as_accounts
transfer   T1 A1 A3  3     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T2 A1 A3 13     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T3 A3 A2  3     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T4 A3 A2 13     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T5 A1 A3  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T6 A1 A3  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T7 A3 A2  1     _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T8 A1 A2  1     _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T1 A1 A3    2   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount
transfer   T1 A1 A3    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount
transfer   T1 A1 A3    3   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists
transfer   T1 A1 A3    4   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists
transfer   T2 A1 A3    6   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists
transfer   T2 A1 A3    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exists_with_different_amount
transfer   T3 A3 A2    2   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount
transfer   T3 A3 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount
transfer   T3 A3 A2    3   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
transfer   T3 A3 A2    4   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
transfer   T4 A3 A2    5   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
transfer   T4 A3 A2    6   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists
transfer   T4 A3 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exists_with_different_amount
commit create_transfers

lookup_account A1 1  9 0 10  _
lookup_account A2 0 10 2  8  _
lookup_account A3 0  8 0  9  _
commit lookup_accounts

lookup_transfer T1 amount 3
lookup_transfer T2 amount 6
lookup_transfer T3 amount 3
lookup_transfer T4 amount 5
lookup_transfer T5 amount 0
lookup_transfer T6 amount 0
lookup_transfer T7 amount 0
lookup_transfer T8 amount 0
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit | balancing_credit (*_must_not_exceed_*, exceeds_*)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 0 0 0 4
setup A2 0 5 0 0
setup A3 0 4 0 0
setup A4 0 0 0 5

transfer   T1 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ exceeds_credits
transfer   T2 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T3 A4 A3   10   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ exceeds_debits
transfer   T4 A4 A3   10   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 4 0 4 _
lookup_account A2 0 5 0 4 _
lookup_account A3 0 4 0 4 _
lookup_account A4 0 4 0 5 _
commit lookup_accounts

lookup_transfer T1 exists false
lookup_transfer T2 amount 4
lookup_transfer T3 exists false
lookup_transfer T4 amount 4
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit | balancing_credit (¬*_must_not_exceed_*)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 1  0 0 10
setup A2 0 10 2  0

transfer   T1 A3 A1   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T2 A3 A1   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T3 A2 A3   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T4 A1 A3   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T5 A1 A3   99   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T6 A3 A2   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T7 A3 A2   99   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
commit create_transfers

lookup_account A1 1  9 0 10 _
lookup_account A2 0 10 2  8 _
lookup_account A3 0  8 0  9 _
commit lookup_accounts

lookup_transfer T1 amount 0
lookup_transfer T2 amount 0
lookup_transfer T3 amount 0
lookup_transfer T4 amount 9
lookup_transfer T5 amount 0
lookup_transfer T6 amount 8
lookup_transfer T7 amount 0
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit | balancing_credit (amount=0)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 1  0 0 10
setup A2 0 10 2  0
setup A3 0 10 2  0

transfer   T1 A1 A4    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T2 A4 A2    0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
transfer   T3 A1 A4    0   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T4 A4 A3    0   _  _  _  _    _ L1 C1   _ PEN   _   _   _ BCR  _ _ _ _ _ created
transfer   T5 A4 A1    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T6 A2 A4    1   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
commit create_transfers

lookup_account A1 1  0 0 10 _
lookup_account A2 0 10 2  0 _
lookup_account A3 0 10 2  0 _
lookup_account A4 0  0 0  0 _
commit lookup_accounts

lookup_transfer T1 amount 0
lookup_transfer T2 amount 0
lookup_transfer T3 amount 0
lookup_transfer T4 amount 0
lookup_transfer T5 amount 0
lookup_transfer T6 amount 0
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit | balancing_credit (amount=maxInt, balance≈maxInt)": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
commit create_accounts

setup A1 0  0 0 -1
setup A4 0 -1 0  0

transfer   T1 A1 A2   -0   _  _  _  _    _ L1 C1   _   _   _   _ BDR   _  _ _ _ _ _ created
transfer   T2 A3 A4   -0   _  _  _  _    _ L1 C1   _   _   _   _   _ BCR  _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 -1  0 -1 _
lookup_account A2 0  0  0 -1 _
lookup_account A3 0 -1  0  0 _
lookup_account A4 0 -1  0 -1 _
commit lookup_accounts

lookup_transfer T1 amount -1
lookup_transfer T2 amount -1
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit & balancing_credit": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 0  0 0 20
setup A2 0 10 0  0
setup A3 0 99 0  0

transfer   T1 A1 A2    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T2 A1 A2   12   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T3 A1 A2    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T4 A1 A3   12   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
transfer   T5 A1 A3    1   _  _  _  _    _ L1 C1   _   _   _   _ BDR BCR  _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 20 0 20  _
lookup_account A2 0 10 0 10  _
lookup_account A3 0 99 0 10  _
commit lookup_accounts

lookup_transfer T1 amount  1
lookup_transfer T2 amount  9
lookup_transfer T3 amount  0
lookup_transfer T4 amount 10
lookup_transfer T5 amount  0
commit lookup_transfers
""",
    ],
    "create_transfers: balancing_debit/balancing_credit + pending": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
commit create_accounts

setup A1 0  0 0 10
setup A2 0 10 0  0

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created
transfer   T2 A1 A2   13   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created
transfer   T3 A1 A2    1   _  _  _  _    _ L1 C1   _ PEN   _   _ BDR   _  _ _ _ _ _ created
commit create_transfers

lookup_account A1 10  0  0 10  _
lookup_account A2  0 10 10  0  _
commit lookup_accounts

transfer   T4 A1 A2    3  T1  _  _  _    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
transfer   T5 A1 A2    5  T2  _  _  _    _ L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
commit create_transfers

lookup_transfer T1 amount  3
lookup_transfer T2 amount  7
lookup_transfer T3 amount  0
lookup_transfer T4 amount  3
lookup_transfer T5 amount  5
commit lookup_transfers
""",
    ],
    "create_transfers: multiple debits, single credit, balancing debits": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A5  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A6  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 0 0 0 40
setup A2 0 0 0 40
setup A3 0 0 0 21

transfer T1 A4 A5  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ created
transfer T2 A1 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
transfer T3 A2 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
transfer T4 A3 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ created
transfer T5 A4 A6  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ created
transfer T6 A5 A4   -0   _  _  _  _    0 L1 C1   _ _ _ _   _ BCR _ _ _ _ _ created
commit create_transfers

lookup_account A1 0  40 0  40 _
lookup_account A2 0  40 0  40 _
lookup_account A3 0  20 0  21 _
lookup_account A4 0 200 0 200 _
lookup_account A5 0 100 0 100 _
lookup_account A6 0   0 0 100 _
commit lookup_accounts
""",
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A5  0  0  0  0  _  _  _ _ L1 C1   _ D<C   _ _ _ _ _ _ created
account A6  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts

setup A1 0 0 0 40
setup A2 0 0 0 40
setup A3 0 0 0 19

transfer T1 A4 A5  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ linked_event_failed
transfer T2 A1 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
transfer T3 A2 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
transfer T4 A3 A4  100   _  _  _  _    0 L1 C1 LNK _ _ _ BDR BCR _ _ _ _ _ linked_event_failed
transfer T5 A4 A6  100   _  _  _  _    0 L1 C1 LNK _ _ _   _   _ _ _ _ _ _ linked_event_failed
transfer T6 A5 A4   -0   _  _  _  _    0 L1 C1   _ _ _ _   _ BCR _ _ _ _ _ exceeds_credits
commit create_transfers
""",
    ],
    "create_transfers: per-transfer balance invariant": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _ C<D _ _ _ _ _ created
commit create_accounts

setup A2 0 40 0 0

transfer T1 A1 A2 41   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ linked_event_failed
transfer T2 A2 A3  1   _  _  _  _    0 L1 C1 LNK PEN _   _ BDR   _ _ _ _ _ _ exceeds_debits
transfer T3 A2 A3  0  T2  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ linked_event_failed
commit create_transfers

transfer T1 A1 A2  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
transfer T2 A2 A3  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ id_already_failed
transfer T3 A2 A3  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
commit create_transfers

transfer T4 A1 A2 40   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ created
transfer T5 A2 A3  1   _  _  _  _    0 L1 C1 LNK PEN _   _ BDR   _ _ _ _ _ _ created
transfer T6 A2 A3  0  T5  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 40 0  0 _
lookup_account A2 0 40 0 40 _
lookup_account A3 0  0 0  0 _
commit lookup_accounts
""",
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   D<C _ _ _ _ _ _ created
commit create_accounts

setup A1 0 0 0 40

transfer T1 A1 A2 41   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ linked_event_failed
transfer T2 A3 A1  1   _  _  _  _    0 L1 C1 LNK PEN _   _   _ BCR _ _ _ _ _ exceeds_credits
transfer T3 A3 A1  0  T2  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ linked_event_failed
commit create_transfers

transfer T1 A1 A2  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
transfer T2 A3 A1  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ id_already_failed
transfer T3 A3 A1  0   _  _  _  _    0 L1 C1   _   _ _   _   _   _ _ _ _ _ _ created
commit create_transfers

transfer T4 A1 A2 40   _  _  _  _    0 L1 C1 LNK   _ _   _   _   _ _ _ _ _ _ created
transfer T5 A3 A1  1   _  _  _  _    0 L1 C1 LNK PEN _   _   _ BCR _ _ _ _ _ created
transfer T6 A3 A1  0  T5  _  _  _    0 L1 C1   _   _ _ VOI   _   _ _ _ _ _ _ created
commit create_transfers

lookup_account A1 0 40 0 40 _
lookup_account A2 0  0 0 40 _
lookup_account A3 0  0 0  0 _
commit lookup_accounts
""",
    ],
    "imported events: imported batch": [
        """\
tick 10 nanoseconds
account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 1 created
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ _   _ _ 0 imported_event_expected
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 2 created
commit create_accounts
account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ _   _ _ 0 created
account A4  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 3 imported_event_not_expected
commit create_accounts

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 10 created
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  _   _ _ _  0 imported_event_expected
commit create_transfers
transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  _   _  _ _ 0 created
transfer   T4 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _  _ _ 0 imported_event_not_expected
commit create_transfers
""",
    ],
    "imported events: timestamp": [
        """\
tick 10 nanoseconds

account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  0 imported_event_timestamp_out_of_range
account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ -1 imported_event_timestamp_out_of_range
account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 99 imported_event_timestamp_must_not_advance
account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  2 created
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  1 imported_event_timestamp_must_not_regress
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  3 created
account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  9 created
commit create_accounts

account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 99 imported_event_timestamp_must_not_advance
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  1 exists
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  3 exists
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  4 exists
account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _  9 exists
commit create_accounts

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  0 imported_event_timestamp_out_of_range
transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ -1 imported_event_timestamp_out_of_range
transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 99 imported_event_timestamp_must_not_advance
transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  2 imported_event_timestamp_must_not_regress
transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  3 imported_event_timestamp_must_not_regress
transfer   T1 A3 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 imported_event_timestamp_must_postdate_debit_account
transfer   T1 A1 A3    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 imported_event_timestamp_must_postdate_credit_account
transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 created
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  3 imported_event_timestamp_must_not_regress
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  5 created
commit create_transfers

transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 99 imported_event_timestamp_must_not_advance
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  4 exists
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  5 exists
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _  6 exists
commit create_transfers

transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _   _   _   _   _   _  IMP _ _ _ 10 created
commit create_transfers

account A4  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 10 imported_event_timestamp_must_not_regress
commit create_accounts
""",
    ],
    "imported events: pending transfers": [
        """\
tick 10 nanoseconds

account A1  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 1 created
account A2  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 2 created
commit create_accounts

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 3 created
transfer   T2 A1 A2    4   _  _  _  _    1 L1 C2   _     PEN _   _   _   _  IMP _ _ _ 4 imported_event_timeout_must_be_zero
transfer   T2 A1 A2    4   _  _  _  _    0 L1 C2   _     PEN _   _   _   _  IMP _ _ _ 4 created
commit create_transfers

lookup_account A1 4  3  0  0  _
lookup_account A2 0  0  4  3  _
commit lookup_accounts

transfer   T3 A1 A2    4  T2 _  _   _    _ L1 C2   _     _   POS _   _   _  IMP _ _ _ 5 created
commit create_transfers

lookup_account A1 0  7  0  0  _
lookup_account A2 0  0  0  7  _
commit lookup_accounts

lookup_transfer T1 timestamp 3
lookup_transfer T2 timestamp 4
lookup_transfer T3 timestamp 5
commit lookup_transfers
""",
    ],
    "imported events: linked chain": [
        """\
tick 10 nanoseconds

account A1  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 1 linked_event_failed
account A2  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 2 linked_event_failed
account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 0 imported_event_timestamp_out_of_range
commit create_accounts

account A1  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 1 created
account A2  0  0  0  0  _  _  _ _ L1 C1   LNK  _  _  _ IMP _ _ 2 created
account A3  0  0  0  0  _  _  _ _ L1 C1   _    _  _  _ IMP _ _ 3 created
commit create_accounts

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 4 linked_event_failed
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 5 linked_event_failed
transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 0 imported_event_timestamp_out_of_range
commit create_transfers

transfer   T1 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 4 created
transfer   T2 A1 A2    3   _  _  _  _    _ L1 C2   LNK   _   _   _   _   _  IMP _ _ _ 5 created
transfer   T3 A1 A2    3   _  _  _  _    _ L1 C2   _     _   _   _   _   _  IMP _ _ _ 6 created
commit create_transfers

lookup_account A1 0  9  0  0  _
lookup_account A2 0  0  0  9  _
lookup_account A3 0  0  0  0  _
commit lookup_accounts

lookup_transfer T1 timestamp 4
lookup_transfer T2 timestamp 5
lookup_transfer T3 timestamp 6
commit lookup_transfers
""",
    ],
    "create_accounts: closed accounts": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _  CLSD _ _ created
commit create_accounts

lookup_account A1  0  0  0   0  CLSD
commit lookup_accounts
""",
    ],
    "create_transfers: closing accounts": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _  _  _ _ _ _ _ _ created
commit create_accounts

transfer   T1  A1 A2   15   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ created
transfer   T2  A1 A2    0   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  CDR _   _ _ closing_transfer_must_be_pending
transfer   T2  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR _   _ _ created
transfer   T2  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR _   _ _ exists
transfer   T3  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ debit_account_already_closed
transfer   T3  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
transfer   T4  A2 A1    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ credit_account_already_closed
transfer   T4  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
commit create_transfers

lookup_account A1  0 15  0   0  CLSD
lookup_account A2  0  0  0  15  _
commit lookup_accounts
transfer   T5  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   POS _   _   _  _  _   _   _ _ debit_account_already_closed
transfer   T5  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ id_already_failed

transfer   T6  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ created
transfer   T6  A1 A2    0   T2 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ exists
transfer   T7  A1 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ created
commit create_transfers

lookup_account A1  0 20  0   0  _
lookup_account A2  0  0  0  20  _
commit lookup_accounts

transfer   T8  A1 A2   10   _  _   _  _    1 L1 C1   _   PEN _   _   _   _  _  _   _   _ _ created
transfer   T9  A1 A2   10   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  _   _   _ _ created
transfer   T10 A1 A2    0   _  _   _  _    2 L1 C1   _   PEN _   _   _   _  _  _   CCR _ _ created
transfer   T10 A1 A2    0   _  _   _  _    2 L1 C1   _   PEN _   _   _   _  _  _   CCR _ _ exists
transfer   T11 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   POS _   _   _  _  _   _   _ _ credit_account_already_closed
transfer   T11 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ id_already_failed

transfer   T12 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ created
transfer   T12 A1 A2   10   T9 _   _  _    _ L1 C1   _   _   _   VOI _   _  _  _   _   _ _ exists
commit create_transfers

lookup_account A1 10 20  0   0  _
lookup_account A2  0  0 10  20  CLSD
commit lookup_accounts

tick 1 seconds
lookup_account A1  0 20  0   0  _
lookup_account A2  0  0  0  20  CLSD
commit lookup_accounts

tick 1 seconds
lookup_account A1  0 20  0   0  _
lookup_account A2  0  0  0  20  _
commit lookup_accounts

transfer   T13  A1 A2    0   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  CDR CCR _ _ closing_transfer_must_be_pending
transfer   T13  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR CCR _ _ created
transfer   T13  A1 A2    0   _  _   _  _    0 L1 C1   _   PEN _   _   _   _  _  CDR CCR _ _ exists
transfer   T14  A1 A3    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ debit_account_already_closed
transfer   T14  A1 A3    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
transfer   T15  A3 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ credit_account_already_closed
transfer   T15  A3 A2    5   _  _   _  _    _ L1 C1   _   _   _   _   _   _  _  _   _   _ _ id_already_failed
commit create_transfers

lookup_account A1  0 20  0   0  CLSD
lookup_account A2  0  0  0  20  CLSD
commit lookup_accounts

transfer   T16 A1 A3    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  CDR _   _ _ debit_account_already_closed
transfer   T16 A1 A3    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  CDR _   _ _ id_already_failed
transfer   T17 A3 A2    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  _   CCR _ _ credit_account_already_closed
transfer   T17 A3 A2    0   _  _   _  _    0 L1 C1   _   PEN   _   _   _   _  _  _   CCR _ _ id_already_failed
commit create_transfers
""",
    ],
    "get_account_transfers: single-phase": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
commit create_accounts

transfer T1 A1 A2   10   _  U1000  U10  U1 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer T2 A2 A1   11   _  U1001  U10  U2 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
transfer T3 A1 A2   12   _  U1000  U20  U2 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer T4 A2 A1   13   _  U1001  U20  U1 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_transfers A1 _ _ _ _ _  _ 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T2
get_account_transfers_result T3
get_account_transfers_result T4
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _  _  2 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T2
commit get_account_transfers

get_account_transfers A1 _ _ _ _  T3 _ 10 DR CR  _
get_account_transfers_result T3
get_account_transfers_result T4
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _ T2 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T2
commit get_account_transfers

get_account_transfers A1 _ _ _ _ T2 T3 10 DR CR  _
get_account_transfers_result T2
get_account_transfers_result T3
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _  _ 10 DR CR REV
get_account_transfers_result T4
get_account_transfers_result T3
get_account_transfers_result T2
get_account_transfers_result T1
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _  _ 10 DR  _  _
get_account_transfers_result T1
get_account_transfers_result T3
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _  _ 10  _ CR  _
get_account_transfers_result T2
get_account_transfers_result T4
commit get_account_transfers

get_account_transfers A1 U1001 _ _ _ _  _ 10 DR CR  _
get_account_transfers_result T2
get_account_transfers_result T4
commit get_account_transfers

get_account_transfers A1 _ U10 _ _ _  _ 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T2
commit get_account_transfers

get_account_transfers A1 _ _ U1 _ _  _ 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T4
commit get_account_transfers

get_account_transfers A1 _ _ _ C1 _  _ 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T3
commit get_account_transfers

get_account_transfers A1 U1000 U10 U1 C1 T1 T3 10 DR CR  _
get_account_transfers_result T1
commit get_account_transfers

get_account_transfers A1 U1000 U10 U1 C1 T1 T3 10 DR _  _
get_account_transfers_result T1
commit get_account_transfers

get_account_transfers A2 U1000 U10 U1 C1 T1 T3 10 _ CR  _
get_account_transfers_result T1
commit get_account_transfers

get_account_transfers A1 U1000 U20 U2 C2 _ _ 10 DR CR  _
commit get_account_transfers
""",
    ],
    "get_account_transfers: two-phase": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
commit create_accounts

transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_transfers A1 _ _ _ _ _ _ 10 DR CR  _
get_account_transfers_result T1
get_account_transfers_result T2
commit get_account_transfers
""",
    ],
    "get_account_transfers: invalid filter": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ _ _ _ _ _ created
commit create_accounts

transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_transfers A3 _ _ _ _  _  _  10 DR CR _
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _  _  10 _  _  _
commit get_account_transfers

get_account_transfers A1 _ _ _ _  T2 T1 10 DR CR _
commit get_account_transfers

get_account_transfers A1 _ _ _ _  _   _  0 DR CR _
commit get_account_transfers

get_account_transfers A1 _ _ _ C1 _   _ 10 DR CR _
get_account_transfers_result T1
get_account_transfers_result T2
commit get_account_transfers
""",
    ],
    "get_account_balances: single-phase": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
commit create_accounts

transfer T1 A1 A2   10   _  U1000  U10  U1 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer T2 A2 A1   11   _  U1001  U10  U2 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
transfer T3 A1 A2   12   _  U1000  U20  U2 _ L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer T4 A2 A1   13   _  U1001  U20  U1 _ L1 C2   _   _   _   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_balances A1 _ _ _ _  _  _ 10 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T2 0 10 0 11
get_account_balances_result T3 0 22 0 11
get_account_balances_result T4 0 22 0 24
commit get_account_balances

get_account_balances A1 _ _ _ _  _  _ 2 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T2 0 10 0 11
commit get_account_balances

get_account_balances A1 _ _ _ _  T3 _ 10 DR CR  _
get_account_balances_result T3 0 22 0 11
get_account_balances_result T4 0 22 0 24
commit get_account_balances

get_account_balances A1 _ _ _ _  _ T2 10 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T2 0 10 0 11
commit get_account_balances

get_account_balances A1 _ _ _ _ T2 T3 10 DR CR  _
get_account_balances_result T2 0 10 0 11
get_account_balances_result T3 0 22 0 11
commit get_account_balances

get_account_balances A1 _ _ _ _  _  _ 10 DR CR REV
get_account_balances_result T4 0 22 0 24
get_account_balances_result T3 0 22 0 11
get_account_balances_result T2 0 10 0 11
get_account_balances_result T1 0 10 0  0
commit get_account_balances

get_account_balances A1 _ _ _ _  _  _ 10 DR  _  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T3 0 22 0 11
commit get_account_balances

get_account_balances A1 _ _ _ _  _  _ 10  _ CR  _
get_account_balances_result T2 0 10 0 11
get_account_balances_result T4 0 22 0 24
commit get_account_balances

get_account_balances A1 U1001 _ _ _ _  _ 10 DR CR  _
get_account_balances_result T2 0 10 0 11
get_account_balances_result T4 0 22 0 24
commit get_account_balances

get_account_balances A1 _ U10 _ _ _  _ 10 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T2 0 10 0 11
commit get_account_balances

get_account_balances A1 _ _ U1 _ _  _ 10 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T4 0 22 0 24
commit get_account_balances

get_account_balances A1 _ _ _ C1 _  _ 10 DR CR  _
get_account_balances_result T1 0 10 0  0
get_account_balances_result T3 0 22 0 11
commit get_account_balances

get_account_balances A1 U1000 U10 U1 C1 T1 T3 10 DR CR  _
get_account_balances_result T1 0 10 0  0
commit get_account_balances

get_account_balances A1 U1000 U10 U1 C1 T1 T3 10 DR _  _
get_account_balances_result T1 0 10 0  0
commit get_account_balances

get_account_balances A2 U1000 U10 U1 C1 T1 T3 10 _ CR  _
get_account_balances_result T1 0  0 0  10
commit get_account_balances

get_account_balances A1 U1000 U20 U2 C2 _ _ 10 DR CR  _
commit get_account_balances
""",
    ],
    "get_account_balances: two-phase": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
commit create_accounts

transfer T1 A1 A2    1   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2    1  T1  _  _  _    0 L1 C1   _   _ POS   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_balances A1 _ _ _ _ _ _ 10 DR CR  _
get_account_balances_result T1 1 0 0 0
get_account_balances_result T2 0 1 0 0
commit get_account_balances
""",
    ],
    "get_account_balances: invalid filter": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _ _ _ HIST _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _ _ _    _ _ _ _ _ created
commit create_accounts

transfer T1 A1 A2    2   _  _  _  _    0 L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
transfer T2 A1 A2    1   _  _  _  _    0 L1 C1   _   _   _   _   _   _  _ _ _ _ _ created
commit create_transfers

get_account_balances A3 _ _ _  _ _  _  10 DR CR _
commit get_account_balances

get_account_balances A2 _ _ _  _ _  _  10 DR CR _
commit get_account_balances

get_account_balances A1 _ _ _  _ _  _  10 _  _  _
commit get_account_balances

get_account_balances A1 _ _ _  _ T2 T1 10 DR CR _
commit get_account_balances

get_account_balances A1 _ _ _  _ _   _  0 DR CR _
commit get_account_balances

get_account_balances A1 _ _ _ C1 _  _ 10 DR CR  _
get_account_balances_result T1 0 2 0 0
get_account_balances_result T2 0 3 0 0
commit get_account_balances
""",
    ],
    "query_accounts": [
        """\
account A1  0  0  0  0 U1000 U10 U1 _ L1 C1 _   _   _ _ _ _ _ _ created
account A2  0  0  0  0 U1000 U11 U2 _ L2 C2 _   _   _ _ _ _ _ _ created
account A3  0  0  0  0 U1000 U10 U3 _ L3 C3 _   _   _ _ _ _ _ _ created
account A4  0  0  0  0 U1000 U11 U4 _ L4 C4 _   _   _ _ _ _ _ _ created
account A5  0  0  0  0 U2000 U10 U1 _ L3 C5 _   _   _ _ _ _ _ _ created
account A6  0  0  0  0 U2000 U11 U2 _ L2 C6 _   _   _ _ _ _ _ _ created
account A7  0  0  0  0 U2000 U10 U3 _ L1 C7 _   _   _ _ _ _ _ _ created
account A8  0  0  0  0 U1000 U10 U1 _ L1 C1 _   _   _ _ _ _ _ _ created
commit create_accounts
query_accounts U1000 U0 U0 L0 C0 _ _ L-0 _
query_accounts_result A1 _
query_accounts_result A2 _
query_accounts_result A3 _
query_accounts_result A4 _
query_accounts_result A8 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C0 _ _ L-0 REV
query_accounts_result A8 _
query_accounts_result A4 _
query_accounts_result A3 _
query_accounts_result A2 _
query_accounts_result A1 _
commit query_accounts
query_accounts U0 U10 U3 L0 C0 _ _ L-0 _
query_accounts_result A3 _
query_accounts_result A7 _
commit query_accounts
query_accounts U0 U10 U3 L0 C0 _ _ L-0 REV
query_accounts_result A7 _
query_accounts_result A3 _
commit query_accounts
query_accounts U0 U11 U2 L2 C0 _ _ L-0 _
query_accounts_result A2 _
query_accounts_result A6 _
commit query_accounts
query_accounts U0 U11 U2 L2 C0 _ _ L-0 REV
query_accounts_result A6 _
query_accounts_result A2 _
commit query_accounts
query_accounts U1000 U10 U1 L1 C1 _ _ L-0 _
query_accounts_result A1 _
query_accounts_result A8 _
commit query_accounts
query_accounts U1000 U10 U1 L1 C1 _ _ L-0 REV
query_accounts_result A8 _
query_accounts_result A1 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C0 A3 _ L-0 _
query_accounts_result A3 _
query_accounts_result A4 _
query_accounts_result A8 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C0 _ A3 L-0 _
query_accounts_result A1 _
query_accounts_result A2 _
query_accounts_result A3 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C0 A2 A4 L-0 _
query_accounts_result A2 _
query_accounts_result A3 _
query_accounts_result A4 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 _ _ L-0 _
query_accounts_result A1 _
query_accounts_result A2 _
query_accounts_result A3 _
query_accounts_result A4 _
query_accounts_result A5 _
query_accounts_result A6 _
query_accounts_result A7 _
query_accounts_result A8 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 _ _ L-0 REV
query_accounts_result A8 _
query_accounts_result A7 _
query_accounts_result A6 _
query_accounts_result A5 _
query_accounts_result A4 _
query_accounts_result A3 _
query_accounts_result A2 _
query_accounts_result A1 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 A2 _ L3 _
query_accounts_result A2 _
query_accounts_result A3 _
query_accounts_result A4 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 _ _ L1 _
query_accounts_result A1 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 _ _ L1 REV
query_accounts_result A8 _
commit query_accounts
query_accounts U0 U0 U0 L0 C0 _ _ L0 _
commit query_accounts
query_accounts U3000 U0 U0 L0 C0 _ _ L-0 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C5 _ _ L-0 _
commit query_accounts
query_accounts U1000 U10 U1 L1 C2 _ _ L-0 _
commit query_accounts
query_accounts U1000 U0 U0 L0 C0 A5 A7 L-0 _
commit query_accounts
""",
    ],
    "query_transfers": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L2 C1   _   _   _ _ _ _ _ _ created
commit create_accounts
transfer T1 A1 A2    0  _ U1000 U10 U1 _ L1 C1 _ _ _ _ _ _ _ _ _ _ _ created
transfer T2 A3 A4   11  _ U1000 U11 U2 _ L2 C2 _ _ _ _ _ _ _ _ _ _ _ created
transfer T3 A2 A1   12  _ U1000 U10 U3 _ L1 C3 _ _ _ _ _ _ _ _ _ _ _ created
transfer T4 A4 A3   13  _ U1000 U11 U4 _ L2 C4 _ _ _ _ _ _ _ _ _ _ _ created
transfer T5 A2 A1   14  _ U2000 U10 U1 _ L1 C5 _ _ _ _ _ _ _ _ _ _ _ created
transfer T6 A4 A3   15  _ U2000 U11 U2 _ L2 C6 _ _ _ _ _ _ _ _ _ _ _ created
transfer T7 A1 A2   16  _ U2000 U10 U3 _ L1 C7 _ _ _ _ _ _ _ _ _ _ _ created
transfer T8 A2 A1   17  _ U1000 U10 U1 _ L1 C1 _ _ _ _ _ _ _ _ _ _ _ created
commit create_transfers
query_transfers U1000 U0 U0 L0 C0 _ _ L-0 _
query_transfers_result T1
query_transfers_result T2
query_transfers_result T3
query_transfers_result T4
query_transfers_result T8
commit query_transfers
query_transfers U1000 U0 U0 L0 C0 _ _ L-0 REV
query_transfers_result T8
query_transfers_result T4
query_transfers_result T3
query_transfers_result T2
query_transfers_result T1
commit query_transfers
query_transfers U0 U10 U3 L0 C0 _ _ L-0 _
query_transfers_result T3
query_transfers_result T7
commit query_transfers
query_transfers U0 U10 U3 L0 C0 _ _ L-0 REV
query_transfers_result T7
query_transfers_result T3
commit query_transfers
query_transfers U0 U11 U2 L2 C0 _ _ L-0 _
query_transfers_result T2
query_transfers_result T6
commit query_transfers
query_transfers U0 U11 U2 L2 C0 _ _ L-0 REV
query_transfers_result T6
query_transfers_result T2
commit query_transfers
query_transfers U1000 U10 U1 L1 C1 _ _ L-0 _
query_transfers_result T1
query_transfers_result T8
commit query_transfers
query_transfers U1000 U10 U1 L1 C1 _ _ L-0 REV
query_transfers_result T8
query_transfers_result T1
commit query_transfers
query_transfers U1000 U0 U0 L0 C0 A3 _ L-0 _
query_transfers_result T3
query_transfers_result T4
query_transfers_result T8
commit query_transfers
query_transfers U1000 U0 U0 L0 C0 _ A3 L-0 _
query_transfers_result T1
query_transfers_result T2
query_transfers_result T3
commit query_transfers
query_transfers U1000 U0 U0 L0 C0 A2 A4 L-0 _
query_transfers_result T2
query_transfers_result T3
query_transfers_result T4
commit query_transfers
query_transfers U0 U0 U0 L0 C0 _ _ L-0 _
query_transfers_result T1
query_transfers_result T2
query_transfers_result T3
query_transfers_result T4
query_transfers_result T5
query_transfers_result T6
query_transfers_result T7
query_transfers_result T8
commit query_transfers
query_transfers U0 U0 U0 L0 C0 _ _ L-0 REV
query_transfers_result T8
query_transfers_result T7
query_transfers_result T6
query_transfers_result T5
query_transfers_result T4
query_transfers_result T3
query_transfers_result T2
query_transfers_result T1
commit query_transfers
query_transfers U0 U0 U0 L0 C0 A2 _ L3 _
query_transfers_result T2
query_transfers_result T3
query_transfers_result T4
commit query_transfers
query_transfers U0 U0 U0 L0 C0 _ _ L1 _
query_transfers_result T1
commit query_transfers
query_transfers U0 U0 U0 L0 C0 _ _ L1 REV
query_transfers_result T8
commit query_transfers
query_transfers U0 U0 U0 L0 C0 _ _ L0 _
commit query_transfers
query_transfers U3000 U0 U0 L0 C0 _ _ L-0 _
commit query_transfers
query_transfers U1000 U0 U0 L0 C5 _ _ L-0 _
commit query_transfers
query_transfers U1000 U10 U1 L1 C2 _ _ L-0 _
commit query_transfers
query_transfers U1000 U0 U0 L0 C0 A5 A7 L-0 _
commit query_transfers
""",
    ],
    "get_change_events": [
        """\
account A1  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A2  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A3  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
account A4  0  0  0  0  _  _  _ _ L1 C1   _   _   _ _ _ _ _ _ created
commit create_accounts
transfer   T1 A1 A2   10   _  _  _  _    _ L1 C1   _   _   _   _   _   _  _   _   _ _ _ created
transfer   T2 A1 A2   11   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created
transfer   T3 A1 A2   12   _  _  _  _    1 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created
transfer   T4 A1 A2   13   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created
transfer   T5 A1 A2   14   _  _  _  _    2 L1 C1   _ PEN   _   _   _   _  _   _   _ _ _ created
transfer   T6 A3 A1    0   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _ CDR   _ _ _ created
transfer   T7 A1 A4    0   _  _  _  _    0 L1 C1   _ PEN   _   _   _   _  _   _ CCR _ _ created
commit create_transfers
tick 1 seconds
transfer   T14 A0 A0   -0  T4  _  _  _    _ L0 C0   _   _ POS   _   _   _  _ _ _ _ _ created
transfer   T15 A0 A0    0  T5  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created
transfer   T16 A0 A0    0  T6  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created
transfer   T17 A0 A0    0  T7  _  _  _    _ L0 C0   _   _   _ VOI   _   _  _ _ _ _ _ created
commit create_transfers
get_change_events _ T6 5
get_change_events_result   _  T1 10  _ D1  0 10  0  0 _ C2  0  0  0 10 _
get_change_events_result PEN  T2 11  _ D1 11 10  0  0 _ C2  0  0 11 10 _
get_change_events_result PEN  T3 12  _ D1 23 10  0  0 _ C2  0  0 23 10 _
get_change_events_result PEN  T4 13  _ D1 36 10  0  0 _ C2  0  0 36 10 _
get_change_events_result PEN  T5 14  _ D1 50 10  0  0 _ C2  0  0 50 10 _
commit get_change_events

get_change_events T6 _ -0
get_change_events_result PEN  T6  0  _ D3  0  0  0  0 CLSD A1 50 10  0  0 _
get_change_events_result PEN  T7  0  _ D1 50 10  0  0    _ C4  0  0  0  0 CLSD
get_change_events_result EXP   _ 12 T3 D1 38 10  0  0    _ C2  0  0 38 10 _
get_change_events_result POS T14 13 T4 D1 25 23  0  0    _ C2  0  0 25 23 _
get_change_events_result VOI T15 14 T5 D1 11 23  0  0    _ C2  0  0 11 23 _
get_change_events_result VOI T16  0 T6 D3  0  0  0  0    _ C1 11 23  0  0 _
get_change_events_result VOI T17  0 T7 D1 11 23  0  0    _ C4  0  0  0  0 _
commit get_change_events
""",
    ],
}
