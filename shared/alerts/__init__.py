"""Alert mails: composition (`compose`, Jinja2 templates) and delivery (`deliver`, Graph
sendMail with a persisted id). What to alert on is decided in `shared.core.alerting`; the
service functions that tie them together are in `shared.service.alerts`."""
