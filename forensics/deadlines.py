"""The breach deadline watchdog, run every minute: as a regulator deadline nears (24 h and
6 h left) and when it passes, the incident's commander and the legal and compliance group
(BREACH_LEGAL_GROUP) are told, and the warning goes on the timeline — each once, however
often and on however many workers it runs. Nothing is sent once the regulator has been
notified, or the assessment found no notification is needed; an assessment not made yet
leaves the clock running, as the regulator's does."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from incidents import notifications
from incidents.formatting import short_duration
from incidents.models import Role, RoleAssignment, Source
from incidents.queries import users_who_may_see
from incidents.services import save_as, timeline_record

from .models import WARNINGS, BreachAssessment
from .services import clock_origin, deadline_hours, utc
from .vocabulary import Event, Kind

LONGEST_WARNING = max(before for _, before, _ in WARNINGS)


def _due_q(now: datetime) -> Q:
    """Clocks with a warning due at `now` that was not sent yet."""
    due = Q(pk__in=[])
    for _, before, field in WARNINGS:
        due |= Q(**{f"{field}__isnull": True, "deadline_at__lte": now + before})
    return due


def running_clocks():
    return BreachAssessment.objects.filter(regulator_notified_at__isnull=True).exclude(
        regulator_notification_required=False
    )


def warn_breach_deadlines(now: datetime | None = None) -> int:
    """Send every warning that is due; return how many were sent (a few queries when
    none is due: the partial index on running clocks serves the scan)."""
    now = now or timezone.now()
    due = list(
        running_clocks()
        .filter(deadline_at__lte=now + LONGEST_WARNING)
        .filter(_due_q(now))
        .order_by("deadline_at")
        .values_list("pk", flat=True)
    )
    return sum(_warn(pk, now) for pk in due)


def _stage(assessment: BreachAssessment, now: datetime) -> tuple[str, list[str]] | None:
    """Return the most urgent warning due and not sent, with the fields to stamp: it and
    every earlier one (a watchdog that was down sends "6 h left", not a stale "24 h")."""
    reached = [
        (stage, field)
        for stage, before, field in WARNINGS
        if assessment.deadline_at - before <= now
    ]
    if not reached or getattr(assessment, reached[-1][1]) is not None:
        return None
    return reached[-1][0], [field for _, field in reached if getattr(assessment, field) is None]


@transaction.atomic
def _warn(pk: int, now: datetime) -> int:
    # Locked and read again: of two watchdogs that both saw this warning due, the second
    # waits here and then finds it stamped (and a notification recorded meanwhile stops
    # it). Saved, not .update()d, so the stamp has its history row.
    assessment = (
        BreachAssessment.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(pk=pk)
        .first()
    )
    if assessment is None or not assessment.clock_running:
        return 0
    due = _stage(assessment, now)
    if due is None:
        return 0
    stage, fields = due
    for field in fields:
        setattr(assessment, field, now)
    save_as(assessment, None)
    incident = assessment.incident
    people = _recipients(assessment)
    subject, body = _message(assessment, stage, now)
    told = ", ".join(sorted(user.get_username() for user in people)) or (
        f"nobody: neither the commander nor anyone in {settings.BREACH_LEGAL_GROUP} has an "
        "email address"
    )
    timeline_record(
        incident,
        kind=Kind.BREACH,
        summary=f"{subject}. Told {told}.",
        actor=None,
        source=Source.SYSTEM,
        occurred_at=now,
        details={"breach_assessment": assessment.pk, "warning": stage},
    )
    # The legal team must hear of it whether or not they may read the incident: the
    # message names only its reference. Those who may not see it get it attached to no
    # incident (it mentions the incident instead), so their outbox row shows no title.
    may_see = users_who_may_see(incident, people)
    key = f"breach:{assessment.pk}:{stage}:{assessment.deadline_at:%Y%m%dT%H%M%S}"
    messages = [
        notifications.Message(
            incident if cleared else None,
            Event.BREACH_DEADLINE,
            subject=subject,
            message=body,
            users=group,
            mentions=() if cleared else (incident,),
            dedup_prefix=key,
        )
        for cleared, group in (
            (True, [user for user in people if user.pk in may_see]),
            (False, [user for user in people if user.pk not in may_see]),
        )
        if group
    ]
    notifications.notify_many(messages)
    return 1


def _recipients(assessment: BreachAssessment) -> list:
    """The incident's commander (whoever declared it while none is named) and the active
    members of the legal and compliance group."""
    incident = assessment.incident
    commander = (
        RoleAssignment.objects.filter(
            incident=incident, role=Role.COMMANDER, relieved_at__isnull=True
        )
        .select_related("user")
        .first()
    )
    lead = commander.user if commander else incident.declared_by
    legal = get_user_model().objects.filter(
        groups__name=settings.BREACH_LEGAL_GROUP, is_active=True
    )
    people = {user.pk: user for user in legal}
    if lead is not None and lead.is_active:
        people[lead.pk] = lead
    return [user for user in people.values() if user.email]


def _message(assessment: BreachAssessment, stage: str, now: datetime) -> tuple[str, str]:
    reference = assessment.incident.reference
    hours = deadline_hours(assessment)
    deadline = utc(assessment.deadline_at)
    page = reverse("admin:forensics_breachassessment_change", args=[assessment.pk])
    link = f"{settings.SITE_URL}{page}"
    state = (
        f"Personal data affected: {_word(assessment.personal_data_affected)}; regulator "
        f"notification required: {_word(assessment.regulator_notification_required)}."
    )
    if stage == "missed":
        subject = f"Breach notification deadline missed: {reference}"
        body = (
            f"The {hours}-hour deadline to notify the regulator of {reference} passed at "
            f"{deadline}, and no notification is recorded. {state} Notify them now and record "
            f"it, or record that no notification is needed:\n\n{link}"
        )
    else:
        left = short_duration(assessment.deadline_at - now)
        subject = f"Breach notification due in {left}: {reference}"
        body = (
            f"The regulator must be notified of {reference} by {deadline} ({hours} h after "
            f"{clock_origin(assessment)}). {state} Record the notification when it is made, or "
            f"the assessment if none is needed:\n\n{link}"
        )
    return subject, body


def _word(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "not assessed yet"}[value]
