"""The platform under every layer: settings, structured logging and its telemetry export."""
