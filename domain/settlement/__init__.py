"""The clearing and settlement bounded context: obligations, netting cycles, DNS and RTGS."""
