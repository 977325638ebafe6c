"""The operator can read the reports (the health page, the nightly CSV/JSON) and nothing more:
Storage Blob Data Reader scoped to the `reports` container, not the account.

Role id: "Azure built-in roles for Storage", Storage Blob Data Reader
(https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage)."""

from __future__ import annotations

import re

from shared.ports.blobs import REPORTS_CONTAINER
from tests.infra.bicep import read, resources

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
WRITE_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
}


def _body(rbac: str, symbol: str) -> str:
    body = resources(rbac)[symbol][1]
    return re.split(r"^(?:resource|module|output)\s", body, maxsplit=1, flags=re.M)[0]


def test_the_operator_reads_only_the_reports_container() -> None:
    rbac = read("app/rbac.bicep")
    variables = {v: k for k, v in re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.M)}
    reader = variables[STORAGE_BLOB_DATA_READER]
    kinds = resources(rbac)

    container_type, container = kinds["reportsContainer"]
    assert container_type.startswith("Microsoft.Storage/storageAccounts/blobServices/containers@")
    name = re.search(r"^\s*name:\s*(\S+)\s*$", container, re.M)
    assert name is not None
    literal = re.search(rf"^var\s+{name.group(1)}\s*=\s*('[^']*')", rbac, re.M)
    assert (literal.group(1) if literal else name.group(1)) == f"'{REPORTS_CONTAINER}'"
    assert re.search(r"^resource\s+reportsContainer\s+'[^']+'\s+existing\s*=", rbac, re.M)

    granted = [
        symbol
        for symbol in kinds
        if re.search(rf"roleDefinitions',\s*{reader}\)", _body(rbac, symbol))
    ]
    assert granted == ["userReportsReader"]
    body = _body(rbac, "userReportsReader")
    assert re.search(r"^\s*scope:\s*reportsContainer\s*$", body, re.M)
    assert re.search(r"principalId:\s*userPrincipalId", body)
    assert "if (!empty(userPrincipalId))" in body.splitlines()[0]


def test_the_operator_gets_no_blob_write_role() -> None:
    rbac = read("app/rbac.bicep")
    variables = dict(re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.M))
    operator_roles = [
        variables[role]
        for symbol in resources(rbac)
        if "principalId: userPrincipalId" in (body := _body(rbac, symbol))
        for role in re.findall(r"roleDefinitions',\s*(\w+)\)", body)
    ]
    assert STORAGE_BLOB_DATA_READER in operator_roles
    assert not set(operator_roles) & WRITE_ROLES
