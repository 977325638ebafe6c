"""The commands that read snapshot files: `evaluate`, `whatif`, `diff`, `report migration`.

Each loads its snapshot(s), runs the pure core and writes one of the `shared.render` report
families (table, JSON or CSV) to `--out` or standard output; the return value is the exit
status (`EXIT_*`; the parser is `shared.cli.parser`).
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shared.adapters.snapshot import SnapshotError
from shared.catalog.capabilities import capabilities
from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.cli.env import cli_environment
from shared.cli.files import csv_output, load_tenant, output, write_json, write_text
from shared.core.drift import diff_tenants
from shared.core.evaluate import evaluate
from shared.core.findings import Names
from shared.core.migration import migration_plan
from shared.core.model import Tenant
from shared.core.references import find_group, find_plans, find_sku, find_user
from shared.core.whatif import (
    AddMember,
    AddSku,
    Change,
    DeleteGroup,
    RemoveMember,
    RemoveSku,
    SetDisabledPlans,
    what_if,
)
from shared.platform.settings import DEFAULT_GRAPH_BASE_URL
from shared.render.csvsafe import write_rows
from shared.render.drift import diff_json, render_diff_table
from shared.render.evaluation import write_evaluation_json
from shared.render.evaluation_table import write_table
from shared.render.migration import (
    MIGRATION_CSV_HEADER,
    migration_json,
    migration_rows,
    render_migration_table,
)
from shared.render.migration_script import GLOBAL_GRAPH, SCRIPT_ENCODINGS, render_script
from shared.render.paths import path_rows, write_csv
from shared.render.terminal_text import printable
from shared.render.whatif import render_whatif_table, whatif_json

EXIT_OK = 0


EXIT_DATA_LOSS = 1


EXIT_BAD_INPUT = 2


@contextmanager
def _without_gc() -> Iterator[None]:
    """A one-shot run builds millions of objects and frees few: generational collection would
    walk the whole heap again and again for nothing (it more than doubles the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_evaluate(args: argparse.Namespace) -> int:
    with _without_gc():
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    tenant = load_tenant(args.snapshot)
    if args.format == "json":
        # Machine output: messages name products by part number, no catalog needed.
        evaluation = evaluate(tenant, conflicts=plan_conflicts())
        with output(args.out, binary=True) as out:
            write_evaluation_json(evaluation, tenant, out)
        return EXIT_OK
    names = catalog()
    evaluation = evaluate(tenant, *names.names_for(tenant), plan_conflicts())
    if args.format == "csv":
        with csv_output(args.out) as text:
            write_csv(path_rows(evaluation, tenant, names), text)
        return EXIT_OK
    with output(args.out, binary=False) as text:
        write_table(evaluation, tenant, names, text, show_healthy=args.show_all)
    return EXIT_OK


def parse_changes(tenant: Tenant, raw: Sequence[tuple[str, list[str]]]) -> list[Change]:
    """Resolve the command line's changes against the tenant (BadReference on a bad name)."""
    changes: list[Change] = []
    for kind, values in raw:
        group = find_group(tenant, values[0])
        if kind == "plans":
            sku = find_sku(tenant, values[1])
            changes.append(SetDisabledPlans(group.id, sku.id, find_plans(sku, values[2])))
        elif kind == "addsku":
            sku = find_sku(tenant, values[1])
            plans = find_plans(sku, values[2]) if len(values) > 2 else frozenset()
            changes.append(AddSku(group.id, sku.id, plans))
        elif kind == "removesku":
            changes.append(RemoveSku(group.id, find_sku(tenant, values[1]).id))
        elif kind == "delete":
            changes.append(DeleteGroup(group.id))
        elif kind == "add":
            changes.append(AddMember(group.id, find_user(tenant, values[1]).id))
        else:
            changes.append(RemoveMember(group.id, find_user(tenant, values[1]).id))
    return changes


def run_whatif(args: argparse.Namespace) -> int:
    tenant = load_tenant(args.snapshot)
    changes = parse_changes(tenant, args.changes)
    caps = capabilities()
    table = plan_conflicts()
    if args.format == "json":
        result = what_if(tenant, changes, caps.plans, labels=caps.labels, conflicts=table)
        write_json(whatif_json(result, tenant), args.out)
    else:
        names = catalog()
        products, plans = names.names_for(tenant)
        result = what_if(tenant, changes, caps.plans, products, plans, caps.labels, table)
        write_text(render_whatif_table(result, tenant, names), args.out)
    return EXIT_DATA_LOSS if result.data_loss or result.predicted_errors else EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    old, new = load_tenant(args.old), load_tenant(args.new)
    _same_tenant(args.old, old, args.new, new)
    caps = capabilities()
    names = catalog() if args.format == "table" else None
    products, plans = names.names_for(old) if names else (None, None)
    if names:
        new_products, new_plans = names.names_for(new)
        products, plans = {**new_products, **(products or {})}, {**new_plans, **(plans or {})}
    before = evaluate(old, products, plans)
    after = evaluate(new, products, plans)
    drift = diff_tenants(
        old, new, before, after, caps.plans, Names(old, products, plans), caps.labels
    )
    if names is None:
        write_json(diff_json(drift, old, new), args.out)
    else:
        write_text(render_diff_table(drift, old, new, names), args.out)
    return EXIT_DATA_LOSS if drift.losses else EXIT_OK


def _same_tenant(old_path: str, old: Tenant, new_path: str, new: Tenant) -> None:
    """Two snapshots of different tenants share no user or group: compared, every user would
    lose every license (a data-loss risk for the whole tenant). Bad input instead."""
    a, b = old.organization, new.organization
    if a and b and a.id.lower() != b.id.lower():
        raise SnapshotError(
            printable(
                f"{old_path} is tenant {a.display_name} ({a.id}) and {new_path} is tenant "
                f"{b.display_name} ({b.id}): diff compares two snapshots of one tenant"
            )
        )


def _script_graph_host(flag: str | None) -> str:
    """The Graph host of the tenant's cloud, for the script: --graph-base-url, else
    GRAPH_BASE_URL (as the live commands), else global Graph; graphsim stands in for global."""
    from shared.adapters.graph_auth import GraphEndpointError, graph_endpoint  # noqa: PLC0415

    base = flag or cli_environment().get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL
    try:
        endpoint = graph_endpoint(base)
    except GraphEndpointError as exc:
        raise SnapshotError(str(exc)) from None
    return GLOBAL_GRAPH if endpoint.is_loopback else endpoint.host


def run_migration(args: argparse.Namespace) -> int:
    tenant = load_tenant(args.snapshot)
    plan = migration_plan(tenant)
    if args.script:
        host = _script_graph_host(args.graph_base_url)
        script = render_script(args.script, plan, tenant, catalog(), capabilities().plans, host)
        with output(args.out, binary=True) as out:
            out.write(script.encode(SCRIPT_ENCODINGS[args.script]))
        return EXIT_OK
    if args.format == "json":
        write_json(migration_json(plan, tenant), args.out)
        return EXIT_OK
    names = catalog()
    if args.format == "csv":
        with csv_output(args.out) as text:
            write_rows(MIGRATION_CSV_HEADER, migration_rows(plan, tenant, names), text)
    else:
        write_text(render_migration_table(plan, tenant, names), args.out)
    return EXIT_OK
