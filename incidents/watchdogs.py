"""The watchdogs django-q2 runs every minute: escalation of unacknowledged incidents and
reminders when a status update is overdue. Each step is written once (EscalationStep,
the notification's dedup key), so a watchdog that runs twice, or on two workers, pages
nobody twice."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from . import notifications
from .business_time import deadline
from .models import (
    EscalationLevel,
    EscalationStep,
    Incident,
    Role,
    Source,
    Status,
    StatusUpdate,
    TimelineEvent,
)

# Statuses in which an incident is being worked and owes stakeholders updates.
WORKING = (Status.DECLARED, Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)


def escalation_due_at(incident: Incident, level: int) -> datetime | None:
    """Return when the incident reaches escalation `level` if nobody acknowledges it:
    L1 at the acknowledgement deadline, each next level one escalation delay later."""
    due = incident.ack_due_at
    if due is None:
        return None
    severity = incident.severity
    for _ in range(level - 1):
        due = deadline(
            due, severity.escalate_after, business_hours=severity.response_in_business_hours
        )
    return due


def escalate_unacknowledged(now: datetime | None = None) -> int:
    """Page every escalation level an unacknowledged incident has reached; return how many
    steps fired."""
    now = now or timezone.now()
    levels = list(EscalationLevel.objects.prefetch_related("members", "targets"))
    fired = 0
    waiting = Incident.objects.filter(
        status=Status.DECLARED, acknowledged_at__isnull=True, declared_at__isnull=False
    ).select_related("severity")
    for incident in waiting:
        done = set(incident.escalations.values_list("level", flat=True))
        for level in levels:
            if level.level in done:
                continue
            due = escalation_due_at(incident, level.level)
            if due is None or due > now:
                break  # later levels are later still
            fired += _fire(incident, level, due)
    return fired


def _fire(incident: Incident, level: EscalationLevel, due: datetime) -> int:
    try:
        with transaction.atomic():
            locked = Incident.objects.select_for_update(of=("self",)).get(pk=incident.pk)
            if locked.acknowledged_at is not None:
                return 0  # acknowledged while we were looking
            EscalationStep.objects.create(
                incident=locked, level=level.level, fired_at=timezone.now()
            )
            TimelineEvent.objects.create(
                incident=locked,
                kind=TimelineEvent.Kind.ESCALATION,
                summary=f"Not acknowledged in time: escalated to {level}",
                source=Source.SYSTEM,
                occurred_at=timezone.now(),
                details={"level": level.level, "due_at": due.isoformat()},
            )
            notifications.notify(
                locked,
                notifications.Event.ESCALATION,
                message=f"{locked.reference} is not acknowledged; escalated to {level}.",
                users=list(level.members.all()),
                targets=list(level.targets.all()),
                dedup_prefix=f"escalation:{locked.pk}:{level.level}",
            )
    except IntegrityError:
        return 0  # another worker fired this step first
    return 1


def next_update_due(incident: Incident, last_update_due: datetime | None = None) -> datetime | None:
    """Return when the next status update is owed: what the last update promised, or the
    severity's cadence counted from the declaration."""
    if incident.status not in WORKING or incident.declared_at is None:
        return None
    if last_update_due is not None:
        return last_update_due
    return incident.declared_at + incident.severity.update_every


def with_last_update_due(queryset):
    """Annotate `last_update_due`: the next_update_at promised by the latest update."""
    latest = StatusUpdate.objects.filter(incident=OuterRef("pk")).order_by("-number")
    return queryset.annotate(last_update_due=Subquery(latest.values("next_update_at")[:1]))


def remind_overdue_updates(now: datetime | None = None) -> int:
    """Remind the commander and communications lead of each incident whose update is
    overdue, once per missed deadline; return how many incidents were reminded."""
    now = now or timezone.now()
    reminded = 0
    incidents = with_last_update_due(
        Incident.objects.filter(status__in=WORKING).select_related("severity")
    )
    for incident in incidents:
        due = next_update_due(incident, incident.last_update_due)
        if due is None or due > now:
            continue
        holders = [
            assignment.user
            for assignment in incident.roles.filter(
                role__in=[Role.COMMANDER, Role.COMMUNICATIONS_LEAD], relieved_at__isnull=True
            ).select_related("user")
        ]
        try:
            with transaction.atomic():
                sent = notifications.notify(
                    incident,
                    notifications.Event.UPDATE_REMINDER,
                    message=f"A status update on {incident.reference} was due at "
                    f"{due:%Y-%m-%d %H:%M} UTC.",
                    users=holders,
                    dedup_prefix=f"cadence:{incident.pk}:{due.isoformat()}",
                )
        except IntegrityError:
            continue  # another worker reminded them of this deadline first
        reminded += bool(sent)
    return reminded
