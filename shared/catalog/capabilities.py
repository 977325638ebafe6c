"""The capability map: which service plans keep a user's data (mailbox, OneDrive/SharePoint).

`shared/data/capabilities.json` is generated from Microsoft's catalog by
`tools/make_capability_map.py`, which documents the rule and its exclusions. The core's
data-loss guard takes the map as an input (`Mapping[capability, frozenset[servicePlanId]]`);
this module only reads and checks the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

CAPABILITIES_JSON = Path(__file__).parent.parent / "data" / "capabilities.json"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CapabilityMapError(ValueError):
    """The capability map file is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class CapabilityMap:
    plans: MappingProxyType[str, frozenset[str]]
    """capability → servicePlanIds (lower case) that provide it."""
    labels: MappingProxyType[str, str]
    """capability → readable label, e.g. 'Exchange Online mailbox'."""


def read_capabilities(path: Path = CAPABILITIES_JSON) -> CapabilityMap:
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CapabilityMapError(f"{path}: cannot read the capability map ({exc})") from None
    entries = document.get("capabilities") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise CapabilityMapError(f"{path}: missing object 'capabilities'")
    plans: dict[str, frozenset[str]] = {}
    labels: dict[str, str] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("plans"), list):
            raise CapabilityMapError(f"{path}: capability '{name}' needs a 'plans' list")
        ids = set()
        for n, plan in enumerate(entry["plans"]):
            plan_id = plan.get("servicePlanId") if isinstance(plan, dict) else None
            if not isinstance(plan_id, str) or not _GUID.fullmatch(plan_id.lower()):
                raise CapabilityMapError(
                    f"{path}: capability '{name}' plans[{n}]: 'servicePlanId' must be a GUID"
                )
            ids.add(plan_id.lower())
        plans[name] = frozenset(ids)
        labels[name] = str(entry.get("label") or name)
    return CapabilityMap(MappingProxyType(plans), MappingProxyType(labels))


@cache
def capabilities() -> CapabilityMap:
    """The bundled capability map, loaded on first use."""
    return read_capabilities()
