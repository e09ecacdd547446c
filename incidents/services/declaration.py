"""Opening an incident and editing what describes it: title, impact, times, services."""

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .. import extensions, notifications, status_page
from ..errors import DomainError
from ..history import bulk_history_create
from ..models import (
    DetectionSource,
    Environment,
    Incident,
    IncidentType,
    ReferenceCounter,
    Role,
    Service,
    Severity,
    Status,
    TimelineEvent,
)
from .common import (
    LONG_TEXT,
    acting_user,
    clean_text,
    lock_incident,
    save_as,
    when_happened,
)
from .roles import check_assignable, holders_kept, record_assignment
from .timeline import timeline_batch, timeline_record

EDITABLE_FIELDS = frozenset(
    {
        "title",
        "public_title",
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


def _allocate_reference(year: int) -> str:
    """Return the next INC-YYYY-NNNN, unique even when many declare at once."""
    # The counter row is locked until this transaction commits, so concurrent
    # declarations queue on it instead of reading the same last_number. One statement
    # (an upsert) creates the year's row or counts it up, and takes that lock; the first
    # two declarations of a year cannot both insert it.
    # ON CONFLICT ... RETURNING: PostgreSQL, and SQLite from 3.35.
    if connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and connection.features.can_return_rows_from_bulk_insert
    ):
        table, year_, last = (
            connection.ops.quote_name(name)
            for name in (ReferenceCounter._meta.db_table, "year", "last_number")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({year_}, {last}) VALUES (%s, 1) "
                f"ON CONFLICT ({year_}) DO UPDATE SET {last} = {table}.{last} + 1 "
                f"RETURNING {last}",
                [year],
            )
            (number,) = cursor.fetchone()
    else:
        counter, _ = ReferenceCounter.objects.select_for_update().get_or_create(year=year)
        counter.last_number = number = counter.last_number + 1
        counter.save(update_fields=["last_number"])
    return f"INC-{year}-{number:04d}"


def _check_impact(detection_source: str | None, estimated_users_affected) -> None:
    if detection_source is not None and detection_source not in DetectionSource.values:
        raise DomainError(
            f"Unknown detection source {detection_source!r}; use one of "
            f"{', '.join(DetectionSource.values)}.",
            field="detection_source",
        )
    if estimated_users_affected is not None and (
        isinstance(estimated_users_affected, bool)
        or not isinstance(estimated_users_affected, int)
        or estimated_users_affected < 0
    ):
        raise DomainError("Must be a whole number, 0 or more.", field="estimated_users_affected")


def check_times(
    started_at: datetime,
    detected_at: datetime,
    now: datetime,
    declared_at: datetime | None = None,
) -> None:
    """Refuse impact times that are naive, in the future or out of order
    (impact starts, then is detected, then is declared)."""
    for name, value in (("started_at", started_at), ("detected_at", detected_at)):
        when_happened(value, now, field=name)
    if detected_at < started_at:
        raise DomainError("Detection cannot come before the impact started.", field="detected_at")
    if declared_at is not None and detected_at > declared_at:
        raise DomainError(
            "Detection cannot come after the incident was declared.", field="detected_at"
        )


def _insert_with_services(incident: Incident, services: list[Service], actor) -> None:
    """Insert the new incident and its services with one "+" history row that already
    holds them, as the history page and the audit read it: four statements (the
    incident, its service rows, the history row, its service rows), not the eight of
    save() then services.add(), which also wrote a second, "~" row by the declarer."""
    incident.skip_history_when_saving = True  # simple-history's own switch
    try:
        save_as(incident, actor)
    finally:
        del incident.skip_history_when_saving
    through = Incident.services.through
    links = through.objects.bulk_create(
        [through(incident=incident, service=service) for service in services]
    )
    if links and links[0].pk is None:  # a database that cannot return the new pks
        links = list(through.objects.filter(incident=incident))
    # simple-history's own builder of "+" rows: the acting user (_history_user, else the
    # request's), the date and the change reason, as save() would have them.
    created = bulk_history_create(Incident, [incident])
    if not created:  # SIMPLE_HISTORY_ENABLED = False
        return
    (record,) = created
    field = Incident._meta.get_field("services")
    if field in record._history_m2m_fields and links:
        # The rows create_historical_record_m2ms would copy from the table just written.
        model = HistoricalRecords.m2m_models[field]
        model.objects.bulk_create(
            model(history=record, id=link.pk, incident=incident, service_id=link.service_id)
            for link in links
        )


def _check_title(title: str) -> str:
    return clean_text(title, field="title", limit=TITLE_MAX_LENGTH, required="A title is required.")


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
    source: str,
) -> Incident:
    """Open a new incident (or a triage candidate) and write its first timeline event."""
    now = timezone.now()
    title = _check_title(title)
    summary = clean_text(summary, field="summary", limit=LONG_TEXT)
    customer_impact = clean_text(customer_impact, field="customer_impact", limit=LONG_TEXT)
    _check_impact(detection_source, estimated_users_affected)
    if environment not in Environment.values:
        raise DomainError(
            f"Unknown environment {environment!r}; use one of {', '.join(Environment.values)}.",
            field="environment",
        )
    declared_at = when_happened(declared_at, now, field="declared_at")
    detected_at = detected_at or declared_at
    started_at = started_at or detected_at
    check_times(started_at, detected_at, now, declared_at=declared_at)
    if commander is not None:
        check_assignable(Role.COMMANDER, commander)

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
    services = list(services)
    # Every timeline event and outbox row of the declaration, its subscribers' too, is
    # inserted at the end, two statements for the events and one for the rows.
    with notifications.outbox_batch(), timeline_batch():
        # A service named twice is linked once (services.add() did the same).
        _insert_with_services(incident, list({s.pk: s for s in services}.values()), actor)
        with holders_kept(incident) as holders:
            _announce(
                incident,
                declared_at=declared_at,
                services=services,
                commander=commander,
                triage=triage,
                actor=actor,
                source=source,
            )
        # As incidents.queries.with_commander would annotate it: whoever holds the role
        # once the subscribers ran (on-call may staff one), known without a query.
        incident.commander_username = next(
            (user.get_username() for user in holders.get(Role.COMMANDER, [])), None
        )
    return incident


def _announce(
    incident: Incident,
    *,
    declared_at: datetime,
    services: list[Service],
    commander,
    triage: bool,
    actor,
    source: str,
) -> None:
    """Write the new incident's first timeline event, its commander, its messages, and
    tell the subscribers."""
    severity, incident_type = incident.severity, incident.incident_type
    verb = "Raised for triage" if triage else "Declared"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.DECLARED,
        summary=(
            f"{verb} as {severity.key} {incident_type.name.lower()} in "
            f"{incident.environment}: {incident.title}"
        ),
        actor=actor,
        source=source,
        occurred_at=declared_at,
        details={
            "severity": severity.key,
            "type": incident_type.slug,
            "environment": incident.environment,
            "services": [service.slug for service in services],
        },
    )
    # The incident's messages, written together: one insert, the templates read once.
    outbox = []
    if commander is not None:
        # A new incident, inserted by this transaction (so locked from everyone else),
        # has no role holder yet: role_assign's lock and handover have nothing to do.
        record_assignment(
            incident,
            role=Role.COMMANDER,
            user=commander,
            actor=actor,
            source=source,
            when=declared_at,
            outbox=outbox,
        )
    if triage:
        # A candidate is not yet an incident: whoever triages it is paged, not the matrix.
        outbox += extensions.paging.get().triage(
            incident,
            lead=commander or acting_user(actor),
            actor=actor,
            source=source,
            when=declared_at,
        )
    else:
        # After the commander is named, so the first message can say who leads.
        outbox.append(
            notifications.Message(incident, notifications.Event.DECLARED, message=incident.summary)
        )
    # What the templates may name, known: nobody else has written to this incident.
    known = notifications.KnownFacts(
        commander=commander.get_username() if commander is not None else None,
        services=list({service.pk: service.name for service in services}.values()),
    )
    notifications.notify_many(outbox, known={incident.pk: known})
    if not triage:
        extensions.declared.run(
            extensions.Declared(incident=incident, actor=actor, source=source, from_triage=False)
        )
    return incident


@transaction.atomic
def incident_update_details(
    *,
    incident: Incident,
    actor=None,
    source: str,
    services: Iterable[Service] | None = None,
    **changes,
) -> Incident:
    """Edit the descriptive fields (title, summary, impact…); history keeps old values."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise DomainError(f"Cannot edit {', '.join(sorted(unknown))} here.")
    incident = lock_incident(incident)
    if "title" in changes:
        changes["title"] = _check_title(changes["title"])
    if "public_title" in changes:  # may be empty: that keeps it off the status page
        changes["public_title"] = clean_text(
            changes["public_title"], field="public_title", limit=TITLE_MAX_LENGTH
        )
    for name in ("summary", "customer_impact"):
        if name in changes:
            changes[name] = clean_text(changes[name], field=name, limit=LONG_TEXT)
    if "environment" in changes and changes["environment"] not in Environment.values:
        raise DomainError(f"Unknown environment {changes['environment']!r}.", field="environment")
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
    status_page.invalidate()
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
    if "confidential" in changed:
        extensions.confidentiality_changed.run(
            extensions.ConfidentialityChanged(
                incident=incident,
                actor=actor,
                source=source,
                old=not incident.confidential,
                new=incident.confidential,
            )
        )
    return incident
