"""The real msgraph-sdk against graphsim over loopback HTTP: typed models come back populated
and nothing lands in `additional_data` (i.e. no field unknown to the SDK's schema)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.groups.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody as GroupAssignBody,
)
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from graphsim.clock import iso
from graphsim.server import serve_in_thread

from .conftest import E3, EMS, G_PLAIN, G_SALES, START, USERS, frozen_clock, make_tenant
from .receiver import receiver

pytestmark = pytest.mark.anyio


class StaticToken(AnonymousAuthenticationProvider):
    async def authenticate_request(
        self,
        request: RequestInformation,
        additional_authentication_context: dict[str, Any] | None = None,
    ) -> None:
        request.headers.add("Authorization", "Bearer sdk-token")


@pytest.fixture
async def graph() -> AsyncIterator[tuple[GraphServiceClient, str]]:
    with serve_in_thread(make_tenant(), clock=frozen_clock()) as url:
        async with httpx.AsyncClient() as http:
            adapter = GraphRequestAdapter(StaticToken(), client=http)
            adapter.base_url = url
            yield GraphServiceClient(request_adapter=adapter), url


def no_extras(model: Any, allowed: frozenset[str] = frozenset()) -> None:
    data = model.additional_data or {}
    extra = {k: v for k, v in data.items() if not k.startswith("@") and k not in allowed}
    assert extra == {}, f"{type(model).__name__} got unknown fields {extra}"


async def test_users_with_license_states_and_paging(graph: tuple[GraphServiceClient, str]) -> None:
    client, _ = graph
    q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=[
            "id",
            "displayName",
            "assignedLicenses",
            "licenseAssignmentStates",
            "usageLocation",
            "assignedPlans",
        ],
        top=5,
    )
    page = await client.users.get(RequestConfiguration(query_parameters=q))
    assert page is not None
    assert page.value is not None
    assert len(page.value) == 5
    assert page.odata_next_link
    user = page.value[0]
    no_extras(user)
    state = user.license_assignment_states[0]
    no_extras(state)
    assert state.sku_id == uuid.UUID(E3)
    assert state.assigned_by_group == G_SALES
    assert state.state == "Active"
    assert user.assigned_licenses[0].sku_id == uuid.UUID(E3)
    assert user.assigned_plans
    assert user.assigned_plans[0].service_plan_id
    nxt = await client.users.with_url(page.odata_next_link).get()
    assert nxt is not None
    assert nxt.value is not None
    assert [u.id for u in nxt.value] == USERS[5:]


async def test_groups_members_skus_org(graph: tuple[GraphServiceClient, str]) -> None:
    client, _ = graph
    group = await client.groups.by_group_id(G_SALES).get()
    assert group is not None
    no_extras(group)
    assert group.display_name == "Sales"
    members = await client.groups.by_group_id(G_SALES).members.get()
    assert members is not None
    assert members.value is not None
    assert [m.id for m in members.value] == USERS[:4]
    assert type(members.value[0]).__name__ == "User"
    skus = await client.subscribed_skus.get()
    assert skus is not None
    assert skus.value is not None
    for sku in skus.value:
        no_extras(sku)
        assert sku.prepaid_units is not None
        assert sku.prepaid_units.enabled
        assert sku.service_plans
        assert sku.service_plans[0].service_plan_id
    org = await client.organization.get()
    assert org is not None
    assert org.value is not None
    no_extras(org.value[0])
    assert org.value[0].on_premises_last_sync_date_time is not None


async def test_delta_pages(graph: tuple[GraphServiceClient, str]) -> None:
    client, _ = graph
    q = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["members", "displayName"])
    page = await client.groups.delta.get(RequestConfiguration(query_parameters=q))
    assert page is not None
    assert page.value is not None
    assert page.odata_delta_link
    sales = next(g for g in page.value if g.id == G_SALES)
    assert len(sales.additional_data["members@delta"]) == 4
    ref = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{USERS[7]}")
    await client.groups.by_group_id(G_SALES).members.ref.post(ref)
    await client.groups.by_group_id(G_SALES).members.by_directory_object_id(USERS[0]).ref.delete()
    changes = await client.groups.delta.with_url(page.odata_delta_link).get()
    assert changes is not None
    assert changes.value is not None
    (changed,) = changes.value
    entries = changed.additional_data["members@delta"]
    assert {str(e["id"]): "@removed" in e for e in entries} == {USERS[7]: False, USERS[0]: True}


async def test_assign_and_reprocess(graph: tuple[GraphServiceClient, str]) -> None:
    client, _ = graph
    body = AssignLicensePostRequestBody(
        add_licenses=[AssignedLicense(sku_id=uuid.UUID(EMS), disabled_plans=[])], remove_licenses=[]
    )
    user = await client.users.by_user_id(USERS[6]).assign_license.post(body)
    assert user is not None
    assert user.assigned_licenses is not None
    assert [a.sku_id for a in user.assigned_licenses] == [uuid.UUID(EMS)]
    again = await client.users.by_user_id(USERS[6]).reprocess_license_assignment.post()
    assert again is not None
    assert again.id == USERS[6]
    gbody = GroupAssignBody(
        add_licenses=[AssignedLicense(sku_id=uuid.UUID(EMS), disabled_plans=[])], remove_licenses=[]
    )
    group = await client.groups.by_group_id(G_PLAIN).assign_license.post(gbody)
    assert group is not None
    assert group.id == G_PLAIN


async def test_subscription_and_send_mail(graph: tuple[GraphServiceClient, str]) -> None:
    client, url = graph
    with receiver() as rec:
        sub = await client.subscriptions.post(
            Subscription(
                change_type="updated,deleted",
                notification_url=rec.url,
                lifecycle_notification_url=rec.url,
                resource="/groups",
                expiration_date_time=START + timedelta(days=2),
                client_state="s3cret",
            )
        )
        assert sub is not None
        assert sub.id
        # the documented create response carries notificationContentType; the SDK model lacks it
        no_extras(sub, frozenset({"notificationContentType"}))
        assert sub.client_state == "s3cret"
        assert iso(sub.expiration_date_time) == iso(START + timedelta(days=2))
        listed = await client.subscriptions.get()
        assert listed is not None
        assert listed.value is not None
        assert listed.value[0].client_state is None
    mail = SendMailPostRequestBody(
        message=Message(
            subject="Licensing alert",
            body=ItemBody(content_type=BodyType.Html, content="<b>CountViolation</b>"),
            to_recipients=[Recipient(email_address=EmailAddress(address="ops@contoso.example"))],
        ),
        save_to_sent_items=False,
    )
    await client.users.by_user_id(USERS[0]).send_mail.post(mail)
    async with httpx.AsyncClient() as c:
        out = (await c.get(url.replace("/v1.0", "/_sim/outbox"))).json()["value"]
    assert out[0]["subject"] == "Licensing alert"
    assert out[0]["bodyContentType"] == "HTML"
    assert out[0]["saveToSentItems"] is False


def test_select_schema_restates_the_sdks_v1_models() -> None:
    """graphsim's `$select` property lists are the v1.0 models' (graphsim imports no SDK)."""
    from msgraph.generated.models.group import Group
    from msgraph.generated.models.organization import Organization
    from msgraph.generated.models.subscribed_sku import SubscribedSku
    from msgraph.generated.models.user import User

    from graphsim import schema

    for model, known in (
        (User, schema.USER_PROPERTIES),
        (Group, schema.GROUP_PROPERTIES),
        (Organization, schema.ORGANIZATION_PROPERTIES),
        (SubscribedSku, schema.SUBSCRIBED_SKU_PROPERTIES),
    ):
        fields = {f for f in model().get_field_deserializers() if not f.startswith("@")}
        assert known == fields, model.__name__
