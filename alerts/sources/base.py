"""What every payload format shares: the parsed alert, the error, the checks on labels,
times and numbers (a monitoring system's JSON is input like any other)."""

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from incidents.services.common import UNPRINTABLE

FORMATS: dict[str, "PayloadFormat"] = {}

MAX_LABELS = 64
MAX_KEY = 100
MAX_VALUE = 1_000
MAX_ANNOTATION = 10_000
MAX_TITLE = 300
MAX_FINGERPRINT = 128


class PayloadError(Exception):
    """The payload cannot be taken as it is; the message says where and why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class ParsedAlert:
    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    title: str = ""
    fingerprint: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""

    def __post_init__(self):
        self.fingerprint = self.fingerprint or fingerprint_of(self.labels)
        if not self.title:
            self.title = (
                self.annotations.get("summary")
                or self.labels.get("alertname")
                or ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
                or "Alert"
            )[:MAX_TITLE]


def fingerprint_of(labels: dict[str, str]) -> str:
    """Return a stable fingerprint of the label set (the same labels, the same alert)."""
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class PayloadFormat:
    kind: str
    label: str

    def parse(self, data) -> list[ParsedAlert]:
        """Return the alerts `data` (decoded JSON) carries, or raise PayloadError."""
        raise NotImplementedError


def register(cls):
    FORMATS[cls.kind] = cls()
    return cls


def get_format(kind: str) -> PayloadFormat:
    return FORMATS[kind]


# --- checks shared by the formats ------------------------------------------------------


def text(value, where: str, limit: int, *, required: bool = False) -> str:
    """Return `value` as clean text (no NUL or terminal escapes: PostgreSQL's JSON refuses
    NUL), or raise naming `where`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, not {type(value).__name__}.")
    value = UNPRINTABLE.sub("", value).strip()
    if required and not value:
        raise PayloadError(f"{where} is required.")
    if len(value) > limit:
        raise PayloadError(f"{where} is longer than {limit:,} characters.")
    return value


def string_map(value, where: str, value_limit: int = MAX_VALUE) -> dict[str, str]:
    """Return a {name: text} mapping (labels, annotations), or raise naming `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of names to strings.")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where} has {len(value)} entries; at most {MAX_LABELS}.")
    cleaned = {}
    for key, item in value.items():
        name = text(key, f"{where} name", MAX_KEY, required=True)
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise PayloadError(f"{where}.{name} must be a string.")
        cleaned[name] = text(str(item), f"{where}.{name}", value_limit)
    return cleaned


def number_map(value, where: str) -> dict[str, float]:
    """Return a {name: number} mapping (metric values), or raise naming `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of names to numbers.")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where} has {len(value)} entries; at most {MAX_LABELS}.")
    numbers = {}
    for key, item in value.items():
        name = text(key, f"{where} name", MAX_KEY, required=True)
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise PayloadError(f"{where}.{name} must be a number.")
        try:
            number = float(item)  # an integer past 1.8e308 does not convert
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise PayloadError(f"{where}.{name} must be a finite number.")
        numbers[name] = number
    return numbers


def numeric_annotations(annotations: dict[str, str]) -> dict[str, float]:
    """Return the annotations that hold a number (Alertmanager carries values only there,
    e.g. `value: "0.23"`), as metric values."""
    numbers = {}
    for key, item in annotations.items():
        try:
            number = float(item)
        except ValueError:
            continue
        if math.isfinite(number):
            numbers[key] = number
    return numbers


def timestamp(value, where: str) -> datetime | None:
    """Return an aware datetime from an RFC 3339 string; None for empty or Go's zero time
    (what Alertmanager sends for "not ended")."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be an RFC 3339 time string.")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise PayloadError(f"{where} is not a time: {value[:40]!r}.")
    if parsed.tzinfo is None:
        raise PayloadError(f"{where} needs a time zone (e.g. a trailing Z).")
    if parsed.year <= 1:
        return None
    try:
        parsed.astimezone(UTC)  # stored in UTC: 9999-12-31T23:00-05:00 is past year 9999
    except OverflowError:
        raise PayloadError(f"{where} is out of range: {value[:40]!r}.") from None
    return parsed


def status(value, where: str) -> str:
    if value not in ("firing", "resolved"):
        raise PayloadError(f'{where} must be "firing" or "resolved".')
    return value


def alert_list(value, where: str) -> list:
    if not isinstance(value, list):
        raise PayloadError(f"{where} must be a list of alerts.")
    return value


def obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object.")
    return value
