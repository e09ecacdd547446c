"""Every write that means something to an incident.

Each service runs in one transaction, locks the incident it changes, validates,
writes, records the acting user in history and appends the timeline event — all
or nothing. Admin, API, CLI and tasks call these; they never set status themselves.
"""

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from . import hooks, notifications
from .errors import IncidentError, StateConflict, TransitionNotAllowed
from .models import (
    MULTI_HOLDER_ROLES,
    APIKey,
    Audience,
    DetectionSource,
    Environment,
    IdempotencyRecord,
    Incident,
    IncidentType,
    ReferenceCounter,
    Role,
    RoleAssignment,
    Service,
    Severity,
    Source,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from .queries import users_who_may_see

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

# Reaching a status stamps its milestone, once.
MILESTONES: dict[str, str] = {
    Status.DECLARED: "declared_at",
    Status.INVESTIGATING: "acknowledged_at",
    Status.IDENTIFIED: "identified_at",
    Status.MONITORING: "mitigated_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
}
MILESTONES_FIELDS = tuple(MILESTONES.values())

EDITABLE_FIELDS = frozenset(
    {
        "title",
        "summary",
        "customer_impact",
        "estimated_users_affected",
        "detection_source",
        "environment",
        "confidential",
        "incident_type",
        "started_at",
        "detected_at",
    }
)

TITLE_MAX_LENGTH = Incident._meta.get_field("title").max_length
# Longest summary or impact text, and longest note, reason or timeline entry.
LONG_TEXT = 20_000
NOTE_TEXT = 5_000
# What no page, CSV cell or XML feed can carry (XML 1.0 refuses these outright): control
# characters but tab and line breaks, lone surrogates, and the non-characters U+FFFE/F.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def allowed_transitions(status: str) -> list[str]:
    """Return the statuses an incident in `status` may move to, in lifecycle order."""
    allowed = TRANSITIONS.get(status, frozenset())
    return [value for value in Status.values if value in allowed]


# --- helpers --------------------------------------------------------------------------


def acting_user(actor: AbstractBaseUser | None):
    return actor if actor is not None and actor.is_authenticated else None


def save_as(instance, actor, **kwargs) -> None:
    """Save with the acting user on the history row (no request in CLI and tasks)."""
    user = acting_user(actor)
    if user is not None:
        instance._history_user = user
    instance.save(**kwargs)


# How far back a time given for something that already happened may go (a timeline entry,
# a status change, a declaration), and how far ahead an update may promise the next one.
MAX_BACKDATE = timedelta(days=365)
NEXT_UPDATE_HORIZON = timedelta(days=7)


def _when(
    occurred_at: datetime | None,
    now: datetime,
    field: str = "occurred_at",
    not_before: datetime | None = None,
) -> datetime:
    """Return when something happened: now, or a back-dated time that makes sense."""
    if occurred_at is None:
        return now
    if timezone.is_naive(occurred_at):
        raise IncidentError("Times must include a time zone.", field=field)
    if occurred_at > now:
        raise IncidentError("Cannot be in the future.", field=field)
    if occurred_at < now - MAX_BACKDATE:
        raise IncidentError(f"Cannot be more than {MAX_BACKDATE.days} days ago.", field=field)
    if not_before is not None and occurred_at < not_before:
        raise IncidentError(
            f"Cannot be before {not_before:%Y-%m-%d %H:%M:%S} UTC, "
            "the last thing already recorded for this incident.",
            field=field,
        )
    return occurred_at


def _last_milestone(incident: Incident) -> datetime:
    """Return the latest time the incident's record already holds: a back-dated status
    change or handover before it would make the milestones run backwards."""
    stamps = [getattr(incident, name) for name in ("started_at", "detected_at", *MILESTONES_FIELDS)]
    return max(stamp for stamp in stamps if stamp is not None)


def _lock(incident: Incident) -> Incident:
    # Two commanders acting on one incident at once must not both read the old
    # status and both write: the row lock serialises them (PostgreSQL; SQLite
    # serialises every write transaction anyway).
    # of=("self",): lock only the incident, not the severity and type rows it joins,
    # which every other incident shares.
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("severity", "incident_type")
        .get(pk=incident.pk)
    )


def timeline_record(
    incident: Incident,
    *,
    kind: str,
    summary: str,
    actor,
    source: str,
    occurred_at: datetime,
    details: dict | None = None,
) -> TimelineEvent:
    """Append a service-written event to the incident's timeline."""
    event = TimelineEvent(
        incident=incident,
        kind=kind,
        summary=summary,
        author=acting_user(actor),
        source=source,
        occurred_at=occurred_at,
        details=details or {},
    )
    save_as(event, actor)
    return event


def _allocate_reference(year: int) -> str:
    """Return the next INC-YYYY-NNNN, unique even when many declare at once."""
    # The counter row is locked until this transaction commits, so concurrent
    # declarations queue on it instead of reading the same last_number.
    counter, _ = ReferenceCounter.objects.select_for_update().get_or_create(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"INC-{year}-{counter.last_number:04d}"


def _check_impact(detection_source: str | None, estimated_users_affected) -> None:
    if detection_source is not None and detection_source not in DetectionSource.values:
        raise IncidentError(
            f"Unknown detection source {detection_source!r}; use one of "
            f"{', '.join(DetectionSource.values)}.",
            field="detection_source",
        )
    if estimated_users_affected is not None and (
        isinstance(estimated_users_affected, bool)
        or not isinstance(estimated_users_affected, int)
        or estimated_users_affected < 0
    ):
        raise IncidentError("Must be a whole number, 0 or more.", field="estimated_users_affected")


def check_times(
    started_at: datetime,
    detected_at: datetime,
    now: datetime,
    declared_at: datetime | None = None,
) -> None:
    """Refuse impact times that are naive, in the future or out of order
    (impact starts, then is detected, then is declared)."""
    for name, value in (("started_at", started_at), ("detected_at", detected_at)):
        if timezone.is_naive(value):
            raise IncidentError("Times must include a time zone.", field=name)
        if value > now:
            raise IncidentError("Cannot be in the future.", field=name)
        if value < now - MAX_BACKDATE:
            raise IncidentError(f"Cannot be more than {MAX_BACKDATE.days} days ago.", field=name)
    if detected_at < started_at:
        raise IncidentError("Detection cannot come before the impact started.", field="detected_at")
    if declared_at is not None and detected_at > declared_at:
        raise IncidentError(
            "Detection cannot come after the incident was declared.", field="detected_at"
        )


def clean_text(value, *, field: str, limit: int, required: str | None = None) -> str:
    """Return `value` stripped, without unprintable characters (a pasted terminal's
    escapes); refuse what is not text, longer than `limit`, or empty when `required`
    (the message to give). Every text a person or client writes passes through here."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise IncidentError("Must be text.", field=field)
    value = UNPRINTABLE.sub("", value).strip()
    if required and not value:
        raise IncidentError(required, field=field)
    if len(value) > limit:
        raise IncidentError(f"At most {limit:,} characters.", field=field)
    return value


def check_may_see(user, incident: Incident, field: str) -> None:
    """Refuse to give `user` a part in a confidential incident they may not read."""
    check_all_may_see([user], incident, field)


def check_all_may_see(users, incident: Incident, field: str) -> None:
    """Refuse to give `users` a part in a confidential incident that any of them may
    not read (one query for the lot)."""
    users = list(users)
    allowed = users_who_may_see(incident, users)
    for user in users:
        if user.pk not in allowed:
            raise IncidentError(
                f"{user.get_username()} may not see confidential {incident.reference}; "
                "give them a role on the incident first.",
                field=field,
            )


def _check_title(title: str) -> str:
    return clean_text(title, field="title", limit=TITLE_MAX_LENGTH, required="A title is required.")


# --- declaring ------------------------------------------------------------------------


@transaction.atomic
def incident_declare(
    *,
    title: str,
    severity: Severity,
    incident_type: IncidentType,
    actor=None,
    environment: str = Environment.PRODUCTION,
    summary: str = "",
    services: Iterable[Service] = (),
    customer_impact: str = "",
    estimated_users_affected: int | None = None,
    detection_source: str | None = None,
    confidential: bool | None = None,
    started_at: datetime | None = None,
    detected_at: datetime | None = None,
    declared_at: datetime | None = None,
    commander=None,
    triage: bool = False,
    source: str = Source.ADMIN,
) -> Incident:
    """Open a new incident (or a triage candidate) and write its first timeline event."""
    now = timezone.now()
    title = _check_title(title)
    summary = clean_text(summary, field="summary", limit=LONG_TEXT)
    customer_impact = clean_text(customer_impact, field="customer_impact", limit=LONG_TEXT)
    _check_impact(detection_source, estimated_users_affected)
    if environment not in Environment.values:
        raise IncidentError(
            f"Unknown environment {environment!r}; use one of {', '.join(Environment.values)}.",
            field="environment",
        )
    declared_at = _when(declared_at, now, field="declared_at")
    detected_at = detected_at or declared_at
    started_at = started_at or detected_at
    check_times(started_at, detected_at, now, declared_at=declared_at)

    incident = Incident(
        # The year of the reference is the UTC year, whatever zone the caller used.
        reference=_allocate_reference(declared_at.astimezone(UTC).year),
        title=title,
        summary=summary,
        severity=severity,
        incident_type=incident_type,
        environment=environment,
        status=Status.TRIAGE if triage else Status.DECLARED,
        customer_impact=customer_impact,
        estimated_users_affected=estimated_users_affected,
        confidential=(
            incident_type.confidential_by_default if confidential is None else confidential
        ),
        declared_by=acting_user(actor),
        started_at=started_at,
        detected_at=detected_at,
        declared_at=None if triage else declared_at,
    )
    if detection_source is not None:
        incident.detection_source = detection_source
    save_as(incident, actor)
    services = list(services)
    if services:
        incident.services.set(services)

    verb = "Raised for triage" if triage else "Declared"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.DECLARED,
        summary=f"{verb} as {severity.key} {incident_type.name.lower()} in {environment}: {title}",
        actor=actor,
        source=source,
        occurred_at=declared_at,
        details={
            "severity": severity.key,
            "type": incident_type.slug,
            "environment": environment,
            "services": [service.slug for service in services],
        },
    )
    if commander is not None:
        role_assign(
            incident=incident,
            role=Role.COMMANDER,
            user=commander,
            actor=actor,
            source=source,
            occurred_at=declared_at,
        )
    if not triage:
        # After the commander is named, so the first message can say who leads.
        notifications.notify(incident, notifications.Event.DECLARED, message=summary)
    return incident


# --- lifecycle ------------------------------------------------------------------------


@transaction.atomic
def incident_transition(
    *,
    incident: Incident,
    to_status: str,
    actor=None,
    note: str = "",
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
) -> Incident:
    """Move the incident to `to_status` if the lifecycle allows it from where it is."""
    note = clean_text(note, field="note", limit=NOTE_TEXT)
    incident = _lock(incident)
    from_status = incident.status
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise TransitionNotAllowed(
            reference=incident.reference,
            from_status=from_status,
            to_status=to_status,
            allowed=allowed_transitions(from_status),
        )
    hooks.check_transition(incident, to_status)
    when = _when(occurred_at, timezone.now(), not_before=_last_milestone(incident))
    stamped = _stamp_milestones(incident, to_status, when)
    incident.status = to_status
    save_as(incident, actor)

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
        details={"from": from_status, "to": to_status, "note": note, "stamped": stamped},
    )
    # A triage candidate dismissed before it was ever declared concerns nobody.
    if incident.declared_at is not None:
        event = (
            notifications.Event.DECLARED
            if to_status == Status.DECLARED
            else notifications.Event.STATUS_CHANGED
        )
        notifications.notify(incident, event, message=summary)
    hooks.after_transition(
        incident, from_status=from_status, to_status=to_status, actor=actor, source=source
    )
    return incident


def _stamp_milestones(incident: Incident, to_status: str, when: datetime) -> list[str]:
    """Stamp the milestone of `to_status` (and those it implies) the first time only."""
    fields = [MILESTONES[to_status]] if to_status in MILESTONES else []
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
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
) -> Incident:
    """Acknowledge the incident: stamp acknowledged_at and start investigating."""
    locked = _lock(incident)
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
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
) -> Incident:
    """Re-rate the incident; the reason is required and kept on the timeline."""
    reason = clean_text(
        reason, field="reason", limit=NOTE_TEXT, required="Say why the severity changes."
    )
    incident = _lock(incident)
    old = incident.severity
    if old.pk == severity.pk:
        raise IncidentError(f"{incident.reference} is already {severity.key}.", field="severity")
    if not incident.is_open and incident.status != Status.RESOLVED:
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}; "
            "its severity can no longer change.",
            field="severity",
        )
    when = _when(occurred_at, timezone.now())
    incident.severity = severity
    incident._change_reason = reason
    save_as(incident, actor)
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
    return incident


@transaction.atomic
def incident_update_details(
    *,
    incident: Incident,
    actor=None,
    source: str = Source.ADMIN,
    services: Iterable[Service] | None = None,
    **changes,
) -> Incident:
    """Edit the descriptive fields (title, summary, impact…); history keeps old values."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise IncidentError(f"Cannot edit {', '.join(sorted(unknown))} here.")
    incident = _lock(incident)
    if "title" in changes:
        changes["title"] = _check_title(changes["title"])
    for name in ("summary", "customer_impact"):
        if name in changes:
            changes[name] = clean_text(changes[name], field=name, limit=LONG_TEXT)
    if "environment" in changes and changes["environment"] not in Environment.values:
        raise IncidentError(f"Unknown environment {changes['environment']!r}.", field="environment")
    _check_impact(changes.get("detection_source"), changes.get("estimated_users_affected"))
    changed = [name for name, value in changes.items() if getattr(incident, name) != value]
    for name in changed:
        setattr(incident, name, changes[name])
    if "started_at" in changed or "detected_at" in changed:
        check_times(incident.started_at, incident.detected_at, timezone.now(), incident.declared_at)

    details: dict = {"fields": sorted(changed)}
    if services is not None:
        services = list(services)
        new_slugs = sorted(service.slug for service in services)
        old_slugs = sorted(incident.services.values_list("slug", flat=True))
        if new_slugs != old_slugs:
            details["services"] = {"from": old_slugs, "to": new_slugs}
            changed.append("services")
    if not changed:
        return incident

    save_as(incident, actor)
    if "services" in details:
        incident.services.set(services)
    labels = [Incident._meta.get_field(name).verbose_name for name in changed]
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.DETAILS_CHANGE,
        summary=f"Updated {', '.join(labels)}",
        actor=actor,
        source=source,
        occurred_at=timezone.now(),
        details=details,
    )
    return incident


# --- roles ----------------------------------------------------------------------------


@transaction.atomic
def role_assign(
    *,
    incident: Incident,
    role: str,
    user,
    actor=None,
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
) -> RoleAssignment:
    """Give `user` the role, relieving the previous holder (kept, with relieved_at)."""
    if role not in Role.values:
        raise IncidentError(
            f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role"
        )
    if not user.is_active:
        raise IncidentError(f"{user.get_username()} is not an active user.", field="user")
    incident = _lock(incident)
    when = _when(occurred_at, timezone.now(), not_before=incident.detected_at)
    active = incident.roles.select_for_update().filter(role=role, relieved_at__isnull=True)
    if active.filter(user=user).exists():
        raise StateConflict(
            f"{user.get_username()} is already {Role(role).label.lower()} of {incident.reference}.",
            field="user",
        )
    relieved = []
    if role not in MULTI_HOLDER_ROLES:
        for previous in active:
            if previous.assigned_at > when:
                raise IncidentError(
                    f"{previous.user.get_username()} took the role at "
                    f"{previous.assigned_at:%Y-%m-%d %H:%M} UTC; a handover cannot be earlier.",
                    field="occurred_at",
                )
            previous.relieved_at = when
            save_as(previous, actor)
            relieved.append(previous.user.get_username())

    assignment = RoleAssignment(
        incident=incident,
        role=role,
        user=user,
        assigned_at=when,
        assigned_by=acting_user(actor),
    )
    save_as(assignment, actor)
    summary = f"{user.get_username()} is now {Role(role).label.lower()}"
    if relieved:
        summary = f"{summary}, taking over from {', '.join(relieved)}"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.ROLE_CHANGE,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when,
        details={"role": role, "user": user.get_username(), "relieved": relieved},
    )
    if actor is None or user.pk != getattr(actor, "pk", None):
        notifications.notify(
            incident,
            notifications.Event.ROLE_ASSIGNED,
            message=f"You are now {Role(role).label.lower()} of {incident.reference}.",
            users=[user],
        )
    return assignment


@transaction.atomic
def role_relieve(
    *,
    assignment: RoleAssignment,
    actor=None,
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
) -> RoleAssignment:
    """Stand someone down from a role without naming a successor."""
    _lock(assignment.incident)
    assignment = RoleAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.relieved_at is not None:
        raise StateConflict(f"{assignment.user.get_username()} was already relieved.")
    when = _when(occurred_at, timezone.now())
    if when < assignment.assigned_at:
        raise IncidentError("Cannot stand down before taking the role.", field="occurred_at")
    assignment.relieved_at = when
    save_as(assignment, actor)
    timeline_record(
        assignment.incident,
        kind=TimelineEvent.Kind.ROLE_CHANGE,
        summary=f"{assignment.user.get_username()} stood down as "
        f"{assignment.get_role_display().lower()}",
        actor=actor,
        source=source,
        occurred_at=when,
        details={"role": assignment.role, "user": assignment.user.get_username(), "relieved": []},
    )
    return assignment


# --- timeline -------------------------------------------------------------------------


@transaction.atomic
def timeline_add_entry(
    *,
    incident: Incident,
    kind: str,
    summary: str,
    actor=None,
    source: str = Source.ADMIN,
    occurred_at: datetime | None = None,
    details: dict | None = None,
) -> TimelineEvent:
    """Add a note, action, decision or communication written by a person."""
    if kind not in TimelineEvent.MANUAL_KINDS:
        allowed = ", ".join(str(k) for k in TimelineEvent.MANUAL_KINDS)
        raise IncidentError(f"Cannot add a {kind!r} entry; use one of {allowed}.", field="kind")
    summary = clean_text(
        summary, field="summary", limit=NOTE_TEXT, required="The entry needs some text."
    )
    incident = _lock(incident)
    return timeline_record(
        incident,
        kind=kind,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=_when(occurred_at, timezone.now()),
        details=details,
    )


# --- status updates -------------------------------------------------------------------


@transaction.atomic
def status_update_post(
    *,
    incident: Incident,
    audience: str,
    summary: str,
    next_update_at: datetime | None = None,
    actor=None,
    source: str = Source.ADMIN,
) -> StatusUpdate:
    """Post the next numbered update; an open incident gets a next-update time from its
    severity's cadence unless one is given."""
    if audience not in Audience.values:
        raise IncidentError(
            f"Unknown audience {audience!r}; use one of {', '.join(Audience.values)}.",
            field="audience",
        )
    summary = clean_text(
        summary, field="summary", limit=NOTE_TEXT, required="The update needs some text."
    )
    incident = _lock(incident)
    now = timezone.now()
    if incident.confidential and audience == Audience.PUBLIC:
        raise IncidentError("A confidential incident cannot have public updates.", field="audience")
    if next_update_at is not None and next_update_at <= now:
        raise IncidentError("The next update must be in the future.", field="next_update_at")
    # A promise far ahead would silence the cadence reminders for as long.
    horizon = max(NEXT_UPDATE_HORIZON, incident.severity.update_every)
    if next_update_at is not None and next_update_at > now + horizon:
        raise IncidentError(
            f"Promise the next update within {horizon.days} days.", field="next_update_at"
        )
    if next_update_at is None and incident.is_open:
        next_update_at = now + incident.severity.update_every
    number = (incident.updates.aggregate(last=Max("number"))["last"] or 0) + 1
    update = StatusUpdate(
        incident=incident,
        number=number,
        audience=audience,
        status=incident.status,
        summary=summary,
        next_update_at=next_update_at,
        author=acting_user(actor),
        published_at=now,
    )
    save_as(update, actor)
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.COMMUNICATION,
        summary=f"{Audience(audience).label} update #{number}: {summary}",
        actor=actor,
        source=source,
        occurred_at=now,
        details={"update": number, "audience": audience},
    )
    notifications.notify(
        incident,
        notifications.Event.STATUS_UPDATE,
        message=summary,
        next_update_at=next_update_at,
    )
    return update


# --- API keys -------------------------------------------------------------------------

API_KEY_PREFIX = "sitrep_"
# Ten years: a key meant to last longer should not expire (leave the days empty).
API_KEY_MAX_DAYS = 3650


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, user, name: str, expires_in_days: int | None = None, actor=None
) -> tuple[APIKey, str]:
    """Create a key for `user`; return it with the plaintext, which is never stored."""
    name = clean_text(
        name,
        field="name",
        limit=APIKey._meta.get_field("name").max_length,
        required="Name the key after what will use it.",
    )
    if expires_in_days is not None and not 1 <= expires_in_days <= API_KEY_MAX_DAYS:
        raise IncidentError(
            f"Must be from 1 to {API_KEY_MAX_DAYS:,} days.", field="expires_in_days"
        )
    if not user.is_active:
        raise IncidentError(f"{user.get_username()} is not an active user.", field="user")
    acting = acting_user(actor)
    if acting is not None and not acting.is_superuser and acting.pk != user.pk:
        # A key acts with its user's permissions: minting one for someone else would
        # hand out their rights.
        raise IncidentError("Only superusers may create keys for other people.", field="user")
    prefix = secrets.token_hex(4)
    plaintext = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = APIKey(
        name=name,
        user=user,
        prefix=prefix,
        hashed_key=hash_api_key(plaintext),
        created_by=acting_user(actor),
        expires_at=(timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None),
    )
    save_as(key, actor)
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, key: APIKey, actor=None) -> APIKey:
    """Stop the key from working, at once and for good."""
    key = APIKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None:
        raise StateConflict(f"{key} was already revoked.")
    key.revoked_at = timezone.now()
    save_as(key, actor)
    return key


def idempotency_records_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget stored responses older than a day; return how many were removed."""
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
