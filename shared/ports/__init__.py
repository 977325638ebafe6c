"""Ports: the protocols the service layer depends on, and their errors; no implementation here."""
