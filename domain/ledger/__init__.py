"""The ledger bounded context: double-entry accounts and transfers (TigerBeetle semantics)."""
