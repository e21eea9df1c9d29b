"""Errors the command line reports as one line and a non-zero exit."""

from __future__ import annotations


class LedgerlineError(Exception):
    """A user-facing failure: bad input, bad configuration, an unreachable dependency."""

    exit_code = 2
