"""An incident's milestones and response times, written out once: the incident page,
the API, the lifecycle and the post-mortem's facts and pages all read them here."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# The milestones of an incident (field, label), in the order they happen: impact
# begins, is detected, declared, acknowledged, its cause identified, mitigated,
# resolved, and the incident closed.
MILESTONES: tuple[tuple[str, str], ...] = (
    ("started_at", "Impact began"),
    ("detected_at", "Detected"),
    ("declared_at", "Declared"),
    ("acknowledged_at", "Acknowledged"),
    ("identified_at", "Cause identified"),
    ("mitigated_at", "Mitigated"),
    ("resolved_at", "Resolved"),
    ("closed_at", "Closed"),
)
MILESTONE_FIELDS: tuple[str, ...] = tuple(field for field, _ in MILESTONES)

# From the impact to its resolution: what a post-mortem reviews (an incident closes
# only once its review is published, so a review's facts never hold the closing).
RESPONSE_MILESTONES: tuple[tuple[str, str], ...] = MILESTONES[: MILESTONE_FIELDS.index("closed_at")]


@dataclass(frozen=True)
class ResponseTime:
    key: str  # the verb: time to <key>
    label: str
    start: str  # the milestone it is counted from
    end: str  # the milestone that ends it


# Detection and repair are counted from when the impact began; acknowledgement from the
# declaration, which is when the severity policy's response clock starts.
RESPONSE_TIMES: tuple[ResponseTime, ...] = (
    ResponseTime("detect", "Time to detect", "started_at", "detected_at"),
    ResponseTime("acknowledge", "Time to acknowledge", "declared_at", "acknowledged_at"),
    ResponseTime("mitigate", "Time to mitigate", "started_at", "mitigated_at"),
    ResponseTime("resolve", "Time to resolve", "started_at", "resolved_at"),
)


def milestone_times(incident, fields=MILESTONE_FIELDS) -> dict[str, datetime | None]:
    """Return the incident's time of each milestone in `fields` (None where not reached)."""
    return {field: getattr(incident, field) for field in fields}


def response_times(times: Mapping[str, datetime | None]) -> dict[str, timedelta | None]:
    """Return each response time by key, from milestone `times` (an incident's, or a
    review's facts parsed back); None where either end is not recorded."""
    lengths = {}
    for metric in RESPONSE_TIMES:
        start, end = times.get(metric.start), times.get(metric.end)
        lengths[metric.key] = end - start if start and end else None
    return lengths
