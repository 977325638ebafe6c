"""Alert mails: composition (`compose`, Jinja2 templates) and delivery (`deliver`: a MIME
draft in the sender mailbox, recorded, then sent through Graph). What to alert on is decided
in `shared.core.alerting`; the service functions that tie them together are in
`shared.service.alerts`."""
