"""graphsim: a local Microsoft Graph (v1.0 subset) simulator for Entra group-based licensing.

It plays Microsoft's part in development and tests (users, groups, SKUs, delta, change
notifications, throttling, faults) and therefore imports nothing from the service's own code.
"""
