"""Where an admin acts on a user, a group or a product: the admin-center deep links, in one
place, so the report page, the mails and the alert channels all point at the same pages.

URL forms as the portals use them (checked against public scripts and docs, Dec 2026):

* Microsoft Entra admin center, a user's profile:
  ``https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/{id}``
* Microsoft Entra admin center, a group (its Licenses blade is one click away):
  ``https://entra.microsoft.com/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/groupId/{id}``
* Microsoft 365 admin center, a user's licenses and apps:
  ``https://admin.microsoft.com/#/users/:/UserDetails/{id}/LicensesAndApps``
* Microsoft 365 admin center, products (seats) and licenses: ``/#/subscriptions``, ``/#/licenses``.

Pure: string building only. Ids are GUIDs from Graph; anything else is percent-encoded so a
hostile id cannot change the link's target.
"""

from __future__ import annotations

from typing import Final

ADMIN_CENTER: Final = "https://admin.microsoft.com"
ENTRA_ADMIN_CENTER: Final = "https://entra.microsoft.com"


def _id(value: str) -> str:
    """Percent-encode everything but ASCII letters, digits and '-' (a GUID passes as is)."""
    return "".join(
        c if c.isascii() and (c.isalnum() or c == "-") else "".join(f"%{b:02X}" for b in c.encode())
        for c in value
    )


def entra_user_url(user_id: str) -> str:
    """The user's profile in the Microsoft Entra admin center."""
    return (
        f"{ENTRA_ADMIN_CENTER}/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade"
        f"/~/overview/userId/{_id(user_id)}"
    )


def user_licenses_url(user_id: str) -> str:
    """The user's licenses and apps in the Microsoft 365 admin center."""
    return f"{ADMIN_CENTER}/#/users/:/UserDetails/{_id(user_id)}/LicensesAndApps"


def entra_group_url(group_id: str) -> str:
    """The group in the Microsoft Entra admin center (Licenses is in its menu)."""
    return (
        f"{ENTRA_ADMIN_CENTER}/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade"
        f"/~/Overview/groupId/{_id(group_id)}"
    )


def products_url() -> str:
    """Your products (seats, billing) in the Microsoft 365 admin center."""
    return f"{ADMIN_CENTER}/#/subscriptions"


def licenses_url() -> str:
    """Licenses (assigned and available per product) in the Microsoft 365 admin center."""
    return f"{ADMIN_CENTER}/#/licenses"
