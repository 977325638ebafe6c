"""Alerts: what License Guard tells the admins, by mail and on the alert channels.

What is alertable is decided by `shared.core.alerting` (pure); the mails are composed by
`shared.render.alert_mails`. Here, one module per job:

* `digest`: the digest timer's job (`run_digest`).
* `immediate`: an alert about some findings at once (`send_immediate`), used by the data-loss
  guard (`shared.service.dataloss`) and the tenant-level alerts (`shared.service.tenant_alerts`).
* `summaries`: the baseline, nightly and weekly summaries.
* `ledger`, `facts`, `names`, `actions`: what those jobs read (the findings ledger, the facts
  the rules need, readable names) and the "what License Guard did" wording.
* `deliver`: one alert to the channels and the mail; `mail_delivery` (exactly one mail per id,
  through a draft), `channels` and `channel_delivery` (Teams, Slack, webhooks), `sending`
  (statuses and retry timing shared by both).
"""
