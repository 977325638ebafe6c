"""Runs the function app locally from its own binding metadata (Core Tools cannot be installed here)."""
