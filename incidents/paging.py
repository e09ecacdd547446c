"""Who is woken when an incident needs someone: the `paging` slot of the extension points.

The core's default, `Ladder`, pages the escalation ladder (EscalationLevel): its first
level triages a candidate raised by an alert, and the watchdog pages each level an
unacknowledged incident reaches. An app that pages by its own rules (the oncall app's
rotations and escalation policies) provides its own `Paging` in `AppConfig.ready()`;
then the ladder pages nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings

from . import notifications
from .models import EscalationLevel, Incident, TimelineEvent
from .services.timeline import timeline_record
from .watchdogs import escalate_unacknowledged


class Paging(Protocol):
    # Whether this provider pages the EscalationLevel rows (the admin lists them only then).
    uses_ladder: bool

    def triage(self, incident: Incident, *, lead, actor, source: str, when: datetime) -> list:
        """Page whoever triages the new candidate `incident` (inside its declaration's
        transaction), say so on its timeline, and return the outbox messages still to
        write (or write them itself and return none). Never silent: when it pages
        nobody, the timeline says so and `lead` is told."""

    def escalate(self, now: datetime | None = None) -> int:
        """Run one round of escalation (the minute watchdog); return the steps fired."""


class Ladder:
    """The core's paging: the escalation ladder."""

    uses_ladder = True

    def __repr__(self):
        return "<escalation ladder>"

    def triage(self, incident, *, lead, actor, source, when):
        return page_for_triage(incident, lead=lead, actor=actor, source=source, when=when)

    def escalate(self, now=None):
        return escalate_unacknowledged(now)


@dataclass(frozen=True)
class TriagePaging:
    """Who a new triage candidate pages: `users` (by email) and channel `targets`, from
    escalation `level` (None: there is no level to page)."""

    level: EscalationLevel | None
    users: list
    targets: list

    @property
    def reaches_anyone(self) -> bool:
        return bool(self.users or self.targets)


def triage_recipients(incident: Incident) -> TriagePaging:
    """Return who is paged when `incident` is raised for triage: the first level of the
    escalation ladder (its active members with an email address, its enabled channels,
    as the watchdogs page it), not the stakeholder matrix, which hears of the incident
    once it is accepted. Three queries."""
    level = EscalationLevel.objects.filter(level=1).prefetch_related("members", "targets").first()
    if level is None:
        return TriagePaging(level=None, users=[], targets=[])
    return TriagePaging(
        level=level,
        users=sorted(
            (user for user in level.members.all() if user.is_active and user.email),
            key=lambda user: user.get_username(),
        ),
        targets=[target for target in level.targets.all() if target.enabled],
    )


def page_for_triage(incident: Incident, *, lead, actor, source: str, when: datetime) -> list:
    """Return the messages that page whoever triages the new candidate, and say on its
    timeline whom they reach. Paging is never silent: when they reach nobody, the
    timeline says so and whoever leads (the commander, else the declarer) is told."""
    paging = triage_recipients(incident)
    link = f"{settings.SITE_URL}{incident.get_absolute_url()}"
    raised = (
        f"{incident.reference} was raised for triage as {incident.severity.key} "
        f"{incident.incident_type.name.lower()} in {incident.environment}: {incident.title}"
    )
    details = {
        "level": paging.level.level if paging.level else None,
        "users": [user.get_username() for user in paging.users],
        "targets": [target.name for target in paging.targets],
        "paged_nobody": not paging.reaches_anyone,
    }
    if paging.reaches_anyone:
        summary = (
            f"Paged {paging.level} to triage it: {', '.join(details['users'] + details['targets'])}"
        )
        messages = [
            notifications.Message(
                incident,
                notifications.Event.TRIAGE,
                subject=f"Triage {incident.severity.key} {incident.reference}: {incident.title}",
                message=f"{raised}\n\nAccept it to declare the incident, or decline it as a "
                f"false positive:\n{link}",
                users=paging.users,
                targets=paging.targets,
            )
        ]
    else:
        why = (
            "there is no escalation level 1"
            if paging.level is None
            else f"{paging.level} has no members with an email address and no enabled channels"
        )
        summary = f"Paged nobody to triage it: {why}"
        messages = []
        if lead is not None:
            details["told"] = lead.get_username()
            messages.append(
                notifications.Message(
                    incident,
                    notifications.Event.TRIAGE,
                    subject=f"Nobody paged for triage: {incident.reference}: {incident.title}",
                    message=f"{raised}\n\nNobody was paged for it: {why}. Give escalation "
                    f"level 1 members or channels, and triage it:\n{link}",
                    users=[lead],
                )
            )
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.ESCALATION,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when,
        details=details,
    )
    return messages
