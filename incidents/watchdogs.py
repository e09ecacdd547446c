"""The watchdogs django-q2 runs every minute: escalation of unacknowledged incidents and
reminders when a status update is overdue. Each step is written once (EscalationStep,
the notification's dedup key), so a watchdog that runs twice, or on two workers, pages
nobody twice; and an escalation round locks the incidents it escalates, so one
acknowledged meanwhile is not paged for. A round writes everything due in one go: a few
queries whether one incident is due or a storm of them."""

from collections import defaultdict
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, Subquery, prefetch_related_objects
from django.utils import timezone

from . import notifications, services
from .business_time import deadline
from .models import (
    EscalationLevel,
    EscalationStep,
    Incident,
    Role,
    RoleAssignment,
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


def _due_levels(incident: Incident, levels, done, now: datetime) -> list[tuple]:
    """Return (level, due) for each level the incident has reached and not yet fired."""
    due_levels = []
    for level in levels:
        if (incident.pk, level.level) in done:
            continue
        due = escalation_due_at(incident, level.level)
        if due is None or due > now:
            break  # later levels are later still
        due_levels.append((level, due))
    return due_levels


# Declared and nobody has acknowledged it yet.
WAITING = {"status": Status.DECLARED, "acknowledged_at__isnull": True, "declared_at__isnull": False}


def _fired_steps(**incident_filters) -> set[tuple[int, int]]:
    """Return (incident pk, level) of each step already fired for the incidents named."""
    steps = EscalationStep.objects.filter(
        **{f"incident__{name}": value for name, value in incident_filters.items()}
    ).order_by()
    return set(steps.values_list("incident_id", "level"))


def escalate_unacknowledged(now: datetime | None = None) -> int:
    """Page every escalation level an unacknowledged incident has reached; return how many
    steps fired. A few queries however many incidents wait or are due: the due steps of
    all of them are written together."""
    now = now or timezone.now()
    levels = list(EscalationLevel.objects.all())
    if not levels:
        return 0
    numbers = [level.level for level in levels]
    # An incident that fired every level has nothing left to wait for: not read again.
    waiting = list(
        Incident.objects.filter(**WAITING)
        .select_related("severity")
        .annotate(fired=Count("escalations", filter=Q(escalations__level__in=numbers)))
        .filter(fired__lt=len(numbers))
    )
    done = _fired_steps(**WAITING) if waiting else set()
    due = [incident.pk for incident in waiting if _due_levels(incident, levels, done, now)]
    if not due:
        return 0
    prefetch_related_objects(levels, "members", "targets")
    try:
        with transaction.atomic():
            return _fire(due, levels, now)
    except IntegrityError:
        # Another round wrote one of these steps first (see _fire): it paged for them;
        # whatever else was due, the next round fires.
        return 0


def _fire(incident_ids, levels, now: datetime) -> int:
    # An acknowledgement racing this round must stop the page, not follow it: the row
    # lock holds acknowledgements off until the steps are written, and the filter drops
    # the incidents acknowledged (or cancelled) since the scan. Locked in pk order, so
    # two watchdogs locking overlapping sets queue behind each other, never deadlock.
    locked = list(
        Incident.objects.select_for_update(of=("self",))
        .select_related("severity", "declared_by")
        .filter(pk__in=incident_ids, **WAITING)
        .order_by("pk")
    )
    # Another watchdog may have fired some of these steps while we waited for the locks;
    # now that we hold them nobody else can, so what is read here is what is left to do.
    done = _fired_steps(pk__in=[incident.pk for incident in locked])
    steps = [
        (incident, level, due)
        for incident in locked
        for level, due in _due_levels(incident, levels, done, now)
    ]
    fired_at = timezone.now()
    # The database's word on "once" (one_step_per_level): were two rounds ever to get
    # here with the same step, the second insert fails and its whole round rolls back.
    EscalationStep.objects.bulk_create(
        EscalationStep(incident=incident, level=level.level, fired_at=fired_at)
        for incident, level, _ in steps
    )
    # Paging is never silent: a level that reaches nobody (no member with an email
    # address, no enabled channel) says so on the timeline, and whoever leads is told.
    silent = {level.level for _, level, _ in steps if not _reaches_anyone(level)}
    services.timeline_record_many(
        (
            {
                "incident": incident,
                "kind": TimelineEvent.Kind.ESCALATION,
                "summary": f"Not acknowledged in time: escalated to {level}"
                + (
                    ", which pages nobody (no members or channels)" if level.level in silent else ""
                ),
                "occurred_at": fired_at,
                "details": {
                    "level": level.level,
                    "due_at": due.isoformat(),
                    "paged_nobody": level.level in silent,
                },
            }
            for incident, level, due in steps
        ),
        actor=None,
        source=Source.SYSTEM,
    )
    leads = _leads([incident for incident, level, _ in steps if level.level in silent])
    notifications.notify_many(
        notifications.Message(
            incident,
            notifications.Event.ESCALATION,
            message=(
                f"{incident.reference} is not acknowledged and escalation {level} pages "
                "nobody: give the level members or channels."
                if level.level in silent
                else f"{incident.reference} is not acknowledged; escalated to {level}."
            ),
            users=leads.get(incident.pk, [])
            if level.level in silent
            else list(level.members.all()),
            targets=[] if level.level in silent else list(level.targets.all()),
            # Same person, same step: one page, however often the step is attempted.
            dedup_prefix=f"escalation:{incident.pk}:{level.level}",
        )
        for incident, level, _ in steps
    )
    return len(steps)


def _reaches_anyone(level: EscalationLevel) -> bool:
    return any(user.is_active and user.email for user in level.members.all()) or any(
        target.enabled for target in level.targets.all()
    )


def _leads(incidents) -> dict[int, list]:
    """Return, per incident, its commander, or whoever declared it when none is named
    (one query for them all)."""
    if not incidents:
        return {}
    leads = {incident.pk: [incident.declared_by] for incident in incidents if incident.declared_by}
    commanders = RoleAssignment.objects.filter(
        incident__in=incidents, role=Role.COMMANDER, relieved_at__isnull=True
    ).select_related("user")
    for assignment in commanders:
        leads[assignment.incident_id] = [assignment.user]
    return leads


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
    overdue, once per missed deadline; return how many incidents were reminded. A few
    queries however many incidents are open or overdue."""
    now = now or timezone.now()
    incidents = with_last_update_due(
        Incident.objects.filter(status__in=WORKING).select_related("severity")
    )
    overdue = []
    for incident in incidents:
        due = next_update_due(incident, incident.last_update_due)
        if due is not None and due <= now:
            overdue.append((incident, due))
    if not overdue:
        return 0
    holders = defaultdict(list)
    for assignment in RoleAssignment.objects.filter(
        incident_id__in=[incident.pk for incident, _ in overdue],
        role__in=[Role.COMMANDER, Role.COMMUNICATIONS_LEAD],
        relieved_at__isnull=True,
    ).select_related("user"):
        holders[assignment.incident_id].append(assignment.user)
    messages = [
        notifications.Message(
            incident,
            notifications.Event.UPDATE_REMINDER,
            message=f"A status update on {incident.reference} was due at {due:%Y-%m-%d %H:%M} UTC.",
            users=holders[incident.pk],
            # One reminder per person per missed deadline, however many rounds see it.
            dedup_prefix=f"cadence:{incident.pk}:{due.isoformat()}",
        )
        for incident, due in overdue
    ]
    for _ in range(3):
        try:
            with transaction.atomic():
                sent = notifications.notify_many(messages)
            break
        except IntegrityError:
            # Another worker wrote some of these reminders between our reading the keys
            # taken and our insert: read them again, and write only what is left.
            continue
    else:
        return 0  # still racing: the next round writes what is left
    return len({notification.incident_id for notification in sent})
