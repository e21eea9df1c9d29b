"""The reconciliation bounded context: bank statements matched against a nostro account's
ledger transfers, and the result (matches, breaks, unmatched items) recorded as events."""
