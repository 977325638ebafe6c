"""Trigger handlers, one module per trigger family; each translates its trigger into one call."""
