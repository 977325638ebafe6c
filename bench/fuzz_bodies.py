"""The fuzz bodies of `bench/reliability_fuzz.py`: a seeded generator of webhook requests.

One `random.Random` per request (seeded from the plan), so a run draws the same bodies
whatever the thread interleaving. Forged items name ids from `FORGED_NS` only, authentic ones
from `GENUINE_NS`, so what reaches the queue can be told apart afterwards.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from devhost.stack import CLIENT_STATE

TENANT = "9b2f0c1e-0c5a-4a57-9a3e-6c1f0b0e8d11"
SUBSCRIPTION = "5e7a1f3c-2b4d-4c6e-8f90-a1b2c3d4e5f6"
GENUINE_NS = uuid.UUID("6f1d3a52-1c8e-4f57-9a0b-0d5c2e7b9a11")
FORGED_NS = uuid.UUID("0bad0bad-1c8e-4f57-9a0b-0d5c2e7b9a11")
MAX_BODY = 1_000_000
GENUINE_BATCH = 2_000
KINDS: tuple[tuple[str, int], ...] = (  # weights in ‰
    ("random_bytes", 150),
    ("wrong_types", 140),
    ("nested", 50),
    ("unicode", 100),
    ("lookalike", 150),
    ("bad_client_state", 140),
    ("foreign", 60),
    ("mixed", 80),
    ("huge", 10),
    ("genuine_batch", 10),
    ("handshake", 60),
    ("lifecycle_forged", 50),
)


def _guid(ns: uuid.UUID, rng: random.Random) -> str:
    return str(uuid.uuid5(ns, str(rng.getrandbits(64))))


def _item(group: str, **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "subscriptionId": SUBSCRIPTION,
        "clientState": CLIENT_STATE,
        "changeType": "updated",
        "resource": f"Groups/{group}",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Group", "id": group},
        "tenantId": TENANT,
    }
    item.update(overrides)
    return item


def _lookalike(rng: random.Random) -> str:
    g = _guid(FORGED_NS, rng)
    forms = [
        g + "\n", g + "\r\n", g + " ", " " + g, g + "\x00", "{" + g + "}", g.replace("-", ""),
        "urn:uuid:" + g, g[:-1], g + "0", g[:-1] + "\u0430",  # Cyrillic a
        g.translate(str.maketrans("0123456789", "０１２３４５６７８９")), g + "/members",
        g.upper() + "\n", g + "%0A", g.replace("-", "\u2010"),
    ]  # fmt: skip
    return rng.choice(forms)


def _unicode_text(rng: random.Random, n: int) -> str:
    pools = ["\u202e\u200b\ufeff", "ÄÖÜßéèñ", "日本語中文", "\U0001f600\U0001f4a9", "\\", '"']
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def _wrong_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([0, -1, 2**63, 1.5e308, True, False])
    if choice == 2:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(40)))
    if choice == 3:
        return rng.choice(["", SUBSCRIPTION, TENANT, CLIENT_STATE, "groups/", "Groups/"])
    if choice == 4:
        return [_wrong_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["value", "subscriptionId", "clientState", "tenantId", "resource", "resourceData", "id"]
    return {rng.choice(keys): _wrong_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _envelope(items: list[Any]) -> bytes:
    return orjson.dumps({"value": items})


@dataclass
class Generated:
    endpoint: str
    """n: graph_notifications, l: graph_lifecycle"""
    body: bytes
    genuine: list[str] = field(default_factory=list)
    """Ids of authentic items: each must be enqueued."""
    forged: list[str] = field(default_factory=list)
    """Ids of items that fail authentication: none may be enqueued."""
    neutral: list[str] = field(default_factory=list)
    """Ids of authentic items with a damaged resource: may or may not be enqueued."""
    token: str | None = None


def body_for(kind: str, rng: random.Random) -> Generated:
    """One request of `kind`, its body drawn from `rng`."""
    made: list[str] = []

    def forged() -> str:
        made.append(_guid(FORGED_NS, rng))
        return made[-1]

    endpoint, data, genuine, neutral, token = _generate(kind, rng, forged)
    return Generated(endpoint, data, genuine, made, neutral, token)


Draw = tuple[str, bytes, list[str], list[str], str | None]


def _generate(kind: str, rng: random.Random, forged: Any) -> Draw:  # noqa: PLR0915
    if kind == "random_bytes":
        return "n", rng.randbytes(rng.randrange(0, 4096)), [], [], None
    if kind == "wrong_types":
        document = rng.choice(
            [_wrong_value(rng), {"value": _wrong_value(rng)}, {"value": [_wrong_value(rng)]}]
        )
        if rng.random() < 0.5:  # an authentic item, one resource field of the wrong type
            group = _guid(GENUINE_NS, rng)
            item = _item(group)
            item[rng.choice(["resource", "resourceData", "changeType"])] = _wrong_value(rng)
            return "n", _envelope([item]), [], [group], None
        if rng.random() < 0.5:  # an authentication field of the wrong type
            item = _item(forged())
            name = rng.choice(["clientState", "subscriptionId", "tenantId"])
            right = {
                "clientState": CLIENT_STATE,
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
            }
            wrong = _wrong_value(rng)
            item[name] = wrong if wrong != right[name] else None
            document = {"value": [item]}
        return "n", orjson.dumps(document), [], [], None
    if kind == "nested":
        depth = rng.choice([50, 500, 2_000, 20_000])
        inner = "[" * depth + "]" * depth
        text = rng.choice(
            [inner, '{"value":' + inner + "}", '{"value":[{"resourceData":' + inner + "}]}"]
        )
        return "n", text.encode(), [], [], None
    if kind == "unicode":
        item = _item(forged(), clientState=_unicode_text(rng, 20))
        item[rng.choice(["resource", "subscriptionId", "tenantId", "changeType"])] = _unicode_text(
            rng, rng.randrange(1, 60)
        )
        data = _envelope([item])
        if rng.random() < 0.3:  # an escaped lone surrogate, valid JSON text, invalid UTF-16
            data = data.replace(b'"changeType":"updated"', b'"changeType":"\\ud800x"')
        return "n", data, [], [], None
    if kind == "lookalike":
        bad = _lookalike(rng)
        where = rng.choice(["resourceData", "resource", "subscriptionId", "tenantId"])
        item = _item(forged())
        if where == "resourceData":
            item["resourceData"] = {"@odata.type": "#Microsoft.Graph.Group", "id": bad}
            item["resource"] = f"Groups/{bad}"
        elif where == "resource":
            del item["resourceData"]
            item["resource"] = f"Groups/{bad}"
        else:
            item[where] = bad
        return "n", _envelope([item]), [], [], None
    if kind == "bad_client_state":
        state = rng.choice(
            ["", "x", CLIENT_STATE + " ", CLIENT_STATE[:-1], CLIENT_STATE.upper(), None, 0]
        )
        items = [_item(forged(), clientState=state) for _ in range(rng.randrange(1, 50))]
        return "n", _envelope(items), [], [], None
    if kind == "foreign":
        field_name, value = rng.choice(
            [("tenantId", str(uuid.uuid4())), ("subscriptionId", str(uuid.uuid4()))]
        )
        return "n", _envelope([_item(forged(), **{field_name: value})]), [], [], None
    if kind == "mixed":
        genuine = [_guid(GENUINE_NS, rng) for _ in range(rng.randrange(1, 30))]
        items = [_item(g) for g in genuine]
        items += [_item(forged(), clientState="forged") for _ in range(rng.randrange(1, 30))]
        items += [_item(_lookalike(rng)) for _ in range(rng.randrange(1, 5))]
        rng.shuffle(items)
        return "n", _envelope(items), genuine, [], None
    if kind == "huge":
        item = {"clientState": "x", "resource": f"Groups/{forged()}"}
        n = MAX_BODY // (len(orjson.dumps(item)) + 1) + rng.choice([-40, 200])
        return "n", _envelope([item] * n), [], [], None  # just under, or just over, 1 MB
    if kind == "genuine_batch":
        genuine = [_guid(GENUINE_NS, rng) for _ in range(GENUINE_BATCH)]
        items = [{k: v for k, v in _item(g).items() if k != "resourceData"} for g in genuine]
        return "n", _envelope(items), genuine, [], None
    if kind == "handshake":
        alphabet = string.ascii_letters + string.digits + " +%&=?#/:;'\"<>" + "äé日\U0001f600"
        token = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 1_100)))
        return rng.choice("nl"), b"", [], [], token
    # lifecycle_forged
    item = {"subscriptionId": SUBSCRIPTION, "clientState": rng.choice(["forged", None, 1]),
            "tenantId": TENANT, "lifecycleEvent": rng.choice(
                ["reauthorizationRequired", "subscriptionRemoved", "missed", "x"])}  # fmt: skip
    return "l", rng.choice([_envelope([item]), rng.randbytes(100), b"{}"]), [], [], None


def plan(count: int, seed: int) -> list[tuple[str, int]]:
    """(kind, per-request seed) for every request; huge and genuine batches at least once."""
    rng = random.Random(seed)
    names = [k for k, _ in KINDS]
    kinds = rng.choices(names, weights=[w for _, w in KINDS], k=count)
    for i, must in enumerate(("huge", "genuine_batch", "handshake")):
        if must not in kinds and count > i:
            kinds[i] = must
    return [(kind, rng.getrandbits(63)) for kind in kinds]
