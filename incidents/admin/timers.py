"""The SLA timers of an incident (acknowledgement, next status update), worked out once
for every page that shows them: the changelist columns and the war-room header."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html

from ..formatting import short_duration
from ..models import Incident
from ..watchdogs import next_update_due
from .base import badge

OVERDUE_COLOR = "#b91c1c"
DUE_COLOR = "#b45309"


@dataclass(frozen=True)
class Timer:
    """One SLA clock: `state` is "done", "due", "overdue" or "none" (nothing owed)."""

    label: str
    state: str
    text: str
    due_at: datetime | None = None

    @property
    def is_overdue(self) -> bool:
        return self.state == "overdue"


def acknowledgement_timer(incident: Incident, now: datetime | None = None) -> Timer:
    """Return how the acknowledgement stands against the severity's response time."""
    label = "Acknowledgement"
    if incident.acknowledged_at is not None:
        taken = incident.acknowledged_at - (incident.declared_at or incident.acknowledged_at)
        return Timer(label, "done", f"✔ in {short_duration(taken)}")
    due = incident.ack_due_at
    if not incident.is_open or due is None:
        return Timer(label, "none", "—")
    now = now or timezone.now()
    if incident.is_ack_overdue(now):
        return Timer(label, "overdue", f"OVERDUE by {short_duration(now - due)}", due)
    return Timer(label, "due", f"due in {short_duration(due - now)}", due)


def next_update_timer(incident: Incident, now: datetime | None = None) -> Timer:
    """Return when the next status update is owed; reads the `last_update_due`
    annotation (watchdogs.with_last_update_due) when the queryset has it."""
    label = "Next update"
    due = next_update_due(incident, getattr(incident, "last_update_due", None))
    if due is None:
        return Timer(label, "none", "—")
    now = now or timezone.now()
    if due < now:
        return Timer(label, "overdue", f"update overdue {short_duration(now - due)}", due)
    return Timer(label, "due", f"in {short_duration(due - now)}", due)


def acknowledgement_column(incident: Incident):
    """The changelist cell of the acknowledgement timer."""
    timer = acknowledgement_timer(incident)
    if timer.state == "overdue":
        return badge(timer.text, OVERDUE_COLOR)
    if timer.state == "due":
        return format_html('<span style="color:{}">{}</span>', DUE_COLOR, timer.text)
    return timer.text


def next_update_column(incident: Incident):
    """The changelist cell of the next-update timer."""
    timer = next_update_timer(incident)
    if timer.state == "overdue":
        return badge(timer.text, OVERDUE_COLOR)
    return timer.text
