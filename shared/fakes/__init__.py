"""In-memory implementations of the ports, passing the same contract tests as the adapters."""
