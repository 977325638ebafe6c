"""Intake: vet what arrives over HTTP (Graph notifications, on-premises sync) and queue the work."""
