"""The core's extension points (incidents.extensions): guards that refuse, events inside
the service's transaction, the apps' own timeline kinds and notification events."""

import dataclasses
import io

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.services import follow_incident
from forensics.services import start_clock_on_declared
from incidents import extensions, notifications, services
from incidents.errors import DomainError, StateConflict
from incidents.models import (
    Audience,
    Notification,
    Role,
    RoleAssignment,
    Source,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from incidents.paging import Ladder
from oncall.provider import OnCallPaging
from oncall.services.activation import activate_on_declared
from oncall.services.paging import stop_pages_on_transition
from playbooks.services import require_steps_before_close, start_on_declaration
from postmortems.extensions import publish_guard
from postmortems.services import require_published_postmortem, start_postmortem_on_resolve
from remediation.services import require_action_items_or_reason
from tests.api import client_for

# The apps' close guards, in INSTALLED_APPS order.
CLOSE_GUARDS = [require_published_postmortem, require_steps_before_close]


class Recorder:
    """A subscriber that keeps every payload it is called with."""

    def __init__(self, fail: Exception | None = None):
        self.payloads = []
        self.fail = fail

    def __call__(self, payload):
        self.payloads.append(payload)
        if self.fail is not None:
            raise self.fail


@pytest.fixture
def core(core_only):
    """The core alone; anything a test registers is gone after it."""
    return extensions


def transition(incident, to_status, **kwargs):
    return services.incident_transition(
        incident=incident, to_status=to_status, source=Source.ADMIN, **kwargs
    )


def written(incident):
    """Everything a refused or rolled-back change could have left behind."""
    incident.refresh_from_db()
    return (
        incident.status,
        incident.timeline.count(),
        incident.history.count(),
        Notification.objects.filter(incident=incident).count(),
    )


# --- guards ---------------------------------------------------------------------------


def test_a_transition_guard_refusing_rolls_back_the_whole_acknowledgement(core, declare):
    """Accepting a triage candidate and starting work is one change: a refusal of the
    second move undoes the first."""
    incident = declare(triage=True)
    before = written(incident)

    def no_investigating(request):
        if request.to_status == Status.INVESTIGATING:
            raise StateConflict("Investigations are frozen.", field="status")

    core.transition_guard.register(no_investigating)
    with pytest.raises(StateConflict, match="Investigations are frozen."):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)

    assert written(incident) == before
    assert incident.status == Status.TRIAGE
    assert incident.declared_at is None


def test_a_transition_guard_sees_the_move_before_it_happens(core, declare, commander):
    incident = declare()
    seen = []
    core.transition_guard.register(lambda request: seen.append((request, request.incident.status)))

    transition(incident, Status.INVESTIGATING, actor=commander)

    [(request, status_then)] = seen
    assert request == extensions.TransitionRequest(
        incident=request.incident,
        actor=commander,
        source=Source.ADMIN,
        from_status=Status.DECLARED,
        to_status=Status.INVESTIGATING,
    )
    assert request.incident.pk == incident.pk
    assert status_then == Status.DECLARED  # nothing changed yet


def test_a_close_guard_is_asked_only_when_closing(core, declare, commander):
    incident = declare()
    asked = Recorder(fail=StateConflict("The customer has not confirmed.", field="status"))
    core.close_guard.register(asked)

    transition(incident, Status.RESOLVED)
    assert asked.payloads == []
    before = written(incident)
    with pytest.raises(StateConflict, match="The customer has not confirmed."):
        transition(incident, Status.CLOSED, actor=commander)

    assert written(incident) == before
    assert incident.status == Status.RESOLVED
    assert incident.closed_at is None
    [request] = asked.payloads
    assert (request.incident.pk, request.actor, request.source) == (
        incident.pk,
        commander,
        Source.ADMIN,
    )


def test_core_only_closes_a_sev1_without_a_review(core, declare):
    incident = declare()
    assert incident.severity.postmortem_required
    transition(incident, Status.RESOLVED)
    assert transition(incident, Status.CLOSED).status == Status.CLOSED
    assert not incident.timeline.filter(kind="review").exists()  # none was started


def test_with_the_apps_a_sev1_still_needs_a_published_review_to_close(declare):
    incident = declare()
    transition(incident, Status.RESOLVED)
    with pytest.raises(StateConflict, match="requires a published post-mortem"):
        transition(incident, Status.CLOSED)


# --- events ---------------------------------------------------------------------------


def test_a_subscriber_raising_rolls_back_the_change(core, declare):
    incident = declare()
    before = written(incident)
    core.transitioned.register(Recorder(fail=RuntimeError("the pager is down")))

    with pytest.raises(RuntimeError, match="the pager is down"):
        transition(incident, Status.INVESTIGATING)

    assert written(incident) == before
    assert incident.acknowledged_at is None


def test_a_subscriber_raising_takes_the_status_update_with_it(core, declare):
    incident = declare()
    core.update_posted.register(Recorder(fail=DomainError("no")))
    with pytest.raises(DomainError):
        services.status_update_post(
            incident=incident, audience=Audience.INTERNAL, summary="Rolling back", source="api"
        )
    assert not StatusUpdate.objects.filter(incident=incident).exists()
    assert not incident.timeline.filter(kind=TimelineEvent.Kind.COMMUNICATION).exists()


def test_a_subscriber_runs_inside_the_transaction(core, declare):
    """What a subscriber writes sees the change, and shares its fate."""
    incident = declare()
    states = []
    core.transitioned.register(
        lambda event: states.append(
            (transaction.get_connection().in_atomic_block, type(event).__name__)
        )
    )
    transition(incident, Status.INVESTIGATING)
    assert states == [(True, "Transitioned")]


def test_declaring_fires_declared_once_after_the_commander_is_named(
    core, declare, commander, responder
):
    declared, assigned = Recorder(), Recorder()
    core.declared.register(declared)
    core.role_assigned.register(assigned)
    core.declared.register(lambda event: declared.payloads.append(event.incident.roles.count()))

    incident = declare(commander=responder)

    event, roles_then = declared.payloads
    assert event == extensions.Declared(
        incident=incident, actor=commander, source=Source.ADMIN, from_triage=False
    )
    assert roles_then == 1
    [assignment] = assigned.payloads
    assert (assignment.assignment.user, assignment.relieved) == (responder, ())


def test_a_triage_candidate_is_declared_when_accepted_not_when_raised(core, declare, commander):
    declared, moved = Recorder(), Recorder()
    core.declared.register(declared)
    core.transitioned.register(moved)

    incident = declare(triage=True)
    assert declared.payloads == []

    services.incident_acknowledge(incident=incident, actor=commander, source=Source.API)

    assert [(event.from_status, event.to_status) for event in moved.payloads] == [
        (Status.TRIAGE, Status.DECLARED),
        (Status.DECLARED, Status.INVESTIGATING),
    ]
    assert [event.note for event in moved.payloads] == ["accepted from triage", "acknowledged"]
    [event] = declared.payloads
    assert (event.incident.pk, event.actor, event.source, event.from_triage) == (
        incident.pk,
        commander,
        Source.API,
        True,
    )


def test_transitioned_carries_the_move(core, declare, commander):
    moved = Recorder()
    core.transitioned.register(moved)
    incident = declare()

    transition(incident, Status.MONITORING, actor=commander, note="Fix deployed")

    [event] = moved.payloads
    assert event == extensions.Transitioned(
        incident=event.incident,
        actor=commander,
        source=Source.ADMIN,
        from_status=Status.DECLARED,
        to_status=Status.MONITORING,
        note="Fix deployed",
    )
    assert event.incident.status == Status.MONITORING  # after the change


def test_severity_changed_carries_both_severities_and_the_reason(core, declare, sev1, sev2):
    changed = Recorder()
    core.severity_changed.register(changed)
    incident = declare()

    services.incident_change_severity(
        incident=incident, severity=sev2, reason="Only EU affected", source=Source.CLI
    )

    [event] = changed.payloads
    assert (event.from_severity, event.to_severity, event.reason, event.source) == (
        sev1,
        sev2,
        "Only EU affected",
        Source.CLI,
    )


def test_role_assigned_names_who_was_relieved(core, declare, commander, responder):
    assigned = Recorder()
    incident = declare(commander=commander)
    core.role_assigned.register(assigned)

    services.role_assign(
        incident=incident, role=Role.COMMANDER, user=responder, actor=commander, source="api"
    )

    [event] = assigned.payloads
    previous = RoleAssignment.objects.get(incident=incident, user=commander)
    assert event.assignment == RoleAssignment.objects.get(incident=incident, user=responder)
    assert event.relieved == (previous,)
    assert previous.relieved_at is not None


def test_confidentiality_changed_fires_only_when_it_changes(core, declare, commander):
    changed = Recorder()
    core.confidentiality_changed.register(changed)
    incident = declare()

    services.incident_update_details(incident=incident, source=Source.ADMIN, title="Renamed")
    services.incident_update_details(
        incident=incident, actor=commander, source=Source.ADMIN, confidential=False
    )
    assert changed.payloads == []
    services.incident_update_details(
        incident=incident, actor=commander, source=Source.ADMIN, confidential=True
    )

    [event] = changed.payloads
    assert (event.old, event.new, event.actor) == (False, True, commander)


def test_update_posted_carries_the_update(core, declare, commander):
    posted = Recorder()
    core.update_posted.register(posted)
    incident = declare()

    update = services.status_update_post(
        incident=incident,
        audience=Audience.INTERNAL,
        summary="Rolling back",
        actor=commander,
        source=Source.ADMIN,
    )

    assert posted.payloads == [
        extensions.UpdatePosted(
            incident=posted.payloads[0].incident,
            actor=commander,
            source=Source.ADMIN,
            update=update,
        )
    ]


def test_payloads_cannot_be_changed_by_a_subscriber(core, declare):
    moved = Recorder()
    core.transitioned.register(moved)
    transition(declare(), Status.INVESTIGATING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.payloads[0].to_status = Status.CLOSED


# --- registering ----------------------------------------------------------------------


def test_registering_twice_is_registering_once(core, declare):
    moved = Recorder()
    assert core.transitioned.register(moved) is moved
    core.transitioned.register(moved)
    transition(declare(), Status.INVESTIGATING)
    assert len(moved.payloads) == 1


def test_running_the_apps_ready_again_registers_nothing_twice():
    with extensions.restored():
        before = {name: list(getattr(extensions, name)) for name in ("close_guard", "transitioned")}
        kinds = extensions.timeline_kind_choices()
        paging = extensions.paging.get()
        labels = ("incidents", "postmortems", "remediation", "alerts", "oncall", "playbooks")
        for label in (*labels, "forensics"):
            apps.get_app_config(label).ready()
        assert {name: list(getattr(extensions, name)) for name in before} == before
        assert list(extensions.close_guard) == CLOSE_GUARDS
        assert list(extensions.transitioned) == [
            start_postmortem_on_resolve,
            follow_incident,
            stop_pages_on_transition,
        ]
        assert list(extensions.declared) == [
            activate_on_declared,
            start_on_declaration,
            start_clock_on_declared,
        ]
        assert extensions.paging.get() is paging
        assert list(publish_guard) == [require_action_items_or_reason]
        assert extensions.timeline_kind_choices() == kinds


def test_an_app_takes_the_paging_slot_over_and_isolation_gives_it_back_to_the_ladder():
    assert isinstance(extensions.paging.get(), OnCallPaging)
    with extensions.isolated():
        assert isinstance(extensions.paging.get(), Ladder)
        assert not extensions.paging.taken_over
    assert isinstance(extensions.paging.get(), OnCallPaging)


def test_a_second_app_cannot_take_a_slot_another_app_holds():
    class OtherPaging(Ladder):
        pass

    with pytest.raises(ImproperlyConfigured, match="already provided"):
        extensions.paging.provide(OtherPaging())
    assert isinstance(extensions.paging.get(), OnCallPaging)


def test_isolation_removes_every_subscriber_and_restores_them_afterwards():
    extra = Recorder()
    with extensions.isolated():
        assert list(extensions.close_guard) == []
        assert list(extensions.transitioned) == []
        assert list(publish_guard) == []  # the apps' own points too
        extensions.transitioned.register(extra)
        extensions.register_timeline_kind("drill", "Game-day drill")
    assert list(extensions.close_guard) == CLOSE_GUARDS
    assert list(extensions.transitioned) == [
        start_postmortem_on_resolve,
        follow_incident,
        stop_pages_on_transition,
    ]
    assert list(publish_guard) == [require_action_items_or_reason]
    assert "drill" not in dict(extensions.timeline_kind_choices())


def test_isolation_restores_even_when_the_block_fails():
    with pytest.raises(RuntimeError), extensions.only(start_postmortem_on_resolve):
        assert list(extensions.transitioned) == [start_postmortem_on_resolve]
        assert list(extensions.close_guard) == []
        raise RuntimeError
    assert list(extensions.close_guard) == CLOSE_GUARDS


# --- vocabularies ---------------------------------------------------------------------


def test_the_core_lists_no_post_mortem_or_remediation_words():
    assert {"review", "follow_up"}.isdisjoint(TimelineEvent.Kind.values)
    assert {"review", "review_published", "follow_up"}.isdisjoint(Notification.Event.values)
    # The apps register them, with the labels they always had, after the core's own.
    kinds = extensions.timeline_kind_choices()
    assert kinds[: len(TimelineEvent.Kind.choices)] == TimelineEvent.Kind.choices
    registered = kinds[len(TimelineEvent.Kind.choices) :]
    assert ("review", "Post-incident review") in registered
    assert ("follow_up", "Follow-up work") in registered
    events = dict(extensions.notification_event_choices())
    assert events["review"] == "Post-incident review"
    assert events["review_published"] == "Post-incident review published"
    assert events["follow_up"] == "Follow-up work"


def test_a_new_apps_timeline_kind_works_without_a_migration(
    core, declare, commander, commander_client
):
    incident = declare()
    core.register_timeline_kind("drill", "Game-day drill")
    out = io.StringIO()
    call_command("makemigrations", "incidents", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()

    with transaction.atomic():
        event = services.timeline_record(
            incident,
            kind="drill",
            summary="Pulled the primary's plug",
            actor=commander,
            source=Source.SYSTEM,
            occurred_at=timezone.now(),
        )

    event.refresh_from_db()
    assert event.get_kind_display() == "Game-day drill"
    page = commander_client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))
    assert page.status_code == 200
    assert "Game-day drill" in page.content.decode()
    listed = client_for(commander).get(f"/api/v1/incidents/{incident.reference}/timeline/")
    assert listed.status_code == 200, listed.content
    rows = listed.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert [row["kind"] for row in rows if row["summary"] == "Pulled the primary's plug"] == [
        "drill"
    ]


def test_a_new_apps_notification_event_shows_in_the_outbox(core, declare, commander, client):
    incident = declare()
    core.register_notification_event("drill_report", "Game-day drill report")
    with transaction.atomic():
        notifications.notify(
            incident, "drill_report", users=[commander], subject="Drill", message="Done"
        )
    client.force_login(commander)

    page = client.get(reverse("admin:incidents_notification_changelist"))
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("Game-day drill report") >= 2  # the row and the filter
    filtered = client.get(
        reverse("admin:incidents_notification_changelist"), {"event": "drill_report"}
    )
    assert list(filtered.context["cl"].result_list.values_list("event", flat=True)) == [
        "drill_report"
    ]


def test_an_unregistered_kind_or_event_is_refused(core, declare):
    incident = declare()
    before = written(incident)
    with pytest.raises(DomainError, match="Unknown timeline kind 'gossip'") as refused:
        services.timeline_record(
            incident,
            kind="gossip",
            summary="x",
            actor=None,
            source=Source.SYSTEM,
            occurred_at=timezone.now(),
        )
    assert refused.value.field == "kind"
    with pytest.raises(DomainError, match="Unknown notification event 'gossip'"):
        notifications.notify(incident, "gossip", message="x")
    assert written(incident) == before


def test_two_apps_cannot_give_one_word_two_meanings(core):
    core.register_timeline_kind("review", "Post-incident review")  # the same again: fine
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        core.register_timeline_kind("review", "Code review")
    with pytest.raises(ImproperlyConfigured, match="1 to 20 characters"):
        core.register_notification_event("x" * 21, "Too long for the column")


def test_existing_rows_keep_their_labels_on_the_incident_page(declare, commander_client):
    incident = declare()
    transition(incident, Status.RESOLVED)  # a SEV1: its review starts, on the timeline
    assert incident.timeline.filter(kind="review").exists()
    page = commander_client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Post-incident review" in body
    assert "Status change" in body


def test_the_schema_lists_every_registered_kind_with_its_label(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    enum = response.json()["components"]["schemas"]["TimelineKindEnum"]
    assert enum["enum"] == [value for value, _ in extensions.timeline_kind_choices()]
    assert "* `review` - Post-incident review" in enum["description"]
    assert "* `follow_up` - Follow-up work" in enum["description"]
