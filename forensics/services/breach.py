"""The breach notification clock: started when a security or data incident is declared
(BREACH_INCIDENT_TYPES), the assessment of whether personal data was affected and the
regulator must be told, and the record of telling them and the people affected. Each
step is on the incident's timeline."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from incidents import extensions
from incidents.errors import DomainError
from incidents.formatting import short_duration
from incidents.models import Incident
from incidents.queries import user_may_see_incident
from incidents.services import (
    LONG_TEXT,
    acting_user,
    clean_text,
    lock_incident,
    save_as,
    timeline_record,
    when_happened,
)

from ..models import WARNINGS, BreachAssessment
from ..vocabulary import Kind

ASSESSMENT_FLAGS = ("personal_data_affected", "regulator_notification_required")
ASSESSMENT_FIELDS = frozenset({*ASSESSMENT_FLAGS, "assessment_notes", "clock_started_at"})
REFERENCE_LIMIT = BreachAssessment._meta.get_field("regulator_reference").max_length


def utc(moment: datetime) -> str:
    """A time as deadlines are written for legal teams: to the minute, in UTC, said."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def is_breach_type(incident: Incident) -> bool:
    return incident.incident_type.slug in settings.BREACH_INCIDENT_TYPES


def deadline_for(start: datetime) -> datetime:
    return start + timedelta(hours=settings.BREACH_NOTIFICATION_HOURS)


def deadline_hours(assessment: BreachAssessment) -> int:
    """The length of this clock in hours (the setting when it was started)."""
    return round((assessment.deadline_at - assessment.clock_started_at) / timedelta(hours=1))


def clock_origin(assessment: BreachAssessment) -> str:
    """Say what the clock counts from: detection, or a later awareness."""
    started = assessment.clock_started_at
    if started == assessment.incident.detected_at:
        return "detection"
    return f"the clock started ({utc(started)})"


def since_start(assessment: BreachAssessment, moment: datetime) -> str:
    """Say how long after the clock started `moment` was ("30h 00m after detection")."""
    return (
        f"{short_duration(moment - assessment.clock_started_at)} after {clock_origin(assessment)}"
    )


def notification_timing(assessment: BreachAssessment, notified_at: datetime) -> str:
    """Say when the regulator was told against the deadline."""
    deadline = f"the {deadline_hours(assessment)}-hour deadline"
    if notified_at <= assessment.deadline_at:
        return f"{since_start(assessment, notified_at)}, within {deadline}"
    late = short_duration(notified_at - assessment.deadline_at)
    return f"{since_start(assessment, notified_at)}, {late} after {deadline}"


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _on_timeline(
    assessment: BreachAssessment, summary: str, actor, source: str, at: datetime | None = None
) -> None:
    timeline_record(
        assessment.incident,
        kind=Kind.BREACH,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=at or timezone.now(),
        details={
            "breach_assessment": assessment.pk,
            "deadline_at": assessment.deadline_at.isoformat(),
        },
    )


# --- starting the clock -----------------------------------------------------------------


def _start_clock(
    incident: Incident, *, actor, source: str, at: datetime | None = None
) -> BreachAssessment:
    """Create the incident's assessment, its deadline counted from detection (the caller
    holds the incident's lock, or has just created it); on the timeline `at` then."""
    start = incident.detected_at
    assessment = BreachAssessment(
        incident=incident, clock_started_at=start, deadline_at=deadline_for(start)
    )
    save_as(assessment, actor)
    _on_timeline(
        assessment,
        f"Breach notification clock started: unless the assessment finds it unnecessary, the "
        f"regulator must be notified by {utc(assessment.deadline_at)} "
        f"({deadline_hours(assessment)} h after detection).",
        actor,
        source,
        at=at,
    )
    return assessment


def start_clock_on_declared(event: extensions.Declared) -> None:
    """A security or data incident was declared: its notification clock starts."""
    incident = event.incident
    if is_breach_type(incident) and not BreachAssessment.objects.filter(incident=incident).exists():
        # On the timeline when it was declared: a declaration may be back-dated.
        _start_clock(incident, actor=event.actor, source=event.source, at=incident.declared_at)


def start_clock_on_confidential(event: extensions.ConfidentialityChanged) -> None:
    """An incident reclassified as a confidential security or data incident: its clock
    starts then (still counted from detection: the regulator's clock ran all along)."""
    incident = event.incident
    if (
        event.new
        and is_breach_type(incident)
        and not BreachAssessment.objects.filter(incident=incident).exists()
    ):
        _start_clock(incident, actor=event.actor, source=event.source)


def _for_writing(incident: Incident, actor, source: str) -> BreachAssessment:
    """Lock the incident and its assessment (creating it on the first write)."""
    incident = lock_incident(incident)
    user = acting_user(actor)
    if user is not None and not user_may_see_incident(user, incident):
        raise DomainError(f"No incident {incident.reference} that you may see.", field="incident")
    assessment = (
        BreachAssessment.objects.select_for_update(of=("self",)).filter(incident=incident).first()
    )
    if assessment is None:
        assessment = _start_clock(incident, actor=actor, source=source)
    assessment.incident = incident
    return assessment


# --- assessing --------------------------------------------------------------------------


def _check_moment(value, incident: Incident, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise DomainError("Give a date and time.", field=field)
    moment = when_happened(value, timezone.now(), field=field)
    if moment < incident.started_at:
        raise DomainError(
            f"Cannot be before the incident began ({utc(incident.started_at)}).", field=field
        )
    return moment


def _rearm(assessment: BreachAssessment, now: datetime) -> None:
    """Forget the warnings of a moved deadline that now lie ahead, so they are sent for
    the new one (their dedup keys name the deadline)."""
    for _, before, field in WARNINGS:
        if assessment.deadline_at - before > now:
            setattr(assessment, field, None)


@transaction.atomic
def breach_assess(
    *,
    incident: Incident,
    source: str,
    actor=None,
    occurred_at: datetime | None = None,
    **changes,
) -> BreachAssessment:
    """Record the assessment: whether personal data was affected, whether the regulator
    must be notified (None: not known yet, and the clock runs), notes, and — when we
    became aware later than detection — when the clock started (the deadline follows).
    `occurred_at`: when it was assessed, if not now."""
    unknown = set(changes) - ASSESSMENT_FIELDS
    if unknown:
        raise DomainError(f"Cannot set {', '.join(sorted(unknown))} here.")
    for flag in ASSESSMENT_FLAGS:
        if flag in changes and changes[flag] not in (True, False, None):
            raise DomainError("Give yes, no or unknown.", field=flag)
    if "assessment_notes" in changes:
        changes["assessment_notes"] = clean_text(
            changes["assessment_notes"], field="assessment_notes", limit=LONG_TEXT
        )
    assessment = _for_writing(incident, actor, source)
    if "clock_started_at" in changes:
        changes["clock_started_at"] = _check_moment(
            changes["clock_started_at"], assessment.incident, "clock_started_at"
        )
    changed = [name for name, value in changes.items() if getattr(assessment, name) != value]
    if not changed:
        return assessment
    now = timezone.now()
    assessed_at = (
        now
        if occurred_at is None
        else _check_moment(occurred_at, assessment.incident, "occurred_at")
    )
    for name in changed:
        setattr(assessment, name, changes[name])
    parts = [
        f"{assessment._meta.get_field(flag).verbose_name}: {_yes_no(getattr(assessment, flag))}"
        for flag in ASSESSMENT_FLAGS
        if flag in changed
    ]
    if any(flag in changed for flag in ASSESSMENT_FLAGS):
        assessment.assessed_by, assessment.assessed_at = acting_user(actor), assessed_at
    if "clock_started_at" in changed:
        assessment.deadline_at = deadline_for(assessment.clock_started_at)
        _rearm(assessment, now)
        parts.append(
            f"clock started {utc(assessment.clock_started_at)}, regulator deadline "
            f"{utc(assessment.deadline_at)}"
        )
    save_as(assessment, actor)
    summary = "Breach assessed: " + "; ".join(parts) if parts else "Breach assessment notes"
    if "assessment_notes" in changed and assessment.assessment_notes:
        summary += f". {assessment.assessment_notes}"
    _on_timeline(assessment, summary, actor, source, at=assessed_at)
    return assessment


# --- notifying --------------------------------------------------------------------------


def _check_record(reference: str, notes: str, prefix: str) -> tuple[str, str]:
    reference = clean_text(reference, field=f"{prefix}_reference", limit=REFERENCE_LIMIT)
    notes = clean_text(notes, field=f"{prefix}_notes", limit=LONG_TEXT)
    return reference, notes


@transaction.atomic
def breach_record_regulator_notified(
    *,
    incident: Incident,
    source: str,
    actor=None,
    notified_at: datetime | None = None,
    reference: str = "",
    notes: str = "",
) -> BreachAssessment:
    """Record that the regulator was notified (now, or at a past time): the clock stops
    and no more warnings go out. Recording it again corrects the record."""
    reference, notes = _check_record(reference, notes, "regulator")
    assessment = _for_writing(incident, actor, source)
    notified_at = _check_moment(notified_at or timezone.now(), assessment.incident, "notified_at")
    correcting = assessment.regulator_notified_at is not None
    assessment.regulator_notified_at = notified_at
    assessment.regulator_reference = reference
    assessment.regulator_notes = notes
    save_as(assessment, actor)
    what = "Regulator notification record corrected" if correcting else "Regulator notified"
    ref = f" (reference {reference})" if reference else ""
    _on_timeline(
        assessment,
        f"{what}{ref}: {notification_timing(assessment, notified_at)}",
        actor,
        source,
        at=notified_at,
    )
    return assessment


@transaction.atomic
def breach_record_subjects_notified(
    *,
    incident: Incident,
    source: str,
    actor=None,
    notified_at: datetime | None = None,
    reference: str = "",
    notes: str = "",
) -> BreachAssessment:
    """Record that the people whose data was affected were told (now, or at a past time).
    Recording it again corrects the record."""
    reference, notes = _check_record(reference, notes, "data_subjects")
    assessment = _for_writing(incident, actor, source)
    notified_at = _check_moment(notified_at or timezone.now(), assessment.incident, "notified_at")
    correcting = assessment.data_subjects_notified_at is not None
    assessment.data_subjects_notified_at = notified_at
    assessment.data_subjects_reference = reference
    assessment.data_subjects_notes = notes
    save_as(assessment, actor)
    what = "Data subjects notification record corrected" if correcting else "Data subjects notified"
    ref = f" (reference {reference})" if reference else ""
    _on_timeline(
        assessment,
        f"{what}{ref}: {since_start(assessment, notified_at)}",
        actor,
        source,
        at=notified_at,
    )
    return assessment
