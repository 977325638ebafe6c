"""Behaviour of the simulated Entra group-based licensing processor, one GBL rule per test.

Quotes are from /work/shared/graph-facts.md §3-4 (paraphrased Microsoft docs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from graphsim import license_status, memberships
from graphsim.license_rules import LicensingRules
from graphsim.licensing import process_users

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)

PLANS = {
    "E3": ["EXO2", "SPO2", "TEAMS", "OFFICE"],
    "E1": ["EXO1", "SPO1", "TEAMS"],
    "EMS": ["AADP1", "INTUNE"],
    "PHONE": ["MCOEV"],
    "CALLING": ["PSTN"],
}


class Tenant:
    """A tiny tenant built from readable literals; ids are names, not GUIDs."""

    def __init__(self, **config: Any) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.skus: dict[str, dict[str, Any]] = {}
        self.config: dict[str, Any] = dict(config)
        for sku in PLANS:
            self.sku(sku)

    def sku(self, sku_id: str, seats: int = 100) -> Tenant:
        self.skus[sku_id] = {
            "skuId": sku_id,
            "skuPartNumber": sku_id,
            "consumedUnits": 0,
            "prepaidUnits": {"enabled": seats, "warning": 0, "suspended": 0, "lockedOut": 0},
            "servicePlans": [
                {"servicePlanId": p, "servicePlanName": p, "provisioningStatus": "Success"}
                for p in PLANS[sku_id]
            ],
        }
        return self

    def user(self, uid: str, usage_location: str | None = "US") -> Tenant:
        self.users[uid] = {
            "id": uid,
            "userPrincipalName": f"{uid}@contoso.example",
            "usageLocation": usage_location,
            "accountEnabled": True,
            "assignedLicenses": [],
            "licenseAssignmentStates": [],
            "assignedPlans": [],
        }
        return self

    def group(self, gid: str, *licenses: str | tuple[str, list[str]], members: str = "") -> Tenant:
        self.groups[gid] = {
            "id": gid,
            "displayName": gid,
            "securityEnabled": True,
            "assignedLicenses": [
                {"skuId": lic, "disabledPlans": []}
                if isinstance(lic, str)
                else {"skuId": lic[0], "disabledPlans": lic[1]}
                for lic in licenses
            ],
            "licenseProcessingState": "ProcessingComplete",
            "members": [],
        }
        for uid in members.split():
            self.join(gid, uid)
        return self

    def join(self, gid: str, member: str, odata_type: str = "#microsoft.graph.user") -> Tenant:
        if odata_type.endswith("user") and member not in self.users:
            self.user(member)
        self.groups[gid]["members"].append({"@odata.type": odata_type, "id": member})
        return self

    def leave(self, gid: str, uid: str) -> Tenant:
        self.groups[gid]["members"] = [m for m in self.groups[gid]["members"] if m["id"] != uid]
        return self

    def direct(self, uid: str, sku: str, disabled: list[str] | None = None) -> Tenant:
        """What assignLicense leaves behind: a direct entry the processor takes as input."""
        self.users[uid]["licenseAssignmentStates"].append(
            {
                "assignedByGroup": None,
                "disabledPlans": disabled or [],
                "error": None,
                "lastUpdatedDateTime": "2025-01-01T00:00:00Z",
                "skuId": sku,
                "state": "Active",
            }
        )
        return self

    def process(self, *uids: str, now: datetime = T0) -> set[str]:
        rules = LicensingRules.from_config(self.config)
        return process_users(uids or self.users, self.users, self.groups, self.skus, rules, now)

    def entry(self, uid: str, gid: str | None, sku: str) -> dict[str, Any]:
        (found,) = [
            e
            for e in self.users[uid]["licenseAssignmentStates"]
            if e["assignedByGroup"] == gid and e["skuId"] == sku
        ]
        return found

    def entries(self, uid: str) -> list[tuple[str | None, str, str, str | None]]:
        return [
            (e["assignedByGroup"], e["skuId"], e["state"], e["error"])
            for e in self.users[uid]["licenseAssignmentStates"]
        ]

    def held(self, uid: str) -> dict[str, list[str]]:
        return {lic["skuId"]: lic["disabledPlans"] for lic in self.users[uid]["assignedLicenses"]}

    def plans(self, uid: str) -> set[str]:
        return {p["servicePlanId"] for p in self.users[uid]["assignedPlans"]}

    def consumed(self, sku: str) -> int:
        return int(self.skus[sku]["consumedUnits"])


def test_group_member_gets_the_groups_license() -> None:
    """§4.1: licenses assigned to a security group are given to its members."""
    t = Tenant().group("g-e3", "E3", members="ann")

    changed = t.process()

    assert changed == {"ann"}
    assert t.entries("ann") == [("g-e3", "E3", "Active", None)]
    assert t.entry("ann", "g-e3", "E3")["lastUpdatedDateTime"] == "2025-03-01T09:00:00Z"
    assert t.held("ann") == {"E3": []}
    assert t.plans("ann") == set(PLANS["E3"])
    assert {p["capabilityStatus"] for p in t.users["ann"]["assignedPlans"]} == {"Enabled"}
    assert t.consumed("E3") == 1


def test_user_in_two_groups_with_the_same_sku_consumes_one_seat() -> None:
    """§4.1: a SKU received from several sources consumes ONE license."""
    t = Tenant().group("g-a", "E3", members="ann").group("g-b", "E3", members="ann")

    t.process()

    assert t.entries("ann") == [("g-a", "E3", "Active", None), ("g-b", "E3", "Active", None)]
    assert list(t.held("ann")) == ["E3"]
    assert t.consumed("E3") == 1


def test_overlapping_assignments_enable_the_union_of_enabled_plans() -> None:
    """§4.1: overlapping assignments of one product enable the union of their enabled plans."""
    t = (
        Tenant()
        .group("g-mail", ("E3", ["SPO2", "TEAMS", "OFFICE"]), members="ann")
        .group("g-teams", ("E3", ["EXO2", "SPO2", "OFFICE"]), members="ann")
    )

    t.process()

    assert t.held("ann") == {"E3": ["SPO2", "OFFICE"]}
    assert t.plans("ann") == {"EXO2", "TEAMS"}
    assert t.entry("ann", "g-mail", "E3")["disabledPlans"] == ["SPO2", "TEAMS", "OFFICE"]


def test_direct_and_inherited_copies_share_one_seat_and_the_direct_one_survives_leaving() -> None:
    """§4.1: direct + inherited of the same SKU = one seat; each path is kept independently."""
    t = Tenant().group("g-e3", "E3", members="ann").direct("ann", "E3", disabled=["OFFICE"])
    t.process()
    assert t.consumed("E3") == 1
    assert t.held("ann") == {"E3": []}

    t.leave("g-e3", "ann").process()

    assert t.entries("ann") == [(None, "E3", "Active", None)]
    assert t.held("ann") == {"E3": ["OFFICE"]}
    assert t.consumed("E3") == 1


def test_nested_group_members_get_nothing() -> None:
    """§4.1: nested groups are not supported; only first-level user members get the license."""
    t = Tenant().group("g-inner", members="bob").group("g-e3", "E3", members="ann")
    t.join("g-e3", "g-inner", "#microsoft.graph.group")

    t.process()

    assert t.held("ann") == {"E3": []}
    assert t.held("bob") == {}
    assert t.entries("bob") == []
    assert memberships.member_user_ids(t.groups["g-e3"]) == ["ann"]


def test_leaving_the_group_removes_its_license_and_frees_the_seat() -> None:
    """§4.1: leavers lose the group's licenses."""
    t = Tenant().group("g-e3", "E3", members="ann")
    t.process()

    changed = t.leave("g-e3", "ann").process(now=T1)

    assert changed == {"ann"}
    assert t.entries("ann") == []
    assert t.held("ann") == {}
    assert t.plans("ann") == set()
    assert t.consumed("E3") == 0


def test_group_dropping_a_sku_removes_it_from_its_members() -> None:
    """§4.1: the resulting state follows the group's assignments (here one product removed)."""
    t = Tenant().group("g", "E3", "EMS", members="ann")
    t.process()

    t.groups["g"]["assignedLicenses"] = [{"skuId": "EMS", "disabledPlans": []}]
    t.process(now=T1)

    assert t.entries("ann") == [("g", "EMS", "Active", None)]
    assert list(t.held("ann")) == ["EMS"]
    assert t.consumed("E3") == 0


def test_one_failing_product_blocks_all_products_of_that_group() -> None:
    """§4.1: if any product of a group fails for a user, NONE of that group's products is given."""
    t = Tenant().sku("EMS", seats=0).group("g", "E3", "EMS", members="ann")

    t.process()

    assert t.entries("ann") == [
        ("g", "E3", "Error", "CountViolation"),
        ("g", "EMS", "Error", "CountViolation"),
    ]
    assert t.held("ann") == {}
    assert t.consumed("E3") == 0


def test_siblings_of_a_failing_product_carry_the_groups_first_error() -> None:
    """Documented choice: failing products keep their own code, the others the first failure."""
    t = Tenant(prohibitedUsageLocations={"EMS": ["FR"]}).sku("PHONE", seats=0)
    t.user("ann", usage_location="FR").group("g", "E3", "EMS", "PHONE", members="ann")

    t.process()

    assert t.entries("ann") == [
        ("g", "E3", "Error", "ProhibitedInUsageLocationViolation"),
        ("g", "EMS", "Error", "ProhibitedInUsageLocationViolation"),
        ("g", "PHONE", "Error", "ProhibitedInUsageLocationViolation"),
    ]


def test_other_groups_of_the_user_are_not_blocked_by_a_failing_group() -> None:
    """§4.1: all-or-none applies per group; the user's other groups still apply."""
    t = Tenant().sku("EMS", seats=0).group("g-ems", "EMS", members="ann")
    t.group("g-e3", "E3", members="ann")

    t.process()

    assert t.entries("ann") == [
        ("g-e3", "E3", "Active", None),
        ("g-ems", "EMS", "Error", "CountViolation"),
    ]
    assert list(t.held("ann")) == ["E3"]


def test_newcomers_are_seated_in_user_id_order_when_seats_run_out() -> None:
    """§4.2 CountViolation: not enough seats; documented choice: sorted user id order."""
    t = Tenant().sku("E3", seats=2).group("g", "E3", members="cat ann bob")

    t.process()

    assert t.entries("ann")[0][2:] == ("Active", None)
    assert t.entries("bob")[0][2:] == ("Active", None)
    assert t.entries("cat")[0][2:] == ("Error", "CountViolation")
    assert t.consumed("E3") == 2


def test_users_who_already_hold_a_seat_keep_it_when_seats_are_short() -> None:
    """§4.1/§4.2: existing holders keep their license; only newcomers hit CountViolation."""
    t = Tenant().sku("E3", seats=1).group("g", "E3", members="bob")
    t.process()

    t.join("g", "ann").process(now=T1)

    assert t.entries("bob")[0][2:] == ("Active", None)
    assert t.entries("ann")[0][2:] == ("Error", "CountViolation")


def test_seats_freed_by_leavers_in_the_same_batch_go_to_newcomers() -> None:
    """Documented choice: users needing no new seat are recomputed first in a batch."""
    t = Tenant().sku("E3", seats=1).group("g", "E3", members="zed")
    t.process()

    t.leave("g", "zed").join("g", "ann").process("ann", "zed", now=T1)

    assert t.entries("ann") == [("g", "E3", "Active", None)]
    assert t.consumed("E3") == 1


def test_errored_users_are_not_retried_when_seats_free_up_until_reprocessed() -> None:
    """§3.4: freeing seats does not auto-fix users stuck in CountViolation; reprocess does."""
    t = Tenant().sku("E3", seats=1).group("g", "E3", members="ann bob")
    t.process()
    assert t.entries("bob")[0][3] == "CountViolation"

    t.leave("g", "ann").process("ann", now=T1)

    assert t.consumed("E3") == 0
    assert t.entries("bob")[0][3] == "CountViolation"
    assert t.process("bob", now=T1) == {"bob"}
    assert t.entries("bob") == [("g", "E3", "Active", None)]


def test_prohibited_usage_location_gives_a_violation() -> None:
    """§4.2: ProhibitedInUsageLocationViolation when the service is not allowed there."""
    t = Tenant(prohibitedUsageLocations={"E3": ["CN"]}).user("ann", usage_location="CN")
    t.group("g", "E3", members="ann")

    t.process()

    assert t.entries("ann") == [("g", "E3", "Error", "ProhibitedInUsageLocationViolation")]
    assert t.consumed("E3") == 0


def test_missing_usage_location_falls_back_to_tenant_country() -> None:
    """§4.2: users without a usage location inherit the directory's; it is never written."""
    t = Tenant(tenantCountry="CN", prohibitedUsageLocations={"E3": ["CN"]})
    t.user("ann", usage_location=None).user("bob", usage_location="US")
    t.group("g", "E3", members="ann bob")

    t.process()

    assert t.entries("ann")[0][3] == "ProhibitedInUsageLocationViolation"
    assert t.entries("bob")[0][3] is None
    assert t.users["ann"]["usageLocation"] is None


def test_mutually_exclusive_plan_errors_the_newer_path_and_keeps_the_existing_one() -> None:
    """§4.2: MutuallyExclusiveViolation; Entra never auto-resolves, the existing path works."""
    t = Tenant(mutuallyExclusivePlans=[["SPO1", "SPO2"]]).group("g-z-e1", "E1", members="ann")
    t.process()

    t.group("g-a-e3", "E3", members="ann").process(now=T1)

    assert t.entries("ann") == [
        ("g-a-e3", "E3", "Error", "MutuallyExclusiveViolation"),
        ("g-z-e1", "E1", "Active", None),
    ]
    assert list(t.held("ann")) == ["E1"]


def test_conflict_with_a_direct_assignment_errors_the_group_path() -> None:
    """§4.3: E1 (direct) + E3 (group) failed because SharePoint Plan 1 and Plan 2 conflict."""
    t = Tenant(mutuallyExclusivePlans=[["SPO1", "SPO2"]]).user("ann").direct("ann", "E1")
    t.group("g-e3", "E3", members="ann")

    t.process()

    assert t.entries("ann") == [
        (None, "E1", "Active", None),
        ("g-e3", "E3", "Error", "MutuallyExclusiveViolation"),
    ]


def test_conflict_clears_when_the_conflicting_group_path_goes_away() -> None:
    """§4.4: the target sits in a conflict error; removing the source group clears it."""
    t = Tenant(mutuallyExclusivePlans=[["SPO1", "SPO2"]]).group("g-e1", "E1", members="ann")
    t.process()
    t.group("g-e3", "E3", members="ann").process()
    assert t.entry("ann", "g-e3", "E3")["error"] == "MutuallyExclusiveViolation"

    t.leave("g-e1", "ann").process(now=T1)

    assert t.entries("ann") == [("g-e3", "E3", "Active", None)]
    assert list(t.held("ann")) == ["E3"]
    assert t.consumed("E1") == 0


def test_dependency_blocks_removal_and_keeps_the_license() -> None:
    """§4.2: DependencyViolation: removal blocked because another product's plan depends on it."""
    t = Tenant(planDependencies={"PSTN": ["MCOEV"]})
    t.group("g-phone", "PHONE", members="ann").group("g-calling", "CALLING", members="ann")
    t.process()

    t.leave("g-phone", "ann").process(now=T1)

    assert t.entries("ann") == [
        ("g-calling", "CALLING", "Active", None),
        ("g-phone", "PHONE", "ActiveWithError", "DependencyViolation"),
    ]
    assert set(t.held("ann")) == {"CALLING", "PHONE"}
    assert t.plans("ann") == {"PSTN", "MCOEV"}
    assert t.consumed("PHONE") == 1


def test_dependency_violation_clears_once_the_dependent_plan_goes_away() -> None:
    """§4.2 fix: remove the dependent first, then the base license can go."""
    t = Tenant(planDependencies={"PSTN": ["MCOEV"]})
    t.group("g-phone", "PHONE", members="ann").group("g-calling", "CALLING", members="ann")
    t.process()
    t.leave("g-phone", "ann").process()

    t.leave("g-calling", "ann").process(now=T1)

    assert t.entries("ann") == []
    assert t.consumed("PHONE") == 0


def test_dependency_is_satisfied_by_another_path_so_removal_goes_through() -> None:
    """§4.2 fix: keep the base plan via another path, then remove."""
    t = Tenant(planDependencies={"PSTN": ["MCOEV"]})
    t.group("g-phone", "PHONE", members="ann").group("g-phone2", "PHONE", members="ann")
    t.group("g-calling", "CALLING", members="ann")
    t.process()

    t.leave("g-phone", "ann").process(now=T1)

    assert ("g-phone", "PHONE", "ActiveWithError", "DependencyViolation") not in t.entries("ann")
    assert set(t.held("ann")) == {"CALLING", "PHONE"}


def test_removing_a_direct_prerequisite_is_refused_while_a_plan_depends_on_it() -> None:
    """§4.2: removal blocked because another product's plan depends on it (direct: 400)."""
    t = Tenant(planDependencies={"PSTN": ["MCOEV"]}).user("ann").direct("ann", "PHONE")
    t.group("g-calling", "CALLING", members="ann").process()
    rules = LicensingRules.from_config(t.config)

    blockers = license_status.direct_removal_blockers
    assert blockers(t.users["ann"], "PHONE", t.skus, rules) == ["PSTN"]
    assert blockers(t.users["ann"], "CALLING", t.skus, rules) == []


def test_adding_a_product_without_seats_to_a_group_blocks_its_existing_products() -> None:
    """§4.1 all-or-none also applies when a group gains a product its members cannot get."""
    t = Tenant().sku("EMS", seats=0).group("g", "E3", members="ann")
    t.process()

    t.groups["g"]["assignedLicenses"].append({"skuId": "EMS", "disabledPlans": []})
    t.process(now=T1)

    assert t.entries("ann") == [
        ("g", "E3", "Error", "CountViolation"),
        ("g", "EMS", "Error", "CountViolation"),
    ]
    assert t.consumed("E3") == 0


def test_dependent_plan_without_its_prerequisite_is_disabled() -> None:
    """§4.1: plans with dependencies must be assigned together or the dependent is disabled."""
    t = Tenant(planDependencies={"PSTN": ["MCOEV"]}).group("g", "CALLING", members="ann")

    t.process()

    assert t.entries("ann") == [("g", "CALLING", "Active", None)]
    assert t.held("ann") == {"CALLING": ["PSTN"]}
    assert t.plans("ann") == set()


def test_duplicate_proxy_user_gets_uniqueness_violation_until_the_flag_is_removed() -> None:
    """§4.2: duplicate proxy address; fix it in Exchange, then reprocess the user."""
    t = Tenant(duplicateProxyUsers=["ann"]).group("g", "E3", "EMS", members="ann")
    t.process()
    assert {e[3] for e in t.entries("ann")} == {"UniquenessViolation"}

    t.config["duplicateProxyUsers"] = []
    t.process(now=T1)

    assert {e[2] for e in t.entries("ann")} == {"Active"}


def test_only_changed_entries_get_a_new_last_updated_time() -> None:
    """§3.2: lastUpdatedDateTime belongs to each assignment; untouched ones keep theirs."""
    t = Tenant().group("g-e3", "E3", members="ann")
    t.process()

    changed = t.group("g-ems", "EMS", members="ann").process(now=T1)

    assert changed == {"ann"}
    assert t.entry("ann", "g-e3", "E3")["lastUpdatedDateTime"] == "2025-03-01T09:00:00Z"
    assert t.entry("ann", "g-ems", "EMS")["lastUpdatedDateTime"] == "2025-03-02T09:00:00Z"
    assert t.process(now=T1) == set()


def test_assigned_plans_keep_their_original_assigned_time() -> None:
    """§3.1: assignedDateTime records when a plan was assigned, not when it was recomputed."""
    t = Tenant().group("g-e1", "E1", members="ann")
    t.process()

    t.group("g-e3", "E3", members="ann").process(now=T1)

    times = {p["servicePlanId"]: p["assignedDateTime"] for p in t.users["ann"]["assignedPlans"]}
    assert times["TEAMS"] == "2025-03-01T09:00:00Z"
    assert times["EXO2"] == "2025-03-02T09:00:00Z"


def test_unknown_user_ids_are_ignored_and_only_requested_users_are_recomputed() -> None:
    """§3.4: nothing is recomputed unless asked (no automatic retries)."""
    t = Tenant().group("g", "E3", members="ann bob")

    assert t.process("ann", "nobody") == {"ann"}
    assert t.held("bob") == {}


def test_group_that_is_not_security_enabled_grants_nothing() -> None:
    """§4.1: licenses go to security groups or M365 groups with securityEnabled=true."""
    t = Tenant().group("g", "E3", members="ann")
    t.groups["g"]["securityEnabled"] = False

    t.process()

    assert t.held("ann") == {}


def test_license_processing_state_is_written_back_in_the_form_found() -> None:
    """§3.3: licenseProcessingState may be a string or an object with a state member."""
    as_string: dict[str, Any] = {"licenseProcessingState": "QueuedForProcessing"}
    as_object: dict[str, Any] = {"licenseProcessingState": {"state": "QueuedForProcessing"}}
    absent: dict[str, Any] = {}

    for group in (as_string, as_object, absent):
        license_status.set_license_processing_state(group, "ProcessingComplete")

    assert as_string["licenseProcessingState"] == "ProcessingComplete"
    assert as_object["licenseProcessingState"] == {"state": "ProcessingComplete"}
    assert absent["licenseProcessingState"] == "ProcessingComplete"
    assert license_status.license_processing_state(as_object) == "ProcessingComplete"


def test_members_with_license_errors_lists_direct_members_in_error_from_that_group() -> None:
    """§3.3: membersWithLicenseErrors = users in error from this group's assignment."""
    t = Tenant().sku("E3", seats=1).group("g", "E3", members="ann bob").group("h", "EMS")
    t.process()
    index = memberships.index_memberships(t.groups)

    assert license_status.members_with_license_errors("g", t.users, t.groups) == ["bob"]
    assert license_status.group_has_members_with_errors("g", t.users, index)
    assert not license_status.group_has_members_with_errors("h", t.users, index)
    assert memberships.licensed_group_ids_for_user("ann", t.groups) == ["g"]


def test_recount_consumed_units_counts_one_seat_per_holding_user() -> None:
    """§4.1: consumedUnits counts users, not paths."""
    t = Tenant().group("g", "E3", members="ann bob").group("h", "E3", members="ann")
    t.process()
    t.skus["E3"]["consumedUnits"] = 99

    license_status.recount_consumed_units(t.users, t.skus)

    assert t.consumed("E3") == 2


def test_rules_default_to_a_us_tenant_without_restrictions() -> None:
    """x-graphsim is optional; Graph exposes none of these rules."""
    rules = LicensingRules.from_config(None)

    assert rules.tenant_country == "US"
    assert rules.conflicts() == {}
    assert LicensingRules.from_config({"mutuallyExclusivePlans": [["a", "b"]]}).conflicts() == {
        "a": frozenset({"b"}),
        "b": frozenset({"a"}),
    }
