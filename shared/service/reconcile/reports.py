"""The nightly run's reports, assembled at the finish from the page parts kept with the run:
assignment paths (CSV + JSON), the configuration snapshot and its drift with the audit-log
actor, the migration plan, the self-check against Entra's own error lists, the health page.

Reports are spooled to temporary files and uploaded as streams: memory stays bounded by a
page, whatever the tenant's size.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import orjson
import structlog

from shared.adapters.world_document import config_document
from shared.catalog.products import catalog
from shared.core.findings import Finding
from shared.core.graph_values import format_graph_time, graph_time_or_none
from shared.core.nightly_summary import NightlySummary
from shared.ports.blobs import BlobStore
from shared.ports.directory import JSON, DirectoryError
from shared.ports.licensed_world import LicensedWorld
from shared.render.csvsafe import csv_writer, utf8_text, write_rows
from shared.render.findings import finding_json
from shared.render.migration import MIGRATION_CSV_HEADER, migration_json, migration_rows
from shared.render.paths import CSV_HEADER
from shared.service.reconcile.health_report import write_nightly_page
from shared.service.reconcile.outputs import (
    AUDIT_ACTIVITIES,
    assemble_migration,
    config_drift,
    drift_json,
    self_check,
)
from shared.service.reconcile.run_state import CONFIG_LATEST, Scan

log = structlog.get_logger(__name__)


def assemble_paths(
    scan: Scan,
    folder: str,
    tenant: Any,
    sku_reports: list[tuple[Any, list[Finding]]],
    group_reports: Mapping[str, list[Finding]],
) -> list[str]:
    with spool() as out:
        write_rows_bytes(CSV_HEADER, (), out)  # the BOM, and the header quoted like the rows
        for name in scan.page_names("paths.csv"):
            out.write(scan.blobs.get(name) or b"")
        out.seek(0)
        upload(scan.blobs, folder + "paths.csv", out, "text/csv")
    with spool() as out:
        out.write(b'{"users":[')
        first = True
        for name in scan.page_names("users.jsonl"):
            for line in (scan.blobs.get(name) or b"").splitlines():
                if line:
                    out.write(line if first else b"," + line)
                    first = False
        groups = [
            {
                "id": g.id,
                "displayName": g.name,
                "findings": [finding_json(f) for f in group_reports.get(g.id, ())],
            }
            for g in tenant.groups.values()
        ]
        skus = [
            {
                "skuId": s.id,
                "skuPartNumber": s.part_number,
                "demand": scan.run.counters.demand[s.id],
                "prepaidEnabled": s.prepaid.enabled,
                "consumed": s.consumed,
                "shortfall": max(0, scan.run.counters.demand[s.id] - s.prepaid.enabled),
                "findings": [finding_json(f) for f in found],
            }
            for s, found in sku_reports
        ]
        out.write(b'],"groups":' + orjson.dumps(groups) + b',"skus":' + orjson.dumps(skus))
        out.write(b"}\n")
        out.seek(0)
        upload(scan.blobs, folder + "evaluation.json", out, "application/json")
    return [folder + "paths.csv", folder + "evaluation.json"]


async def configuration(
    scan: Scan, folder: str, world: LicensedWorld
) -> tuple[list[Any], list[str]]:
    # Taken when the run read the groups, not now: tomorrow's audit query for the drift's
    # actors starts here, and a change made while this run went on is tomorrow's drift.
    read_at = scan.run.groups_read_at or scan.run.started_at
    config = config_document(world, read_at.isoformat())
    # The night before's snapshot, kept with the run: a finish resumed after a crash would
    # otherwise diff against the snapshot its first attempt already stored as the latest.
    kept = scan.blobs.get(scan.prefix + "previous-config.json")
    raw = kept if kept is not None else scan.blobs.get(CONFIG_LATEST)
    if kept is None:
        scan.blobs.put(
            scan.prefix + "previous-config.json", raw or b"null", content_type="application/json"
        )
    previous = orjson.loads(raw) if raw else None
    scan.blobs.put(folder + "config.json", orjson.dumps(config), content_type="application/json")
    out = [folder + "config.json"]
    drift: list[Any] = []
    if previous is not None and previous.get("takenAt") != config["takenAt"]:
        since = str(previous.get("takenAt") or "")
        try:
            audits = await scan.svc.directory.directory_audits(
                graph_filter_time(since), AUDIT_ACTIVITIES
            )
        except DirectoryError as exc:  # AuditLog.Read.All missing, or throttled
            log.warning("reconcile.audits_unavailable", error=exc.loggable)
            audits = []
        drift = config_drift(previous, config, world.members, audits)
        document = drift_json(drift, since, config["takenAt"])
        scan.blobs.put(
            folder + "config-diff.json", orjson.dumps(document), content_type="application/json"
        )
        out.append(folder + "config-diff.json")
    scan.blobs.put(CONFIG_LATEST, orjson.dumps(config), content_type="application/json")
    return drift, out


def migration_reports(scan: Scan, folder: str, world: LicensedWorld) -> list[str]:
    parts = (
        orjson.loads(scan.blobs.get(n) or b"{}")["migration"]
        for n in scan.page_names("checks.json")
    )
    plan, tenant = assemble_migration(parts, world)
    scan.blobs.put(
        folder + "migration.json",
        orjson.dumps(migration_json(plan, tenant)),
        content_type="application/json",
    )
    with spool() as out:
        write_rows_bytes(MIGRATION_CSV_HEADER, migration_rows(plan, tenant, catalog()), out)
        out.seek(0)
        upload(scan.blobs, folder + "migration.csv", out, "text/csv")
    return [folder + "migration.json", folder + "migration.csv"]


async def self_check_report(scan: Scan, folder: str) -> tuple[Any, str]:
    core: dict[str, set[str]] = {}
    mismatches: list[JSON] = []
    for name in scan.page_names("checks.json"):
        part = orjson.loads(scan.blobs.get(name) or b"{}")
        for group_id, users in part["errorsByGroup"].items():
            core.setdefault(group_id, set()).update(users)
        mismatches += part["stateMismatches"]
    directory = scan.svc.directory
    entra_groups = set(await directory.groups_with_license_errors())
    entra_members = {
        g: set(await directory.members_with_license_errors(g))
        for g in sorted(entra_groups | core.keys())
    }
    check = self_check(scan.run.counters.users, core, entra_groups, entra_members, mismatches)
    name = folder + "self-check.json"
    scan.blobs.put(name, orjson.dumps(check.to_json()), content_type="application/json")
    return check, name


def health_page(
    scan: Scan,
    world: LicensedWorld,
    sku_reports: list[tuple[Any, list[Finding]]],
    group_reports: Mapping[str, list[Finding]],
    summary: NightlySummary,
) -> list[str]:
    """The report page (`<date>/report.html`, `latest/report.html`); a view of what is
    stored, so a failure is logged and the night goes on. The products' and the groups' own
    findings go on it as on the live and the snapshot pages."""
    try:
        return write_nightly_page(
            scan.blobs,
            world,
            (scan.blobs.get(n) or b"" for n in scan.page_names("users.jsonl")),
            (
                orjson.loads(scan.blobs.get(n) or b"{}")["migration"]
                for n in scan.page_names("checks.json")
            ),
            [
                *(finding_json(f) for _, found in sku_reports for f in found),
                *(finding_json(f) for found in group_reports.values() for f in found),
            ],
            scan.run.counters.demand,
            summary.to_json(),
            now=scan.svc.now(),
            prices=scan.svc.settings.sku_prices,
            retention_days=scan.opts.retention_days if scan.opts.prune_history else None,
        )
    except Exception:
        log.exception("reconcile.report_page_failed", run_id=scan.run.run_id)
        return []


def graph_filter_time(iso: str) -> str:
    """Graph's filter wants `2026-01-02T03:04:05Z`; text that is no timestamp goes as it is."""
    moment = graph_time_or_none(iso)
    return format_graph_time(moment) if moment else iso


@contextmanager
def spool() -> Iterator[IO[bytes]]:
    """A temporary file for a report (in memory while small), uploaded as a stream."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as handle:
        yield handle


def write_csv_rows(rows: Any, out: IO[bytes]) -> None:
    with utf8_text(out) as text:
        csv_writer(text).writerows(rows)


def write_rows_bytes(header: Sequence[str], rows: Any, out: IO[bytes]) -> None:
    with utf8_text(out) as text:
        write_rows(header, rows, text)


def upload(blobs: BlobStore, name: str, handle: IO[bytes], content_type: str) -> None:
    """Upload a spooled report from its start, streamed (never read whole into memory)."""
    handle.seek(0)
    blobs.put_file(name, handle, content_type=content_type)
