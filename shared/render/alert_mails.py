"""The alert mails, one function per kind: the digest, an immediate alert, the baseline, the
weekly standing findings and the nightly reconciliation's summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC

from shared.core.alerting import LedgerRow
from shared.core.graph_values import graph_time_or_none
from shared.core.nightly_summary import NightlySummary, SeatForecast
from shared.core.wording import counted
from shared.render.channel_finding import channel_findings
from shared.render.mail import Mail, MailNames, MailView, Section, Table, render
from shared.render.mail_rows import counts_table, resolved_section, row_views


def _muted(muted: int) -> list[str]:
    """The lead's line on the findings exclusions mute, if any."""
    return (
        [
            f"{counted(muted, 'open finding is', 'open findings are')} muted by exclusions "
            "(still in the reports)."
        ]
        if muted
        else []
    )


def digest_mail(
    *,
    mail_id: str,
    names: MailNames,
    new: Sequence[LedgerRow],
    resolved: Sequence[LedgerRow],
    still_open: int,
    waiting: Mapping[str, int],
    muted: int,
    actions: Mapping[tuple[str | None, str | None, str], str],
    mode_note: str,
    since: str | None,
    first_since: str = "License Guard started watching",
) -> Mail:
    """`since`: when the last digest went out; None for the first, which covers the changes
    since `first_since`."""
    subject = (
        f"License Guard · {names.tenant_name}: {counted(len(new), 'new issue')}, "
        f"{len(resolved)} resolved, {still_open + len(new)} open"
    )
    waiting_text = ", ".join(
        f"{n} {label}"
        for kind, label in (
            ("processing", "waiting for Entra to finish processing a group"),
            ("swap", "in a SKU swap (user in both groups)"),
            ("grace", "within the grace period"),
        )
        if (n := waiting.get(kind, 0))
    )
    lead = [
        (f"Changes since the last digest ({since})" if since else f"Changes since {first_since}")
        + f": {counted(len(new), 'new issue')} to act on, "
        f"{len(resolved)} resolved. Still open and already reported: {still_open}.",
    ]
    if waiting_text:
        lead.append(f"Not alerted yet: {waiting_text}.")
    lead += _muted(muted)
    sections = []
    if new:
        sections.append(
            Section("New issues", items=row_views(new, names, actions)),
        )
    if resolved:
        sections.append(resolved_section(resolved, names))
    return render(
        MailView(
            "License Guard digest",
            names.tenant_name,
            tuple(lead),
            tuple(sections),
            footer=(mode_note,),
        ),
        mail_id=mail_id,
        kind="digest",
        subject=subject,
        findings=[
            *channel_findings(new, names, "new"),
            *channel_findings(resolved, names, "resolved"),
        ],
    )


def immediate_mail(
    *,
    mail_id: str,
    kind: str,
    names: MailNames,
    title: str,
    rows: Sequence[LedgerRow],
    lead: Sequence[str],
    actions: Mapping[tuple[str | None, str | None, str], str] | None = None,
    extra: Sequence[Section] = (),
    mode_note: str = "",
) -> Mail:
    """`kind`: which immediate alert it is (the webhook's `kind`: data-loss, mass-loss or
    tenant)."""
    subject = f"License Guard · {names.tenant_name}: {title}"
    sections = (Section("What happened", items=row_views(rows, names, actions)), *extra)
    return render(
        MailView(
            title,
            names.tenant_name,
            tuple(lead),
            sections,
            footer=(mode_note,) if mode_note else (),
        ),
        mail_id=mail_id,
        kind=kind,
        subject=subject,
        findings=channel_findings(rows, names, "new"),
    )


def baseline_mail(
    *, mail_id: str, names: MailNames, rows: Sequence[LedgerRow], muted: int = 0
) -> Mail:
    """`rows`: the open findings no exclusion mutes; `muted`: how many it does."""
    subject = (
        f"License Guard · {names.tenant_name}: baseline, {counted(len(rows), 'existing issue')}"
    )
    lead = (
        f"Baseline: {counted(len(rows), 'existing issue')}, by group × product × issue. "
        "License Guard recorded them and queued no reprocess; from now on the digests report "
        "only what changes after this baseline.",
        *_muted(muted),
    )
    section = Section("Existing issues", table=counts_table(rows, names))
    return render(
        MailView("License Guard baseline", names.tenant_name, lead, (section,)),
        mail_id=mail_id,
        kind="baseline",
        subject=subject,
    )


def weekly_mail(*, mail_id: str, names: MailNames, rows: Sequence[LedgerRow], week: str) -> Mail:
    subject = (
        f"License Guard · {names.tenant_name}: weekly summary {week}, "
        f"{counted(len(rows), 'standing finding')}"
    )
    lead = (
        "Standing information that needs no urgent action: nested groups that license nobody, "
        "users without a usage location, disabled accounts that still hold seats, direct "
        "assignments a group already covers.",
    )
    return render(
        MailView(
            "License Guard weekly summary",
            names.tenant_name,
            lead,
            (Section("Standing findings", items=row_views(rows, names)),),
        ),
        mail_id=mail_id,
        kind="weekly",
        subject=subject,
        findings=channel_findings(rows, names, "open"),
    )


def _seat_forecast(forecast: Sequence[SeatForecast]) -> Section:
    """The products with demand, enabled seats or seats in use (as the health page's chart):
    a row of zeros (a free product nobody holds, a subscription long expired) is counted, not
    listed."""
    shown = [f for f in forecast if f.demand or f.prepaid_enabled or f.consumed]
    left_out = len(forecast) - len(shown)
    return Section(
        "Seat forecast",
        paragraphs=(
            (
                f"Not listed: {counted(left_out, 'product')} with no demand, no enabled seats "
                "and none consumed.",
            )
            if left_out
            else ()
        ),
        table=Table(
            ("Product", "Demand", "Prepaid", "Consumed", "Short"),
            tuple(
                (
                    f.product_name or f.sku_part_number,
                    str(f.demand),
                    str(f.prepaid_enabled),
                    str(f.consumed),
                    str(f.shortfall),
                )
                for f in shown
            ),
        )
        if shown
        else None,
    )


def utc_time(stored: str) -> str:
    """A stored ISO 8601 time as the digest shows times: 'YYYY-MM-DD HH:MM UTC'."""
    moment = graph_time_or_none(stored)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else stored


def nightly_mail(*, mail_id: str, summary: NightlySummary) -> Mail:
    total = sum(summary.findings_by_code.values())
    subject = (
        f"License Guard · {summary.tenant_name}: nightly summary {summary.date}, "
        f"{counted(total, 'open finding')}, {summary.new_findings} new, "
        f"{summary.resolved_findings} resolved"
    )
    lead = [
        f"Reconciliation {summary.run_id}: {counted(summary.users_scanned, 'user')} scanned from "
        f"{utc_time(summary.started_at)} to {utc_time(summary.finished_at)}; "
        f"{summary.new_findings} new and {summary.resolved_findings} resolved findings.",
    ]
    if summary.baseline:
        lead.append("This was the baseline run: everything was recorded, nothing reprocessed.")
    if summary.data_loss_risks:
        lead.append(
            f"Data-loss risks: {counted(summary.data_loss_risks, 'user')} would lose a mailbox or "
            "OneDrive storage; see the immediate alerts and the digest."
        )
    if summary.self_check_agreement is not None:
        lead.append(
            f"Self-check: the core agrees with Entra's own error signals for "
            f"{summary.self_check_agreement:.1%} of users "
            f"({counted(summary.self_check_disagreements, 'disagreement')})."
        )
    sections = [
        Section(
            "Findings by issue",
            table=Table(
                ("Issue", "Count"),
                tuple(
                    (code, str(n))
                    for code, n in sorted(
                        summary.findings_by_code.items(), key=lambda kv: (-kv[1], kv[0])
                    )
                ),
            ),
        ),
    ]
    if summary.top_groups_by_errors:
        sections.append(
            Section(
                "Top groups by errors",
                table=Table(
                    ("Group", "Users in error"),
                    tuple((g.group_name, str(g.errors)) for g in summary.top_groups_by_errors),
                ),
            )
        )
    if summary.seat_forecast:
        sections.append(_seat_forecast(summary.seat_forecast))
    if summary.drift:
        sections.append(
            Section(
                "Configuration drift",
                table=Table(
                    ("Change", "Subject", "Detail", "By"),
                    tuple(
                        (d.kind, d.subject, d.detail, d.actor or "unknown") for d in summary.drift
                    ),
                ),
            )
        )
    outcomes = summary.reprocess_outcomes
    sections.append(
        Section(
            "What License Guard did",
            paragraphs=(
                "Reprocesses by outcome: "
                + (", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())) or "none")
                + ".",
            ),
        )
    )
    if summary.report_blobs:
        sections.append(
            Section(
                "Reports",
                paragraphs=(
                    "The night's reports are kept in the service's storage (not attached): "
                    + ", ".join(summary.report_blobs)
                    + ".",
                ),
            )
        )
    return render(
        MailView(
            "License Guard nightly summary", summary.tenant_name, tuple(lead), tuple(sections)
        ),
        mail_id=mail_id,
        kind="nightly",
        subject=subject,
    )
