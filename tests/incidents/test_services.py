"""The service layer: every transition and guard, timestamps, atomicity, references, roles."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from incidents import queries, services
from incidents.defaults import INCIDENT_TYPES, SEVERITIES
from incidents.errors import DomainError, TransitionNotAllowed
from incidents.models import (
    Incident,
    IncidentType,
    ReferenceCounter,
    Role,
    RoleAssignment,
    Severity,
    Source,
    Status,
    TimelineEvent,
)
from incidents.services import timeline as timeline_services

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

# The core's rules alone: no post-mortem guard (a SEV1 closes without a published review)
# and no review started on resolve.
pytestmark = pytest.mark.usefixtures("core_only")

# The happy path through the lifecycle; any status on it is reached by walking it.
HAPPY_PATH = [
    Status.DECLARED,
    Status.INVESTIGATING,
    Status.IDENTIFIED,
    Status.MONITORING,
    Status.RESOLVED,
    Status.CLOSED,
]

ALLOWED_PAIRS = sorted(
    (from_status, to_status)
    for from_status, targets in services.TRANSITIONS.items()
    for to_status in targets
)


def transition(incident, to_status, source=Source.ADMIN, **kwargs):
    return services.incident_transition(
        incident=incident, to_status=to_status, source=source, **kwargs
    )


def incident_in(declare, status, **declare_kwargs):
    """Declare an incident and drive it into `status` through legal service calls only."""
    if status == Status.TRIAGE:
        return declare(triage=True, **declare_kwargs)
    incident = declare(**declare_kwargs)
    if status == Status.CANCELLED:
        return transition(incident, Status.CANCELLED)
    for step in HAPPY_PATH[1 : HAPPY_PATH.index(status) + 1]:
        incident = transition(incident, step)
    return incident


def events(incident, kind=None):
    queryset = TimelineEvent.objects.filter(incident=incident).order_by("id")
    return queryset if kind is None else queryset.filter(kind=kind)


def reload(incident):
    return Incident.objects.get(pk=incident.pk)


# --- lifecycle ------------------------------------------------------------------------


def test_helper_reaches_every_status(declare):
    # Guards the parametrised test below: every status it starts from is reachable.
    for status in Status.values:
        assert reload(incident_in(declare, status)).status == status


@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED_PAIRS)
def test_allowed_transition_changes_status_and_records_event(
    declare, commander, from_status, to_status
):
    incident = incident_in(declare, from_status)
    before = events(incident, TimelineEvent.Kind.STATUS_CHANGE).count()

    services.incident_transition(
        incident=incident, to_status=to_status, actor=commander, source=Source.ADMIN
    )

    assert reload(incident).status == to_status
    status_events = events(incident, TimelineEvent.Kind.STATUS_CHANGE)
    assert status_events.count() == before + 1
    event = status_events.last()
    assert event.details["from"] == from_status
    assert event.details["to"] == to_status
    assert event.author == commander


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (Status.CLOSED, Status.INVESTIGATING),
        (Status.CANCELLED, Status.DECLARED),
        (Status.TRIAGE, Status.RESOLVED),
        (Status.RESOLVED, Status.CANCELLED),
        (Status.DECLARED, Status.CLOSED),
        (Status.DECLARED, Status.TRIAGE),
        (Status.INVESTIGATING, Status.DECLARED),
        (Status.MONITORING, Status.CLOSED),
    ],
)
def test_illegal_transition_is_refused_and_changes_nothing(declare, from_status, to_status):
    incident = incident_in(declare, from_status)
    before = reload(incident)
    event_count = events(incident).count()
    history_count = incident.history.count()

    with pytest.raises(TransitionNotAllowed) as excinfo:
        transition(incident, to_status)

    message = str(excinfo.value)
    assert f"from {from_status} to {to_status}" in message
    allowed = services.allowed_transitions(from_status)
    assert f"allowed from {from_status}: " in message
    assert (", ".join(allowed) if allowed else "final") in message
    assert excinfo.value.allowed == allowed
    assert excinfo.value.field == "status"
    after = reload(incident)
    assert after.status == from_status
    assert after.updated_at == before.updated_at
    assert events(incident).count() == event_count
    assert incident.history.count() == history_count


def test_unknown_status_is_refused(declare):
    incident = declare()
    with pytest.raises(TransitionNotAllowed):
        transition(incident, "exploded")
    assert reload(incident).status == Status.DECLARED


def test_transition_note_is_kept_in_summary_and_details(declare):
    incident = declare()
    transition(incident, Status.CANCELLED, note="false alarm")
    event = events(incident, TimelineEvent.Kind.STATUS_CHANGE).get()
    assert event.details["note"] == "false alarm"
    assert event.summary.endswith(": false alarm")


# --- milestones -----------------------------------------------------------------------


def test_resolved_at_keeps_first_resolution_after_reopen(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        transition(incident, Status.RESOLVED)
    with time_machine.travel(T0 + 20 * MINUTE, tick=False):
        transition(incident, Status.INVESTIGATING)
    with time_machine.travel(T0 + 30 * MINUTE, tick=False):
        transition(incident, Status.RESOLVED)

    incident = reload(incident)
    assert incident.status == Status.RESOLVED
    assert incident.resolved_at == T0 + 10 * MINUTE
    last = events(incident, TimelineEvent.Kind.STATUS_CHANGE).last()
    assert last.occurred_at == T0 + 30 * MINUTE
    assert last.details["stamped"] == []


def test_acknowledge_stamps_time_once(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 5 * MINUTE, tick=False):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        transition(incident, Status.IDENTIFIED)
    with time_machine.travel(T0 + 15 * MINUTE, tick=False):
        transition(incident, Status.INVESTIGATING)
    with time_machine.travel(T0 + 20 * MINUTE, tick=False):
        transition(incident, Status.RESOLVED)

    incident = reload(incident)
    assert incident.acknowledged_at == T0 + 5 * MINUTE
    assert incident.identified_at == T0 + 10 * MINUTE


def test_acknowledge_moves_declared_incident_to_investigating(declare, commander):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 5 * MINUTE, tick=False):
        services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)

    incident = reload(incident)
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at == T0 + 5 * MINUTE
    assert incident.declared_at == T0
    event = events(incident, TimelineEvent.Kind.STATUS_CHANGE).get()
    assert event.details["to"] == Status.INVESTIGATING
    assert event.details["note"] == "acknowledged"


def test_acknowledging_twice_raises(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    with time_machine.travel(T0 + MINUTE, tick=False):
        with pytest.raises(DomainError, match="already acknowledged"):
            services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    incident = reload(incident)
    assert incident.acknowledged_at == T0
    assert events(incident, TimelineEvent.Kind.STATUS_CHANGE).count() == 1


def test_acknowledge_refused_once_cancelled(declare):
    incident = incident_in(declare, Status.CANCELLED)
    with pytest.raises(DomainError, match="cancelled"):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    assert reload(incident).acknowledged_at is None


def test_acknowledge_from_triage_declares_and_starts_investigating(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare(triage=True)
    assert incident.declared_at is None
    with time_machine.travel(T0 + 7 * MINUTE, tick=False):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)

    incident = reload(incident)
    assert incident.status == Status.INVESTIGATING
    assert incident.declared_at == T0 + 7 * MINUTE
    assert incident.acknowledged_at == T0 + 7 * MINUTE
    steps = [
        (e.details["from"], e.details["to"])
        for e in events(incident, TimelineEvent.Kind.STATUS_CHANGE)
    ]
    assert steps == [
        (Status.TRIAGE, Status.DECLARED),
        (Status.DECLARED, Status.INVESTIGATING),
    ]


def test_resolving_straight_from_declared_stamps_implied_milestones(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 30 * MINUTE, tick=False):
        transition(incident, Status.RESOLVED)

    incident = reload(incident)
    assert incident.acknowledged_at == T0 + 30 * MINUTE
    assert incident.mitigated_at == T0 + 30 * MINUTE
    assert incident.resolved_at == T0 + 30 * MINUTE
    assert incident.identified_at is None
    event = events(incident, TimelineEvent.Kind.STATUS_CHANGE).get()
    assert set(event.details["stamped"]) == {"acknowledged_at", "mitigated_at", "resolved_at"}


def test_cancelling_stamps_no_milestone(declare):
    incident = declare()
    transition(incident, Status.CANCELLED)
    incident = reload(incident)
    assert incident.acknowledged_at is None
    assert incident.resolved_at is None
    assert incident.closed_at is None


def test_transition_occurred_at_in_past_is_used_for_milestone(declare):
    with time_machine.travel(T0 + 30 * MINUTE, tick=False):
        incident = declare(declared_at=T0)
        transition(incident, Status.INVESTIGATING, occurred_at=T0 + 5 * MINUTE)
    assert reload(incident).acknowledged_at == T0 + 5 * MINUTE


def test_transition_occurred_at_in_future_is_refused(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
        with pytest.raises(DomainError):
            transition(incident, Status.INVESTIGATING, occurred_at=T0 + MINUTE)
    assert reload(incident).status == Status.DECLARED


# --- atomicity ------------------------------------------------------------------------


@pytest.fixture
def failing_record(monkeypatch):
    """Make the timeline write fail just after it wrote its rows: one event's save, or
    the batch a declaration inserts at its end."""
    real_save = TimelineEvent.save
    real_bulk = timeline_services.bulk_create_with_history

    def save(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        raise RuntimeError("timeline store unavailable")

    def bulk_create_with_history(*args, **kwargs):
        real_bulk(*args, **kwargs)
        raise RuntimeError("timeline store unavailable")

    def install():
        monkeypatch.setattr(TimelineEvent, "save", save)
        monkeypatch.setattr(timeline_services, "bulk_create_with_history", bulk_create_with_history)

    return install


def test_transition_is_rolled_back_when_timeline_write_fails(declare, failing_record):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    event_count = events(incident).count()
    history_count = incident.history.count()
    failing_record()

    with time_machine.travel(T0 + MINUTE, tick=False):
        with pytest.raises(RuntimeError):
            transition(incident, Status.RESOLVED)

    incident = reload(incident)
    assert incident.status == Status.DECLARED
    assert incident.acknowledged_at is None
    assert incident.mitigated_at is None
    assert incident.resolved_at is None
    assert events(incident).count() == event_count
    assert incident.history.count() == history_count


def test_severity_change_is_rolled_back_when_timeline_write_fails(
    declare, sev1, sev2, failing_record
):
    incident = declare()
    failing_record()
    with pytest.raises(RuntimeError):
        services.incident_change_severity(
            incident=incident, severity=sev2, reason="wider", source=Source.ADMIN
        )
    assert reload(incident).severity == sev1
    assert not events(incident, TimelineEvent.Kind.SEVERITY_CHANGE).exists()


def test_declare_is_rolled_back_when_timeline_write_fails(declare, failing_record):
    with time_machine.travel(T0, tick=False):
        first = declare()
        failing_record()
        with pytest.raises(RuntimeError):
            declare(title="Search is slow")

    assert list(Incident.objects.values_list("pk", flat=True)) == [first.pk]
    assert ReferenceCounter.objects.get(year=2025).last_number == 1
    assert TimelineEvent.objects.exclude(incident=first).count() == 0


def test_failed_first_declaration_of_year_leaves_no_counter(declare, failing_record, monkeypatch):
    failing_record()
    with time_machine.travel(T0, tick=False):
        with pytest.raises(RuntimeError):
            declare()
    assert not Incident.objects.exists()
    assert not ReferenceCounter.objects.exists()

    monkeypatch.undo()
    with time_machine.travel(T0, tick=False):
        assert declare().reference == "INC-2025-0001"


# --- references -----------------------------------------------------------------------


def test_references_count_up_within_a_year(declare):
    with time_machine.travel(T0, tick=False):
        first = declare()
        second = declare(title="Search is slow")
    assert first.reference == "INC-2025-0001"
    assert second.reference == "INC-2025-0002"


def test_reference_year_comes_from_declared_at(declare):
    with time_machine.travel(datetime(2025, 1, 2, 9, 0, tzinfo=UTC), tick=False):
        late = declare(declared_at=datetime(2024, 12, 31, 23, 0, tzinfo=UTC))
        current = declare()
    assert late.reference == "INC-2024-0001"
    assert current.reference == "INC-2025-0001"


def test_reference_numbering_restarts_each_year(declare):
    with time_machine.travel(datetime(2024, 12, 31, 22, 0, tzinfo=UTC), tick=False):
        declare()
        assert declare().reference == "INC-2024-0002"
    with time_machine.travel(datetime(2025, 1, 1, 0, 5, tzinfo=UTC), tick=False):
        assert declare().reference == "INC-2025-0001"
    with time_machine.travel(datetime(2025, 1, 1, 0, 10, tzinfo=UTC), tick=False):
        assert declare(declared_at=datetime(2024, 12, 31, 23, 0, tzinfo=UTC)).reference == (
            "INC-2024-0003"
        )


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks and real concurrency"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_declarations_get_distinct_references():
    # Transactional tests flush the database, so the data-migration rows may be gone.
    severity, _ = Severity.objects.get_or_create(
        key="SEV1", defaults=next(row for row in SEVERITIES if row["key"] == "SEV1")
    )
    incident_type, _ = IncidentType.objects.get_or_create(
        slug="outage", defaults=next(row for row in INCIDENT_TYPES if row["slug"] == "outage")
    )
    # Back-dated (its year names the references), within the year a back-date may reach.
    declared_at = timezone.now() - timedelta(days=30)
    year = declared_at.astimezone(UTC).year
    workers = 8
    barrier = threading.Barrier(workers)
    references, errors = [], []
    lock = threading.Lock()

    def declare_one(n):
        try:
            barrier.wait(timeout=30)
            incident = services.incident_declare(
                title=f"Concurrent {n}",
                severity=severity,
                incident_type=incident_type,
                declared_at=declared_at,
                source=Source.ADMIN,
            )
            with lock:
                references.append(incident.reference)
        except Exception as exc:  # reported below, on the main thread
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=declare_one, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(references) == [f"INC-{year}-{n:04d}" for n in range(1, workers + 1)]
    assert ReferenceCounter.objects.get(year=year).last_number == workers


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_working_one_incident_does_not_block_another_of_the_same_severity(declare):
    from django.db import transaction

    first, second = declare(title="First"), declare(title="Second")  # both SEV1 outages
    holding, release = threading.Event(), threading.Event()

    def hold_first_incident():
        try:
            with transaction.atomic():
                services.incident_transition(
                    incident=first, to_status=Status.INVESTIGATING, source=Source.ADMIN
                )
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_first_incident)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        with transaction.atomic():
            # Fail fast instead of hanging if the lock spread to the shared severity row.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            services.incident_transition(
                incident=second, to_status=Status.INVESTIGATING, source=Source.ADMIN
            )
    finally:
        release.set()
        holder.join(timeout=30)
    assert reload(second).status == Status.INVESTIGATING
    assert reload(first).status == Status.INVESTIGATING


# --- severity -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_severity_change_requires_reason(declare, sev1, sev2, reason):
    incident = declare()
    history_count = incident.history.count()
    with pytest.raises(DomainError) as excinfo:
        services.incident_change_severity(
            incident=incident, severity=sev2, reason=reason, source=Source.ADMIN
        )
    assert excinfo.value.field == "reason"
    assert reload(incident).severity == sev1
    assert not events(incident, TimelineEvent.Kind.SEVERITY_CHANGE).exists()
    assert incident.history.count() == history_count


def test_severity_change_to_same_severity_is_refused(declare, sev1):
    incident = declare()
    with pytest.raises(DomainError, match="already SEV1") as excinfo:
        services.incident_change_severity(
            incident=incident, severity=sev1, reason="recheck", source=Source.ADMIN
        )
    assert excinfo.value.field == "severity"
    assert not events(incident, TimelineEvent.Kind.SEVERITY_CHANGE).exists()


def test_severity_change_refused_once_closed(declare, sev1, sev2):
    incident = incident_in(declare, Status.CLOSED)
    with pytest.raises(DomainError, match="closed"):
        services.incident_change_severity(
            incident=incident, severity=sev2, reason="late", source=Source.ADMIN
        )
    assert reload(incident).severity == sev1


def test_severity_change_records_event_and_history_reason(declare, responder, sev2):
    incident = declare()
    services.incident_change_severity(
        incident=incident,
        severity=sev2,
        reason="  only EU affected  ",
        actor=responder,
        source=Source.ADMIN,
    )

    incident = reload(incident)
    assert incident.severity == sev2
    event = events(incident, TimelineEvent.Kind.SEVERITY_CHANGE).get()
    assert event.details == {"from": "SEV1", "to": "SEV2", "reason": "only EU affected"}
    assert event.author == responder
    assert event.summary.startswith("Downgraded SEV1 → SEV2")
    record = incident.history.first()
    assert record.severity_id == sev2.pk
    assert record.history_change_reason == "only EU affected"
    assert record.history_user == responder


def test_severity_raise_is_called_escalation(declare, sev1, sev2):
    incident = declare(severity=sev2)
    services.incident_change_severity(
        incident=incident, severity=sev1, reason="spreading", source=Source.ADMIN
    )
    event = events(incident, TimelineEvent.Kind.SEVERITY_CHANGE).get()
    assert event.summary.startswith("Escalated SEV2 → SEV1")


# --- details and history --------------------------------------------------------------


def test_history_records_each_acting_user_and_title_diff(declare, commander, responder):
    with time_machine.travel(T0, tick=False):
        incident = declare(title="Checkout returns 502", actor=commander)
    with time_machine.travel(T0 + MINUTE, tick=False):
        services.incident_update_details(
            incident=incident,
            title="Checkout returns 502 for EU cards",
            actor=responder,
            source=Source.ADMIN,
        )

    records = list(incident.history.order_by("history_date", "history_id"))
    assert [record.history_user for record in records] == [commander, responder]
    old_record, new_record = records[-2:]
    delta = new_record.diff_against(old_record)
    title_change = next(change for change in delta.changes if change.field == "title")
    assert title_change.old == "Checkout returns 502"
    assert title_change.new == "Checkout returns 502 for EU cards"


@pytest.mark.parametrize("field", ["status", "reference", "severity", "resolved_at"])
def test_update_details_refuses_fields_it_does_not_own(declare, field):
    incident = declare()
    with pytest.raises(DomainError, match=field):
        services.incident_update_details(incident=incident, source=Source.ADMIN, **{field: None})
    assert reload(incident).status == Status.DECLARED


@pytest.mark.parametrize("title", ["", "   "])
def test_update_details_refuses_blank_title(declare, title):
    incident = declare()
    with pytest.raises(DomainError) as excinfo:
        services.incident_update_details(incident=incident, title=title, source=Source.ADMIN)
    assert excinfo.value.field == "title"
    assert reload(incident).title == "Checkout returns 502"


def test_update_details_refuses_detection_before_start(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare(started_at=T0 - 10 * MINUTE, detected_at=T0 - 5 * MINUTE)
        with pytest.raises(DomainError) as excinfo:
            services.incident_update_details(
                incident=incident, detected_at=T0 - 20 * MINUTE, source=Source.ADMIN
            )
    assert excinfo.value.field == "detected_at"
    assert reload(incident).detected_at == T0 - 5 * MINUTE


def test_update_details_without_change_writes_nothing(declare, api_service):
    incident = declare(services=[api_service])
    event_count = events(incident).count()
    history_count = incident.history.count()

    services.incident_update_details(
        incident=incident,
        title="  Checkout returns 502 ",
        summary="",
        services=[api_service],
        source=Source.ADMIN,
    )

    assert events(incident).count() == event_count
    assert incident.history.count() == history_count


def test_update_details_records_changed_fields(declare, responder):
    incident = declare()
    services.incident_update_details(
        incident=incident,
        actor=responder,
        summary="Card payments fail",
        title=incident.title,
        source=Source.ADMIN,
    )
    event = events(incident, TimelineEvent.Kind.DETAILS_CHANGE).get()
    assert event.details == {"fields": ["summary"]}
    assert event.author == responder
    assert reload(incident).summary == "Card payments fail"


def test_update_details_records_services_change(declare, api_service):
    incident = declare()
    services.incident_update_details(incident=incident, services=[api_service], source=Source.ADMIN)

    assert list(reload(incident).services.all()) == [api_service]
    event = events(incident, TimelineEvent.Kind.DETAILS_CHANGE).get()
    assert event.details["services"] == {"from": [], "to": ["api"]}


def test_update_details_accepts_services_as_any_iterable(declare, api_service):
    incident = declare()
    services.incident_update_details(
        incident=incident, services=iter([api_service]), source=Source.ADMIN
    )
    event = events(incident, TimelineEvent.Kind.DETAILS_CHANGE).get()
    assert event.details["services"]["to"] == ["api"]
    assert list(reload(incident).services.all()) == [api_service]


# --- roles ----------------------------------------------------------------------------


def assign(incident, role, user, **kwargs):
    return services.role_assign(
        incident=incident, role=role, user=user, source=Source.ADMIN, **kwargs
    )


def test_assigning_commander_relieves_previous_one(declare, commander, responder):
    with time_machine.travel(T0, tick=False):
        incident = declare(commander=commander)
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        assign(incident, Role.COMMANDER, responder, actor=commander)

    previous, current = RoleAssignment.objects.filter(incident=incident, role=Role.COMMANDER)
    assert previous.user == commander
    assert previous.assigned_at == T0
    assert previous.relieved_at == T0 + 10 * MINUTE
    assert current.user == responder
    assert current.relieved_at is None
    assert current.assigned_by == commander
    event = events(incident, TimelineEvent.Kind.ROLE_CHANGE).last()
    assert event.details == {"role": Role.COMMANDER, "user": "bob", "relieved": ["alice"]}


def test_assigning_same_holder_twice_is_refused(declare, commander):
    incident = declare(commander=commander)
    with pytest.raises(DomainError, match="already") as excinfo:
        assign(incident, Role.COMMANDER, commander)
    assert excinfo.value.field == "user"
    assignment = RoleAssignment.objects.get(incident=incident, role=Role.COMMANDER)
    assert assignment.relieved_at is None


def test_subject_matter_experts_can_hold_the_role_together(declare, responder, security_member):
    incident = declare()
    assign(incident, Role.SME, responder)
    assign(incident, Role.SME, security_member)

    holders = queries.current_role_holders(incident)[Role.SME]
    assert set(holders) == {responder, security_member}
    assert not RoleAssignment.objects.filter(relieved_at__isnull=False).exists()


def test_same_subject_matter_expert_twice_is_refused(declare, responder):
    incident = declare()
    assign(incident, Role.SME, responder)
    with pytest.raises(DomainError):
        assign(incident, Role.SME, responder)


def test_unknown_role_is_refused(declare, responder):
    incident = declare()
    with pytest.raises(DomainError) as excinfo:
        assign(incident, "janitor", responder)
    assert excinfo.value.field == "role"


def test_inactive_user_cannot_take_a_role(declare, responder):
    responder.is_active = False
    responder.save()
    incident = declare()
    with pytest.raises(DomainError, match="not an active user"):
        assign(incident, Role.SCRIBE, responder)


def test_relieved_holder_can_take_the_role_again(declare, commander, responder):
    with time_machine.travel(T0, tick=False):
        incident = declare(commander=commander)
    with time_machine.travel(T0 + MINUTE, tick=False):
        assign(incident, Role.COMMANDER, responder)
    with time_machine.travel(T0 + 2 * MINUTE, tick=False):
        assign(incident, Role.COMMANDER, commander)
    assert queries.current_role_holders(incident)[Role.COMMANDER] == [commander]


def test_role_relieve_stands_holder_down(declare, responder):
    incident = declare()
    with time_machine.travel(T0, tick=False):
        assignment = assign(incident, Role.SCRIBE, responder)
    with time_machine.travel(T0 + MINUTE, tick=False):
        services.role_relieve(assignment=assignment, source=Source.ADMIN)
        with pytest.raises(DomainError, match="already relieved"):
            services.role_relieve(assignment=assignment, source=Source.ADMIN)
    assignment.refresh_from_db()
    assert assignment.relieved_at == T0 + MINUTE
    assert Role.SCRIBE not in queries.current_role_holders(incident)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-MINUTE, []),
        (timedelta(0), ["alice"]),
        (5 * MINUTE, ["alice"]),
        (10 * MINUTE, ["bob"]),
        (60 * MINUTE, ["bob"]),
    ],
    ids=["before-any", "at-first", "between", "at-handover", "after-handover"],
)
def test_role_holders_at_answers_who_was_commander(declare, commander, responder, offset, expected):
    with time_machine.travel(T0 - 30 * MINUTE, tick=False):
        incident = declare()
    with time_machine.travel(T0, tick=False):
        assign(incident, Role.COMMANDER, commander)
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        assign(incident, Role.COMMANDER, responder)

    holders = queries.role_holders_at(incident, Role.COMMANDER, T0 + offset)
    assert [user.username for user in holders] == expected


def test_role_holders_at_excludes_holder_after_stand_down(declare, commander):
    incident = declare()
    with time_machine.travel(T0, tick=False):
        assignment = assign(incident, Role.COMMANDER, commander)
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        services.role_relieve(assignment=assignment, source=Source.ADMIN)
    assert queries.role_holders_at(incident, Role.COMMANDER, T0 + 9 * MINUTE) == [commander]
    assert queries.role_holders_at(incident, Role.COMMANDER, T0 + 11 * MINUTE) == []


# --- timeline -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TimelineEvent.MANUAL_KINDS)
def test_timeline_accepts_manual_kinds(declare, responder, kind):
    incident = declare()
    entry = services.timeline_add_entry(
        incident=incident,
        kind=kind,
        summary="  Rolled back deploy 42 ",
        actor=responder,
        source=Source.ADMIN,
    )
    entry.refresh_from_db()
    assert entry.kind == kind
    assert entry.summary == "Rolled back deploy 42"
    assert entry.author == responder


@pytest.mark.parametrize(
    "kind",
    sorted(set(TimelineEvent.Kind.values) - set(TimelineEvent.MANUAL_KINDS)) + ["gossip"],
)
def test_timeline_refuses_kinds_written_by_services(declare, kind):
    incident = declare()
    count = events(incident).count()
    with pytest.raises(DomainError) as excinfo:
        services.timeline_add_entry(
            incident=incident, kind=kind, summary="sneaky", source=Source.ADMIN
        )
    assert excinfo.value.field == "kind"
    assert events(incident).count() == count


@pytest.mark.parametrize("summary", ["", "  \n ", None])
def test_timeline_refuses_blank_text(declare, summary):
    incident = declare()
    count = events(incident).count()
    with pytest.raises(DomainError) as excinfo:
        services.timeline_add_entry(
            incident=incident,
            kind=TimelineEvent.Kind.NOTE,
            summary=summary,
            source=Source.ADMIN,
        )
    assert excinfo.value.field == "summary"
    assert events(incident).count() == count


def test_timeline_refuses_entry_in_the_future(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
        count = events(incident).count()
        with pytest.raises(DomainError, match="future"):
            services.timeline_add_entry(
                incident=incident,
                kind=TimelineEvent.Kind.NOTE,
                summary="from tomorrow",
                occurred_at=T0 + MINUTE,
                source=Source.ADMIN,
            )
    assert events(incident).count() == count


def test_timeline_refuses_naive_time(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
        with pytest.raises(DomainError, match="time zone"):
            services.timeline_add_entry(
                incident=incident,
                kind=TimelineEvent.Kind.NOTE,
                summary="no zone",
                occurred_at=datetime(2025, 3, 4, 9, 0),
                source=Source.ADMIN,
            )


def test_timeline_backdated_entry_keeps_occurred_at_and_records_created_at(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 60 * MINUTE, tick=False):
        entry = services.timeline_add_entry(
            incident=incident,
            kind=TimelineEvent.Kind.ACTION,
            summary="Restarted the pool",
            occurred_at=T0 + 20 * MINUTE,
            source=Source.ADMIN,
        )
    entry.refresh_from_db()
    assert entry.occurred_at == T0 + 20 * MINUTE
    assert entry.created_at == T0 + 60 * MINUTE


# --- declaring ------------------------------------------------------------------------


@pytest.mark.parametrize("title", ["", "   ", None])
def test_declare_refuses_blank_title(declare, title):
    with pytest.raises(DomainError) as excinfo:
        declare(title=title)
    assert excinfo.value.field == "title"
    assert not Incident.objects.exists()


def test_declare_refuses_overlong_title(declare):
    with pytest.raises(DomainError) as excinfo:
        declare(title="x" * (services.TITLE_MAX_LENGTH + 1))
    assert excinfo.value.field == "title"


def test_declare_refuses_detection_before_start(declare):
    with time_machine.travel(T0, tick=False):
        with pytest.raises(DomainError) as excinfo:
            declare(started_at=T0 - 5 * MINUTE, detected_at=T0 - 10 * MINUTE)
    assert excinfo.value.field == "detected_at"
    assert not Incident.objects.exists()
    assert not ReferenceCounter.objects.exists()


def test_declare_refuses_start_in_the_future(declare):
    with time_machine.travel(T0, tick=False):
        with pytest.raises(DomainError) as excinfo:
            declare(started_at=T0 + MINUTE)
    assert excinfo.value.field == "started_at"
    assert not Incident.objects.exists()


def test_declare_refuses_unknown_environment(declare):
    with pytest.raises(DomainError) as excinfo:
        declare(environment="moon")
    assert excinfo.value.field == "environment"


def test_declare_defaults_times_to_now(declare, commander):
    with time_machine.travel(T0, tick=False):
        incident = reload(declare())
    assert incident.status == Status.DECLARED
    assert incident.started_at == incident.detected_at == incident.declared_at == T0
    assert incident.declared_by == commander
    event = events(incident).get()
    assert event.kind == TimelineEvent.Kind.DECLARED
    assert event.occurred_at == T0
    assert event.author == commander


def test_declare_for_triage_leaves_declared_at_empty(declare):
    incident = reload(declare(triage=True))
    assert incident.status == Status.TRIAGE
    assert incident.declared_at is None
    declared = events(incident, TimelineEvent.Kind.DECLARED).get()
    assert declared.summary.startswith("Raised for triage")


def test_security_incident_is_confidential_by_default(declare, security_type):
    assert reload(declare(incident_type=security_type)).confidential is True


def test_outage_is_not_confidential_by_default(declare):
    assert reload(declare()).confidential is False


def test_explicit_confidential_overrides_type_default(declare, security_type):
    assert reload(declare(incident_type=security_type, confidential=False)).confidential is False


def test_declare_with_commander_assigns_the_role(declare, commander, responder):
    with time_machine.travel(T0, tick=False):
        incident = declare(commander=responder, actor=commander)
    assignment = RoleAssignment.objects.get(incident=incident)
    assert assignment.role == Role.COMMANDER
    assert assignment.user == responder
    assert assignment.assigned_at == T0
    assert assignment.assigned_by == commander
    assert assignment.relieved_at is None


def test_declare_links_services(declare, api_service):
    incident = declare(services=(s for s in [api_service]))
    assert list(reload(incident).services.all()) == [api_service]
    assert events(incident).get().details["services"] == ["api"]


def test_reference_year_is_the_utc_year(declare):
    from datetime import timezone as dt_timezone

    plus_one = dt_timezone(timedelta(hours=1))
    new_year_in_paris = datetime(2026, 1, 1, 0, 30, tzinfo=plus_one)  # 2025-12-31 23:30 UTC
    with time_machine.travel(datetime(2026, 1, 1, 1, 0, tzinfo=UTC), tick=False):
        incident = declare(declared_at=new_year_in_paris)
    assert incident.reference == "INC-2025-0001"


def test_declare_in_the_future_names_declared_at(declare):
    with pytest.raises(DomainError) as error:
        declare(declared_at=timezone.now() + timedelta(hours=1))
    assert error.value.field == "declared_at"


def test_backdated_handover_before_current_holder_took_over_is_refused(
    declare, commander, responder
):
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        incident = declare(commander=commander, detected_at=T0 - 5 * MINUTE)
    with time_machine.travel(T0 + 20 * MINUTE, tick=False):
        with pytest.raises(DomainError, match="a handover cannot be earlier"):
            assign(incident, Role.COMMANDER, responder, occurred_at=T0)
    holder = RoleAssignment.objects.get(incident=incident, role=Role.COMMANDER)
    assert holder.user == commander and holder.relieved_at is None


def test_backdated_transition_before_recorded_milestones_is_refused(declare):
    with time_machine.travel(T0, tick=False):
        incident = declare()
    with time_machine.travel(T0 + 30 * MINUTE, tick=False):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)
        with pytest.raises(DomainError, match="Cannot be before") as error:
            services.incident_transition(
                incident=incident,
                to_status=Status.RESOLVED,
                occurred_at=T0 + 10 * MINUTE,
                source=Source.ADMIN,
            )
    assert error.value.field == "occurred_at"
    assert reload(incident).status == Status.INVESTIGATING


def test_role_cannot_be_assigned_before_detection(declare, responder):
    with time_machine.travel(T0, tick=False):
        incident = declare()
        with pytest.raises(DomainError, match="Cannot be before"):
            assign(incident, Role.SCRIBE, responder, occurred_at=T0 - 60 * MINUTE)
    assert not incident.roles.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("detection_source", "carrier_pigeon"),
        ("estimated_users_affected", -5),
        ("estimated_users_affected", "many"),
    ],
)
def test_declare_refuses_bad_impact_values(declare, field, value):
    with pytest.raises(DomainError) as error:
        declare(**{field: value})
    assert error.value.field == field
    assert not Incident.objects.exists()


def test_detection_after_declaration_is_refused(declare):
    with time_machine.travel(T0 + 60 * MINUTE, tick=False):
        with pytest.raises(DomainError, match="after the incident was declared"):
            declare(declared_at=T0, detected_at=T0 + 30 * MINUTE, started_at=T0)


def test_impact_times_cannot_reach_back_further_than_a_year(declare):
    long_ago = timezone.now() - services.MAX_BACKDATE - timedelta(days=1)
    with pytest.raises(DomainError) as refused:
        declare(started_at=long_ago)
    assert refused.value.field == "started_at"
