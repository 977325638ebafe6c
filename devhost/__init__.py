"""Runs the function app locally from its own binding metadata (no Core Tools here)."""
