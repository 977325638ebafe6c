"""Entra License Guard's domain package: the pure licensing core plus its adapters."""
