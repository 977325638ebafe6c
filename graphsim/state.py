"""SimState: the one tenant graphsim simulates, its data and clockwork (:mod:`graphsim.tenant`)
with every write the Graph API and the control API can make (membership, license and group
lifecycle changes).
"""

from __future__ import annotations

from .group_lifecycle import GroupLifecycle
from .license_changes import LicenseChanges
from .membership_changes import MembershipChanges


class SimState(MembershipChanges, LicenseChanges, GroupLifecycle):
    """Everything graphsim knows about its one tenant, and every way it can change."""
