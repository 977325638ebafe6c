"""The nightly reconciliation: the safety net over the whole tenant, and what it writes."""
