"""The incident lifecycle: one transition table, one service every move goes through,
the thin wrappers (acknowledge; accept or decline a triage candidate) and the
re-rating of severity."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .. import extensions, notifications, status_page
from ..errors import DomainError, StateConflict, TransitionNotAllowed
from ..metrics import MILESTONE_FIELDS
from ..models import Incident, Severity, Source, Status, TimelineEvent
from .common import NOTE_TEXT, clean_text, lock_incident, save_as, when_happened
from .timeline import timeline_record

# The lifecycle, in one table: from each status, where an incident may go next.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.TRIAGE: frozenset({Status.DECLARED, Status.CANCELLED}),
    Status.DECLARED: frozenset(
        {
            Status.INVESTIGATING,
            Status.IDENTIFIED,
            Status.MONITORING,
            Status.RESOLVED,
            Status.CANCELLED,
        }
    ),
    Status.INVESTIGATING: frozenset(
        {Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED, Status.CANCELLED}
    ),
    # A wrong root cause or a fix that did not hold sends the incident back.
    Status.IDENTIFIED: frozenset(
        {Status.INVESTIGATING, Status.MONITORING, Status.RESOLVED, Status.CANCELLED}
    ),
    Status.MONITORING: frozenset(
        {Status.INVESTIGATING, Status.IDENTIFIED, Status.RESOLVED, Status.CANCELLED}
    ),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.INVESTIGATING}),
    Status.CLOSED: frozenset(),
    Status.CANCELLED: frozenset(),
}

# Reaching a status stamps its milestone (incidents.metrics.MILESTONES), once.
MILESTONE_OF_STATUS: dict[str, str] = {
    Status.DECLARED: "declared_at",
    Status.INVESTIGATING: "acknowledged_at",
    Status.IDENTIFIED: "identified_at",
    Status.MONITORING: "mitigated_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
}


def allowed_transitions(status: str) -> list[str]:
    """Return the statuses an incident in `status` may move to, in lifecycle order."""
    allowed = TRANSITIONS.get(status, frozenset())
    return [value for value in Status.values if value in allowed]


@dataclass(frozen=True)
class MoveOption:
    """A move the lifecycle allows from where the incident is, and whether the guards
    would accept it now (`reason` says why not)."""

    status: str
    label: str
    allowed: bool
    reason: str = ""


class _DryRun(Exception):
    """Unwinds a dry run's savepoint once every check passed."""


def transition_options(
    *, incident: Incident, actor=None, source: str = Source.ADMIN
) -> list[MoveOption]:
    """Return every move the lifecycle allows from the incident's status, each with
    whether incident_transition would accept it now: the same guards are asked, in one
    savepoint rolled back afterwards, so nothing a guard touches is kept."""
    options = []
    try:
        with transaction.atomic():
            for to_status in allowed_transitions(incident.status):
                reason = ""
                try:
                    _check_move(incident, to_status, actor, source)
                except DomainError as error:  # a refusal, not a database error
                    reason = error.message
                options.append(
                    MoveOption(
                        status=to_status,
                        label=Status(to_status).label,
                        allowed=not reason,
                        reason=reason,
                    )
                )
            raise _DryRun
    except _DryRun:
        pass
    return options


def _check_move(incident: Incident, to_status: str, actor, source: str) -> None:
    """Ask the guards about the move, as _transition does before it writes."""
    moving = {"incident": incident, "actor": actor, "source": source}
    extensions.transition_guard.run(
        extensions.TransitionRequest(**moving, from_status=incident.status, to_status=to_status)
    )
    if to_status == Status.CLOSED:
        extensions.close_guard.run(extensions.CloseRequest(**moving))


def _last_milestone(incident: Incident) -> datetime:
    """Return the latest time the incident's record already holds: a back-dated status
    change or handover before it would make the milestones run backwards."""
    stamps = [getattr(incident, name) for name in MILESTONE_FIELDS]
    return max(stamp for stamp in stamps if stamp is not None)


@transaction.atomic
def incident_transition(
    *,
    incident: Incident,
    to_status: str,
    actor=None,
    note: str = "",
    source: str,
    occurred_at: datetime | None = None,
) -> Incident:
    """Move the incident to `to_status` if the lifecycle allows it from where it is."""
    return _transition(
        incident=incident,
        to_status=to_status,
        actor=actor,
        note=note,
        source=source,
        occurred_at=occurred_at,
    )


def _transition(
    *,
    incident: Incident,
    to_status: str,
    actor,
    note: str,
    source: str,
    occurred_at: datetime | None = None,
    summary: str | None = None,
    details: dict | None = None,
) -> Incident:
    """Make the move, inside the caller's transaction; `summary` and `details` let a
    wrapper (accept, decline) say on the timeline what the move meant."""
    note = clean_text(note, field="note", limit=NOTE_TEXT)
    incident = lock_incident(incident)
    from_status = incident.status
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise TransitionNotAllowed(
            reference=incident.reference,
            from_status=from_status,
            to_status=to_status,
            allowed=allowed_transitions(from_status),
        )
    moving = {"incident": incident, "actor": actor, "source": source}
    extensions.transition_guard.run(
        extensions.TransitionRequest(**moving, from_status=from_status, to_status=to_status)
    )
    if to_status == Status.CLOSED:
        extensions.close_guard.run(extensions.CloseRequest(**moving))
    when = when_happened(occurred_at, timezone.now(), not_before=_last_milestone(incident))
    stamped = _stamp_milestones(incident, to_status, when)
    incident.status = to_status
    save_as(incident, actor)
    status_page.invalidate()

    if summary is None:
        summary = f"Status {Status(from_status).label} → {Status(to_status).label}"
        if note:
            summary = f"{summary}: {note}"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.STATUS_CHANGE,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when,
        details={
            "from": from_status,
            "to": to_status,
            "note": note,
            "stamped": stamped,
            **(details or {}),
        },
    )
    # A triage candidate dismissed before it was ever declared concerns nobody.
    if incident.declared_at is not None:
        event = (
            notifications.Event.DECLARED
            if to_status == Status.DECLARED
            else notifications.Event.STATUS_CHANGED
        )
        notifications.notify(incident, event, message=summary)
    extensions.transitioned.run(
        extensions.Transitioned(**moving, from_status=from_status, to_status=to_status, note=note)
    )
    if to_status == Status.DECLARED:  # only a triage candidate moves to declared
        extensions.declared.run(extensions.Declared(**moving, from_triage=True))
    return incident


def _stamp_milestones(incident: Incident, to_status: str, when: datetime) -> list[str]:
    """Stamp the milestone of `to_status` (and those it implies) the first time only."""
    fields = [MILESTONE_OF_STATUS[to_status]] if to_status in MILESTONE_OF_STATUS else []
    if to_status != Status.CANCELLED and to_status not in (Status.TRIAGE, Status.DECLARED):
        # Working on an incident at all means someone acknowledged it, and an
        # incident resolved without a separate mitigation was mitigated then.
        fields.append("declared_at")
        fields.append("acknowledged_at")
        if to_status in (Status.RESOLVED, Status.CLOSED):
            fields.append("mitigated_at")
            fields.append("resolved_at")
    stamped = []
    for field in dict.fromkeys(fields):
        if getattr(incident, field) is None:
            setattr(incident, field, when)
            stamped.append(field)
    return stamped


@transaction.atomic
def incident_acknowledge(
    *,
    incident: Incident,
    actor=None,
    source: str,
    occurred_at: datetime | None = None,
) -> Incident:
    """Acknowledge the incident: stamp acknowledged_at and start investigating."""
    locked = lock_incident(incident)
    if locked.acknowledged_at is not None:
        raise StateConflict(
            f"{locked.reference} was already acknowledged at "
            f"{locked.acknowledged_at:%Y-%m-%d %H:%M} UTC."
        )
    if locked.status not in (Status.TRIAGE, Status.DECLARED):
        raise StateConflict(
            f"{locked.reference} is {locked.get_status_display().lower()}; "
            "only a declared or triage incident can be acknowledged."
        )
    if locked.status == Status.TRIAGE:
        locked = incident_transition(
            incident=locked,
            to_status=Status.DECLARED,
            actor=actor,
            note="accepted from triage",
            source=source,
            occurred_at=occurred_at,
        )
    return incident_transition(
        incident=locked,
        to_status=Status.INVESTIGATING,
        actor=actor,
        note="acknowledged",
        source=source,
        occurred_at=occurred_at,
    )


@transaction.atomic
def incident_change_severity(
    *,
    incident: Incident,
    severity: Severity,
    reason: str,
    actor=None,
    source: str,
    occurred_at: datetime | None = None,
) -> Incident:
    """Re-rate the incident; the reason is required and kept on the timeline."""
    reason = clean_text(
        reason, field="reason", limit=NOTE_TEXT, required="Say why the severity changes."
    )
    incident = lock_incident(incident)
    old = incident.severity
    if old.pk == severity.pk:
        raise DomainError(f"{incident.reference} is already {severity.key}.", field="severity")
    if not incident.is_open and incident.status != Status.RESOLVED:
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}; "
            "its severity can no longer change.",
            field="severity",
        )
    when = when_happened(occurred_at, timezone.now())
    incident.severity = severity
    incident._change_reason = reason
    save_as(incident, actor)
    status_page.invalidate()
    direction = "Escalated" if severity.rank < old.rank else "Downgraded"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.SEVERITY_CHANGE,
        summary=f"{direction} {old.key} → {severity.key}: {reason}",
        actor=actor,
        source=source,
        occurred_at=when,
        details={"from": old.key, "to": severity.key, "reason": reason},
    )
    if incident.declared_at is not None:  # stakeholders hear of it once it is declared
        notifications.notify(
            incident,
            notifications.Event.SEVERITY_CHANGED,
            message=f"{direction} from {old.key} to {severity.key}: {reason}",
        )
    extensions.severity_changed.run(
        extensions.SeverityChanged(
            incident=incident,
            actor=actor,
            source=source,
            from_severity=old,
            to_severity=severity,
            reason=reason,
        )
    )
    return incident


# --- triage: a candidate an alert raised is accepted (declared) or declined -----------

# The severity-change reason when a candidate is re-rated on acceptance without one.
ACCEPT_SEVERITY_REASON = "Severity set on acceptance"
DECLINE_REASON_REQUIRED = "Say why it is a false positive."


def _check_in_triage(incident: Incident, done: str) -> None:
    if incident.status != Status.TRIAGE:
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}, not in "
            f"triage; only a triage candidate can be {done}.",
            field="status",
        )


@transaction.atomic
def incident_accept(
    *,
    incident: Incident,
    actor=None,
    severity: Severity | None = None,
    reason: str = "",
    source: str,
) -> Incident:
    """Accept a triage candidate: declare it, re-rated first to `severity` if that
    differs, so the stakeholders' declaration notice already carries the right one."""
    reason = clean_text(reason, field="reason", limit=NOTE_TEXT)
    locked = lock_incident(incident)
    _check_in_triage(locked, "accepted")
    if severity is not None and severity.pk != locked.severity_id:
        locked = incident_change_severity(
            incident=locked,
            severity=severity,
            reason=reason or ACCEPT_SEVERITY_REASON,
            actor=actor,
            source=source,
        )
    summary = "Accepted from triage (Triage → Declared)"
    return _transition(
        incident=locked,
        to_status=Status.DECLARED,
        actor=actor,
        note=reason or "accepted from triage",
        source=source,
        summary=f"{summary}: {reason}" if reason else summary,
        details={"accepted": True},
    )


@transaction.atomic
def incident_decline(*, incident: Incident, actor=None, reason: str, source: str) -> Incident:
    """Decline a triage candidate as a false positive: cancel it, with the reason on the
    timeline. It was never declared, so nobody is told (see incident_transition)."""
    reason = clean_text(reason, field="reason", limit=NOTE_TEXT, required=DECLINE_REASON_REQUIRED)
    locked = lock_incident(incident)
    _check_in_triage(locked, "declined")
    return _transition(
        incident=locked,
        to_status=Status.CANCELLED,
        actor=actor,
        note=reason,
        source=source,
        summary=f"Declined as a false positive (Triage → Cancelled): {reason}",
        # What false_positive_list (queries) counts, said where it happened.
        details={"declined": True},
    )
