"""The pure licensing core: effective licenses, findings and the reprocess policy.

No I/O, no clock, no SDK imports (an import-linter contract enforces it): adapters build the
tenant values, pass `now` in, and act on what the core decides.
"""
