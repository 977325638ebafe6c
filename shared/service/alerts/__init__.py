"""Alerts: the digest, immediate alerts and summaries, delivered once by mail and to channels."""
