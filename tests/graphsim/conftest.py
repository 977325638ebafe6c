"""Fixtures for graphsim tests: a small tenant with real GUIDs and an in-process client."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsim import license_rules, licensing
from graphsim.app import create_app
from graphsim.clock import SimClock
from graphsim.simulator import Simulator

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TOKEN = "test-token"


def gid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"graphsim-test/{name}"))


E3 = gid("sku/E3")
EMS = gid("sku/EMS")
PLAN_EXO = gid("plan/EXO")
PLAN_SPO = gid("plan/SPO")
PLAN_INTUNE = gid("plan/INTUNE")
G_SALES = gid("group/sales")
G_ONPREM = gid("group/onprem")
G_PLAIN = gid("group/plain")
USERS = [gid(f"user/{i}") for i in range(8)]
USER_DEFAULT_PROPERTIES = frozenset(
    json.loads((Path(__file__).parent / "graph-examples" / "user-get-response.json").read_text())
)
"""A user's default properties: the keys of Microsoft Learn's user-get example 1 response (the
docs' own words, not graphsim's list)."""
ORG = gid("org")


def make_tenant(**x: Any) -> dict[str, Any]:
    """8 users; Sales (E3, 5 seats) holds users 0-3, OnPrem (synced, EMS) holds 4-5."""
    skus = {
        E3: {
            "id": f"{ORG}_{E3}",
            "accountId": ORG,
            "accountName": "graphsim",
            "appliesTo": "User",
            "capabilityStatus": "Enabled",
            "consumedUnits": 0,
            "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [
                {
                    "servicePlanId": PLAN_EXO,
                    "servicePlanName": "EXCHANGE_S_ENTERPRISE",
                    "provisioningStatus": "Success",
                    "appliesTo": "User",
                },
                {
                    "servicePlanId": PLAN_SPO,
                    "servicePlanName": "SHAREPOINTENTERPRISE",
                    "provisioningStatus": "Success",
                    "appliesTo": "User",
                },
            ],
            "skuId": E3,
            "skuPartNumber": "ENTERPRISEPACK",
            "subscriptionIds": [gid("subscription/e3")],
        },
        EMS: {
            "id": f"{ORG}_{EMS}",
            "accountId": ORG,
            "accountName": "graphsim",
            "appliesTo": "User",
            "capabilityStatus": "Enabled",
            "consumedUnits": 0,
            "prepaidUnits": {"enabled": 10, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [
                {
                    "servicePlanId": PLAN_INTUNE,
                    "servicePlanName": "INTUNE_A",
                    "provisioningStatus": "Success",
                    "appliesTo": "User",
                },
            ],
            "skuId": EMS,
            "skuPartNumber": "EMS",
            "subscriptionIds": [gid("subscription/ems")],
        },
    }
    users = {}
    for i, uid in enumerate(USERS):
        users[uid] = {
            "id": uid,
            "displayName": f"User {i}",
            "givenName": "User",
            "surname": str(i),
            "userPrincipalName": f"user{i}@contoso.example",
            "mail": f"user{i}@contoso.example",
            "accountEnabled": True,
            "usageLocation": "US",
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "assignedLicenses": [],
            "assignedPlans": [],
            "licenseAssignmentStates": [],
        }

    def group(
        group_id: str, name: str, members: list[str], licenses: list[str], **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": group_id,
            "displayName": name,
            "description": f"{name} group",
            "mailEnabled": False,
            "mailNickname": name.lower(),
            "securityEnabled": True,
            "groupTypes": [],
            "createdDateTime": "2024-01-01T00:00:00Z",
            "onPremisesSyncEnabled": None,
            "assignedLicenses": [{"disabledPlans": [], "skuId": s} for s in licenses],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [{"@odata.type": "#microsoft.graph.user", "id": m} for m in members],
            **extra,
        }

    groups = {
        G_SALES: group(G_SALES, "Sales", USERS[0:4], [E3]),
        G_ONPREM: group(G_ONPREM, "OnPrem", USERS[4:6], [EMS], onPremisesSyncEnabled=True),
        G_PLAIN: group(G_PLAIN, "Plain", [USERS[6]], []),
    }
    rules = license_rules.LicensingRules.from_config(x)
    licensing.process_users(set(users), users, groups, skus, rules, START)
    return {
        "subscribedSkus": list(skus.values()),
        "groups": list(groups.values()),
        "users": list(users.values()),
        "organization": [
            {
                "id": ORG,
                "displayName": "Contoso (graphsim)",
                "countryLetterCode": "US",
                "onPremisesSyncEnabled": True,
                "onPremisesLastSyncDateTime": "2025-01-06T08:30:00Z",
                "verifiedDomains": [],
            }
        ],
        "x-graphsim": {"tenantSizeClass": "S", "onPremisesSyncedGroups": [G_ONPREM], **x},
    }


def frozen_clock() -> SimClock:
    return SimClock(START, frozen=True)


@pytest.fixture
def tenant() -> dict[str, Any]:
    return make_tenant()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Harness:
    """An in-process graphsim (httpx.ASGITransport) plus direct access to the Simulator."""

    def __init__(self, tenant: dict[str, Any], **kwargs: Any) -> None:
        self.app = create_app(tenant, clock=frozen_clock(), **kwargs)
        self.sim: Simulator = self.app.state.sim
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://graphsim.test/v1.0",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.get(url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.post(url, **kw)

    async def delta_round(self, url: str) -> tuple[list[dict[str, Any]], str, int]:
        """Follow a delta query's nextLinks ($skiptoken) to its deltaLink; returns
        (objects, deltaLink, pages)."""
        objs: list[dict[str, Any]] = []
        pages = 0
        while True:
            r = await self.get(url)
            assert r.status_code == 200, r.text
            body = r.json()
            pages += 1
            objs += body["value"]
            if "@odata.deltaLink" in body:
                assert "@odata.nextLink" not in body
                return objs, body["@odata.deltaLink"], pages
            url = body["@odata.nextLink"]
            assert "$skiptoken=" in url

    async def settle(self) -> None:
        """Advance the simulated clock until group-based licensing has processed everything
        queued (processing is asynchronous by default, as in Entra)."""
        await self.sim.drain(timeout=1, settle=True)

    async def close(self) -> None:
        await self.http.aclose()
        await self.sim.close()


@pytest.fixture
async def sim(tenant: dict[str, Any]) -> AsyncIterator[Harness]:
    h = Harness(tenant)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
def sync_server(tenant: dict[str, Any]) -> Iterator[str]:
    from graphsim.server import serve_in_thread

    with serve_in_thread(tenant, clock=frozen_clock()) as url:
        yield url
