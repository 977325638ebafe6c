"""How each app setting's text becomes its value: one parser per kind of setting.

Every parser takes the stripped, non-empty text of one setting and returns its value, or raises
ValueError with a short reason that `Settings.from_env` reports next to the setting's name.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Final
from urllib.parse import urlsplit

TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS: Final = frozenset({"false", "0", "no", "off"})
UNRESOLVED_REFERENCE: Final = (
    "a Key Vault reference the platform could not resolve (the app got the reference, not the "
    "secret): check that the secret exists and is enabled and that the app's identity holds Key "
    "Vault Secrets User on the vault, then restart the app"
)


def is_unresolved_reference(text: str) -> bool:
    """True for a Key Vault reference (``@Microsoft.KeyVault(...)``) as the app sees it when App
    Service could not read the secret: it then passes the reference text on instead."""
    return text.strip().lower().startswith("@microsoft.keyvault(")


def parse_guid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a GUID") from None


def parse_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an absolute http(s) URL")
    return text.rstrip("/")


def parse_notification_url(text: str) -> str:
    """Where Graph posts notifications: HTTPS, as Graph delivers to nothing else (subscription
    resource: notificationUrl, lifecycleNotificationUrl); http only on this machine (graphsim,
    the dev host)."""
    url = parse_url(text)
    parts = urlsplit(url)
    if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
        raise ValueError(
            "must be an https URL: Graph sends notifications to HTTPS only "
            "(http is for a loopback address, graphsim)"
        )
    return url


def parse_client_state(text: str) -> str:
    if not 16 <= len(text) <= 128:  # Graph caps clientState at 128 characters
        raise ValueError("must be 16 to 128 characters")
    return text


def parse_bool(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"{text!r} is not a boolean (true/false, 1/0, yes/no, on/off)")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def parse_positive_int(text: str) -> int:
    number = _integer(text)
    if number < 1:
        raise ValueError(f"{number} must be at least 1")
    return number


MAX_DAYS: Final = 36_500
MAX_MINUTES: Final = MAX_DAYS * 1440
"""A century: a span of time past it is subtracted from now to a date before year 1."""


def _span(number: int, maximum: int) -> int:
    if number > maximum:
        raise ValueError(f"{number} must be at most {maximum} (100 years)")
    return number


def parse_positive_days(text: str) -> int:
    return _span(parse_positive_int(text), MAX_DAYS)


def parse_days(text: str) -> int:
    return _span(parse_non_negative_int(text), MAX_DAYS)


def parse_positive_minutes(text: str) -> int:
    return _span(parse_positive_int(text), MAX_MINUTES)


def parse_minutes(text: str) -> int:
    return _span(parse_non_negative_int(text), MAX_MINUTES)


def parse_group_ids(text: str) -> frozenset[str]:
    return frozenset(parse_guid(item) for item in list_items(text))


def parse_allowlist(text: str) -> frozenset[str]:
    """``ACT_GROUP_ALLOWLIST``: group GUIDs. Unset (empty) means every group, so a value that
    holds no id (quotes left from a shell or the portal, a stray separator) is refused: read as
    empty it would let act mode write for every group."""
    ids = parse_group_ids(text)
    if not ids:
        raise ValueError(
            f"{text!r} holds no group id; to act for every group, leave the setting empty"
        )
    return ids


def parse_non_negative_int(text: str) -> int:
    number = _integer(text)
    if number < 0:
        raise ValueError(f"{number} must not be negative")
    return number


EMAIL_PATTERN = re.compile(r"[^@\s,;<>\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def parse_email(text: str) -> str:
    if not EMAIL_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not an email address")
    return text.lower()


def parse_emails(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_email(item) for item in list_items(text)))


LIST_ENTRIES: Final = re.compile(r"[,;\r\n]+")
"""Between the entries of a pasted list: commas, Outlook's semicolons, Excel's line breaks."""
_QUOTED_NAME: Final = re.compile(r'"[^"]*"(?=\s*<)')
_NAMED_ITEM: Final = re.compile(r"[^<>@]*<([^<>]*)>")


def list_items(text: str) -> list[str]:
    """The items of a list setting, in order: separated by commas, semicolons or white space
    (line breaks too), so a list pasted from Outlook or an Excel column works. An entry as
    Outlook copies an address, `Name <item>` or `"Last, First" <item>`, is its item."""
    items: list[str] = []
    for entry in LIST_ENTRIES.split(_QUOTED_NAME.sub("", text)):
        named = _NAMED_ITEM.fullmatch(entry.strip())
        parts = [named.group(1)] if named else entry.split()
        items.extend(part.strip("<>\"'") for part in parts)
    return [item for item in items if item]


def parse_words(text: str) -> frozenset[str]:
    """Ids or UPNs, lower-cased."""
    return frozenset(item.lower() for item in list_items(text))


def parse_baseline(text: str) -> str:
    value = text.lower()
    if value != "off" and not (value == "reset" or value.startswith("reset-")):
        raise ValueError(f"{text!r} is not 'off', 'reset' or 'reset-<label>'")
    return value


_MONTHS: Final = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_DAYS: Final = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_CRON_FIELDS: Final[tuple[tuple[str, int, int, tuple[str, ...]], ...]] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
"""Each field of the host's NCRONTAB (NCrontab's `CrontabFieldImpl`): its range and names."""


_CRON_VALUE: Final = re.compile(r"[0-9]+[\t-\r ]*")
"""A value as NCrontab reads one that starts with a digit (.NET `int.Parse`): ASCII digits,
then white space (no tab or space separates fields: only a space does)."""
_CRON_STEP: Final = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")
"""A step as `int.Parse` reads it: a sign allowed (a step below 1 is read as 1, `*/0` as `*`)."""


def parse_ncrontab(text: str) -> str:
    """A six-field NCRONTAB schedule whose every field the host can read: a value it cannot
    is not refused at start, the host just does not load that timer function. Accepts exactly
    what NCrontab does (devhost/ncrontab.py reads the same; tests/devhost/test_ncrontab.py
    holds both to one list): fields split on spaces only, a range written backwards read
    forwards, any step (below 1 is 1), a name by any prefix of its full English name."""
    if breaks := sorted({repr(c) for c in text if c.isspace() and c != " "}):
        raise ValueError(
            f"holds {', '.join(breaks)}: the host splits a schedule on spaces only, so it would "
            "not load this timer (a line break pasted with the value?)"
        )
    parts = [part for part in text.split(" ") if part]
    if len(parts) != 6:
        raise ValueError(f"{text!r} is not a six-field NCRONTAB (sec min hour day month weekday)")
    for part, (field, lo, hi, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(",") if part.find(",") > 0 else [part]:
            _cron_item(item, f"{field} field", lo, hi, names, part)
    return text


def _cron_item(item: str, where: str, lo: int, hi: int, names: tuple[str, ...], part: str) -> None:
    """`*`, `a` or `a-b`, each with an optional `/step`, as NCrontab reads them: a number in
    the field's range, or a name's prefix (`M` March, `Mon`, `Monday`); ValueError naming the
    field."""

    def value(word: str) -> int:
        if not word:
            raise ValueError(f"{where}: an empty value in {part!r}")
        if word[0] in "0123456789":
            if not _CRON_VALUE.fullmatch(word):
                raise ValueError(f"{where}: {word!r} is not a number")
            if not lo <= int(word) <= hi:
                raise ValueError(f"{where}: {int(word)} is outside {lo}-{hi}")
            return int(word)
        for n, name in enumerate(names):
            if name.startswith(word.lower()):
                return lo + n
        raise ValueError(f"{where}: {word!r} is not a number or a known name")

    if not item:
        raise ValueError(f"{where}: empty list item in {part!r}")
    base, slash, step = item, "", ""
    if item.find("/") > 0:
        base, slash, step = item.partition("/")
    if slash and not (_CRON_STEP.fullmatch(step) and -(2**31) <= int(step) < 2**31):
        raise ValueError(f"{where}: step {step!r} is not a whole number")
    if base != "*":
        dash = base.find("-")
        if dash > 0:
            value(base[:dash])
            value(base[dash + 1 :])
        else:
            value(base)


_AROUND_EQUALS: Final = re.compile(r"[ \t]*=[ \t]*")
"""`EMS = 10.6` is one item of a list: the spaces are no separators there."""


def parse_sku_prices(text: str) -> dict[str, float]:
    """``PART=PRICE,PART=PRICE``: a product (skuPartNumber or skuId) and its monthly price."""
    prices: dict[str, float] = {}
    for part in list_items(_AROUND_EQUALS.sub("=", text)):
        name, sep, value = part.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = -1.0
        if not sep or not name.strip() or not price >= 0 or price == float("inf"):
            raise ValueError(f"{part!r} is not PRODUCT=PRICE (a non-negative number)")
        prices[name.strip()] = price
    return prices


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback IP address: where graphsim (not Graph) runs."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
