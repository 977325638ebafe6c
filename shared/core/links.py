"""Where a finding is fixed: the admin-center pages of a user's or a group's licenses.

The one place these addresses live. Microsoft documents the admin centers, not their deep-link
formats, so the forms below are the portals' own addresses as Microsoft's pages and admin
tooling use them (checked 2026-12):

* a user's licenses: the Microsoft 365 admin center's "Licenses and apps" tab of the user,
  `https://admin.microsoft.com/#/users/:/UserDetails/{id}/LicensesAndApps`;
* a group: the Entra admin center's group blade (its members, and its "Licenses" entry listing
  the products and the users in error; read-only since September 2024, when license changes and
  Reprocess moved to the Microsoft 365 admin center's Billing > Licenses),
  `https://entra.microsoft.com/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/groupId/{id}`;
* a user's profile in the Entra admin center,
  `https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/{id}`;
* products and seats: Billing > Licenses, `https://admin.microsoft.com/#/licenses` (linked from
  Microsoft's Teams admin documentation), and Your products, `/#/subscriptions`.

The report page, the mails, the CLI outputs and the alert channels all take their links from
here.

Pure: string formatting only.
"""

from __future__ import annotations

import re
from typing import Final

M365_ADMIN: Final = "https://admin.microsoft.com"
ENTRA_ADMIN: Final = "https://entra.microsoft.com"
PRODUCTS_URL: Final = f"{M365_ADMIN}/#/licenses"
"""Billing > Licenses: assigned and available seats per product."""
SUBSCRIPTIONS_URL: Final = f"{M365_ADMIN}/#/subscriptions"
"""Billing > Your products: subscriptions, renewals, buying seats."""


_UNSAFE: Final = re.compile(r"[^0-9A-Za-z._~-]")


def _segment(object_id: str) -> str:
    """Percent-encode everything but unreserved characters (ids are GUIDs; this is a guard)."""
    text = object_id.strip()
    if text.isascii() and text.replace("-", "").isalnum():  # a GUID: nothing to encode
        return text
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), text)


def user_license_url(user_id: str) -> str:
    """The user's licenses and apps in the Microsoft 365 admin center."""
    return f"{M365_ADMIN}/#/users/:/UserDetails/{_segment(user_id)}/LicensesAndApps"


def entra_user_url(user_id: str) -> str:
    """The user's profile in the Microsoft Entra admin center."""
    return (
        f"{ENTRA_ADMIN}/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/"
        f"userId/{_segment(user_id)}"
    )


def group_license_url(group_id: str) -> str:
    """The group in the Entra admin center (members; Licenses: its products, users in error)."""
    return (
        f"{ENTRA_ADMIN}/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/groupId/"
        f"{_segment(group_id)}"
    )


def finding_url(subject: str) -> str:
    """The page where a finding about `subject` is fixed: a group's findings (subject
    `group:ID`) at the group, a product's (`sku:ID`) at Billing > Licenses, a user's at the
    user's licenses. The page depends on the subject alone (a user's finding from a group
    links the group separately), so renderers may cache it per subject."""
    kind, _, ident = subject.partition(":")
    if ident and kind == "group":
        return group_license_url(ident)
    if ident and kind == "sku":
        return PRODUCTS_URL
    return user_license_url(subject)
