"""FinOps: the ledger in FOCUS 1.2 (files, scheduled deliveries) and the month-end chargeback by cost centre."""
