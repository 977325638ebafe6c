"""The licensing health report page: its data, charts and HTML."""
