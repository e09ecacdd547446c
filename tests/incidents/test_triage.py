"""Triage candidates: raised by an alert, they page the first escalation level only;
a person accepts one (it is declared, the stakeholders are told) or declines it as a
false positive (cancelled, nobody told) — through the services, the admin and the API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from incidents import extensions, services
from incidents.errors import DomainError, StateConflict
from incidents.models import (
    ChannelKind,
    ChannelTarget,
    EscalationLevel,
    Incident,
    Notification,
    Source,
    StakeholderGroup,
    Status,
    TimelineEvent,
)
from incidents.queries import false_positive_count, false_positive_list
from tests.api import client_for, errors
from tests.conftest import make_user

# The core's own triage paging (the escalation ladder): with the on-call app, rotations
# page instead (tests/oncall/test_provider.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("core_only")]

Event = Notification.Event
Kind = TimelineEvent.Kind
CHANGELIST = reverse("admin:incidents_incident_changelist")


@pytest.fixture
def raise_candidate(declare):
    """Raise a triage candidate as an alert would: no person behind it."""

    def _raise(**overrides):
        return declare(**{"triage": True, "actor": None, "source": Source.SYSTEM, **overrides})

    return _raise


@pytest.fixture
def level1():
    return EscalationLevel.objects.get(level=1)


@pytest.fixture
def on_call(django_user_model, level1):
    """Oscar, on the first escalation level."""
    oscar = make_user(django_user_model, "oscar")
    level1.members.add(oscar)
    return oscar


@pytest.fixture
def executive(django_user_model):
    """Erin, in the matrix's executive team (told of SEV1 and SEV2 incidents)."""
    erin = make_user(django_user_model, "erin")
    StakeholderGroup.objects.get(slug="executive-team").members.add(erin)
    return erin


def reload(incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def timeline(incident, kind=None):
    events = TimelineEvent.objects.filter(incident=incident).order_by("id")
    return events if kind is None else events.filter(kind=kind)


def outbox(**filters) -> list[tuple[str, str]]:
    rows = Notification.objects.filter(**filters).order_by("address")
    return list(rows.values_list("event", "address"))


# --- accepting ------------------------------------------------------------------------


def test_accept_declares_the_candidate(raise_candidate, commander):
    candidate = raise_candidate()

    services.incident_accept(incident=candidate, actor=commander, source=Source.ADMIN)

    incident = reload(candidate)
    assert incident.status == Status.DECLARED
    assert incident.declared_at is not None
    assert incident.acknowledged_at is None  # declared, not yet worked on
    event = timeline(incident, Kind.STATUS_CHANGE).get()
    assert event.summary == "Accepted from triage (Triage → Declared)"
    assert event.author == commander
    assert event.details["accepted"] is True
    assert (event.details["from"], event.details["to"]) == ("triage", "declared")


def test_accept_keeps_the_reason_on_the_timeline(raise_candidate, commander):
    candidate = raise_candidate()

    services.incident_accept(
        incident=candidate, reason="Checkout really is down", actor=commander, source=Source.API
    )

    event = timeline(candidate, Kind.STATUS_CHANGE).get()
    assert event.summary == "Accepted from triage (Triage → Declared): Checkout really is down"
    assert event.source == Source.API


def test_accept_with_another_severity_re_rates_before_declaring(raise_candidate, commander, sev2):
    candidate = raise_candidate()  # SEV1

    services.incident_accept(
        incident=candidate, severity=sev2, actor=commander, source=Source.ADMIN
    )

    incident = reload(candidate)
    assert incident.severity == sev2
    assert incident.status == Status.DECLARED
    kinds = list(timeline(incident).values_list("kind", flat=True))
    assert kinds.index(Kind.SEVERITY_CHANGE) < kinds.index(Kind.STATUS_CHANGE)
    change = timeline(incident, Kind.SEVERITY_CHANGE).get()
    assert change.summary == f"Downgraded SEV1 → SEV2: {services.ACCEPT_SEVERITY_REASON}"


def test_accept_with_another_severity_gives_the_severity_change_the_reason(
    raise_candidate, commander, sev2
):
    candidate = raise_candidate()

    services.incident_accept(
        incident=candidate,
        severity=sev2,
        reason="Only the EU shop",
        actor=commander,
        source=Source.ADMIN,
    )

    assert timeline(candidate, Kind.SEVERITY_CHANGE).get().details["reason"] == "Only the EU shop"


def test_accept_with_the_same_severity_only_declares(raise_candidate, commander, sev1):
    candidate = raise_candidate(severity=sev1)

    services.incident_accept(
        incident=candidate, severity=sev1, actor=commander, source=Source.ADMIN
    )

    assert reload(candidate).status == Status.DECLARED
    assert not timeline(candidate, Kind.SEVERITY_CHANGE).exists()


@pytest.mark.parametrize("status", [Status.DECLARED, Status.CANCELLED])
def test_accept_refuses_what_is_not_in_triage_and_changes_nothing(
    declare, raise_candidate, commander, sev2, status
):
    incident = declare() if status == Status.DECLARED else raise_candidate()
    if status == Status.CANCELLED:
        services.incident_decline(incident=incident, reason="noise", source=Source.ADMIN)
    before = timeline(incident).count()

    with pytest.raises(StateConflict) as refused:
        services.incident_accept(
            incident=incident, severity=sev2, actor=commander, source=Source.ADMIN
        )

    assert refused.value.message == (
        f"{incident.reference} is {status.label.lower()}, not in triage; "
        "only a triage candidate can be accepted."
    )
    incident = reload(incident)
    assert (incident.status, incident.severity.key) == (status, "SEV1")
    assert timeline(incident).count() == before


def test_accept_is_one_change_a_refusal_keeps_the_old_severity(raise_candidate, commander, sev2):
    candidate = raise_candidate()

    def refuse_declaring(request):
        if request.to_status == Status.DECLARED:
            raise StateConflict("Not today.")

    with extensions.restored():
        extensions.transition_guard.register(refuse_declaring)
        with pytest.raises(StateConflict):
            services.incident_accept(
                incident=candidate, severity=sev2, actor=commander, source=Source.ADMIN
            )

    incident = reload(candidate)
    assert (incident.status, incident.severity.key) == (Status.TRIAGE, "SEV1")
    assert not timeline(incident, Kind.SEVERITY_CHANGE).exists()


# --- declining ------------------------------------------------------------------------


def test_decline_cancels_the_candidate_as_a_false_positive(raise_candidate, commander):
    candidate = raise_candidate()

    services.incident_decline(
        incident=candidate, reason="  Disk alert flapping  ", actor=commander, source=Source.ADMIN
    )

    incident = reload(candidate)
    assert incident.status == Status.CANCELLED
    assert incident.declared_at is None
    event = timeline(incident, Kind.STATUS_CHANGE).get()
    assert event.summary == "Declined as a false positive (Triage → Cancelled): Disk alert flapping"
    assert event.author == commander
    assert event.details["declined"] is True
    assert event.details["note"] == "Disk alert flapping"


@pytest.mark.parametrize("reason", ["", "   ", "\x00\x1b"])
def test_decline_needs_a_reason(raise_candidate, commander, reason):
    candidate = raise_candidate()

    with pytest.raises(DomainError) as refused:
        services.incident_decline(
            incident=candidate, reason=reason, actor=commander, source=Source.ADMIN
        )

    assert (refused.value.field, refused.value.message) == (
        "reason",
        "Say why it is a false positive.",
    )
    assert reload(candidate).status == Status.TRIAGE
    assert not timeline(candidate, Kind.STATUS_CHANGE).exists()


@pytest.mark.parametrize("status", [Status.DECLARED, Status.INVESTIGATING, Status.CANCELLED])
def test_decline_refuses_what_is_not_in_triage_and_changes_nothing(
    declare, raise_candidate, commander, status
):
    if status == Status.CANCELLED:
        incident = raise_candidate()
        services.incident_decline(incident=incident, reason="noise", source=Source.ADMIN)
    else:
        incident = declare()
        if status == Status.INVESTIGATING:
            services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    before = timeline(incident).count()

    with pytest.raises(StateConflict) as refused:
        services.incident_decline(
            incident=incident, reason="noise", actor=commander, source=Source.ADMIN
        )

    assert refused.value.message == (
        f"{incident.reference} is {status.label.lower()}, not in triage; "
        "only a triage candidate can be declined."
    )
    assert reload(incident).status == status
    assert timeline(incident).count() == before


def test_false_positives_are_the_candidates_cancelled_before_they_were_declared(
    declare, raise_candidate, commander
):
    declined = raise_candidate(title="Flapping disk")
    services.incident_decline(incident=declined, reason="flapping", source=Source.ADMIN)
    dismissed = raise_candidate(title="Duplicate")  # cancelled without the decline service
    services.incident_transition(
        incident=dismissed, to_status=Status.CANCELLED, source=Source.ADMIN
    )
    raise_candidate(title="Still waiting")
    accepted_then_cancelled = raise_candidate(title="Accepted, then called off")
    services.incident_accept(incident=accepted_then_cancelled, source=Source.ADMIN)
    services.incident_transition(
        incident=accepted_then_cancelled, to_status=Status.CANCELLED, source=Source.ADMIN
    )
    declared_then_cancelled = declare(title="Declared by hand, then called off")
    services.incident_transition(
        incident=declared_then_cancelled, to_status=Status.CANCELLED, source=Source.ADMIN
    )

    assert set(false_positive_list().values_list("title", flat=True)) == {
        "Flapping disk",
        "Duplicate",
    }
    assert false_positive_count() == 2
    assert false_positive_count(Incident.objects.filter(title="Flapping disk")) == 1


# --- paging when a candidate is raised ------------------------------------------------


def test_raising_a_candidate_pages_the_first_level_not_the_matrix(
    raise_candidate, django_user_model, level1, on_call, executive
):
    away = make_user(django_user_model, "away", is_active=False)
    no_email = make_user(django_user_model, "nomail")
    no_email.email = ""
    no_email.save()
    pager = ChannelTarget.objects.create(
        name="ops-pager", kind=ChannelKind.WEBHOOK, address="https://pager.example.com/hook"
    )
    muted = ChannelTarget.objects.create(
        name="old-pager",
        kind=ChannelKind.WEBHOOK,
        address="https://old.example.com/hook",
        enabled=False,
    )
    level1.members.add(away, no_email)
    level1.targets.add(pager, muted)
    level2 = make_user(django_user_model, "lead")
    EscalationLevel.objects.get(level=2).members.add(level2)

    candidate = raise_candidate(title="Error rate above 5%")

    assert outbox() == [
        (Event.TRIAGE, "https://pager.example.com/hook"),
        (Event.TRIAGE, "oscar@example.com"),
    ]
    page = Notification.objects.get(recipient=on_call)
    assert page.subject == f"Triage SEV1 {candidate.reference}: Error rate above 5%"
    assert "Accept it to declare the incident, or decline it as a false positive" in page.body
    assert candidate.get_absolute_url() in page.body
    event = timeline(candidate, Kind.ESCALATION).get()
    assert event.summary == "Paged L1 On-call engineers to triage it: oscar, ops-pager"
    assert event.details == {
        "level": 1,
        "users": ["oscar"],
        "targets": ["ops-pager"],
        "paged_nobody": False,
    }
    assert event.source == Source.SYSTEM


def test_a_candidate_whose_first_level_reaches_nobody_says_so(raise_candidate, level1):
    level1.targets.add(
        ChannelTarget.objects.create(
            name="off", kind=ChannelKind.EMAIL, address="off@example.com", enabled=False
        )
    )

    candidate = raise_candidate()

    assert outbox() == []
    event = timeline(candidate, Kind.ESCALATION).get()
    assert event.summary == (
        "Paged nobody to triage it: L1 On-call engineers has no members with an email "
        "address and no enabled channels"
    )
    assert event.details["paged_nobody"] is True
    assert event.details["level"] == 1


def test_a_candidate_with_no_first_level_says_so(raise_candidate, level1):
    level1.delete()

    candidate = raise_candidate()

    assert outbox() == []
    event = timeline(candidate, Kind.ESCALATION).get()
    assert event.summary == "Paged nobody to triage it: there is no escalation level 1"
    assert event.details == {"level": None, "users": [], "targets": [], "paged_nobody": True}


def test_when_nobody_is_paged_whoever_leads_the_candidate_is_told(declare, commander):
    candidate = declare(triage=True)  # raised by the commander, by hand

    assert outbox() == [(Event.TRIAGE, "alice@example.com")]
    told = Notification.objects.get()
    assert told.subject.startswith(f"Nobody paged for triage: {candidate.reference}")
    assert "Give escalation level 1 members or channels" in told.body
    assert timeline(candidate, Kind.ESCALATION).get().details["told"] == "alice"


def test_paging_a_candidate_costs_the_same_queries_for_any_number_of_people(
    raise_candidate, django_user_model, level1
):
    def queries_to_raise() -> int:
        with CaptureQueriesContext(connection) as captured:
            raise_candidate()
        return len(captured)

    level1.members.add(make_user(django_user_model, "first"))
    one = queries_to_raise()
    for number in range(5):
        level1.members.add(make_user(django_user_model, f"more{number}"))
    level1.targets.add(
        ChannelTarget.objects.create(name="t", kind=ChannelKind.EMAIL, address="t@example.com")
    )
    assert queries_to_raise() == one
    assert Notification.objects.filter(event=Event.TRIAGE).count() == 1 + 7


def test_accepting_tells_the_matrix_at_the_accepted_severity(
    raise_candidate, on_call, executive, commander, sev2
):
    candidate = raise_candidate()
    Notification.objects.all().delete()  # the triage page

    services.incident_accept(
        incident=candidate, severity=sev2, actor=commander, source=Source.ADMIN
    )

    declared = Notification.objects.filter(event=Event.DECLARED)
    assert "erin@example.com" in set(declared.values_list("address", flat=True))
    assert "oscar@example.com" not in set(declared.values_list("address", flat=True))
    assert {row.payload["incident"]["severity"] for row in declared} == {"SEV2"}
    assert {row.payload["incident"]["status"] for row in declared} == {"declared"}
    # The candidate was re-rated before anyone heard of it: no separate notice for that.
    assert not Notification.objects.exclude(event=Event.DECLARED).exists()


def test_declining_tells_nobody(raise_candidate, on_call, executive, commander):
    candidate = raise_candidate()
    before = Notification.objects.count()

    services.incident_decline(
        incident=candidate, reason="Synthetic check misfired", actor=commander, source=Source.ADMIN
    )

    assert Notification.objects.count() == before


# --- admin ----------------------------------------------------------------------------


def run_action(client, action, incidents, **extra):
    data = {"action": action, "_selected_action": [incident.pk for incident in incidents], **extra}
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_admin_accept_action_declares_candidates_and_explains_refusals(
    commander_client, raise_candidate, declare
):
    candidate = raise_candidate()
    already = declare(title="Already declared")

    response = run_action(commander_client, "accept_triage", [candidate, already])

    assert response.status_code == 200
    assert reload(candidate).status == Status.DECLARED
    assert reload(already).status == Status.DECLARED
    assert messages_of(response) == [
        "Accepted from triage: 1 incident(s).",
        f"{already.reference} is declared, not in triage; only a triage candidate can be accepted.",
    ]


def test_admin_accept_action_takes_the_severity_and_note_beside_the_menu(
    commander_client, raise_candidate, sev2
):
    candidate = raise_candidate()

    run_action(commander_client, "accept_triage", [candidate], new_severity=sev2.pk, note="EU only")

    incident = reload(candidate)
    assert (incident.status, incident.severity) == (Status.DECLARED, sev2)
    assert timeline(incident, Kind.SEVERITY_CHANGE).get().details["reason"] == "EU only"
    assert timeline(incident, Kind.STATUS_CHANGE).get().author.username == "alice"


def test_admin_decline_action_asks_for_the_reason_first(commander_client, raise_candidate):
    candidate = raise_candidate(title="Disk 91% full")

    response = run_action(
        commander_client, "decline_false_positive", [candidate], note="Disk was resized"
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Why is it a false positive?" in body
    assert candidate.reference in body and "Disk 91% full" in body
    assert "Disk was resized" in body  # what the note box held
    assert reload(candidate).status == Status.TRIAGE


def test_admin_decline_action_declines_with_the_reason(commander_client, raise_candidate):
    first, second = raise_candidate(title="One"), raise_candidate(title="Two")

    response = run_action(
        commander_client,
        "decline_false_positive",
        [first, second],
        decline_confirmed="yes",
        reason="Alert threshold too low",
    )

    assert messages_of(response) == ["Declined as false positive: 2 incident(s)."]
    for candidate in (first, second):
        assert reload(candidate).status == Status.CANCELLED
        event = timeline(candidate, Kind.STATUS_CHANGE).get()
        assert event.summary.endswith(": Alert threshold too low")
        assert event.source == Source.ADMIN
    assert false_positive_count() == 2


def test_admin_decline_without_a_reason_asks_again_and_changes_nothing(
    commander_client, raise_candidate
):
    candidate = raise_candidate()

    response = run_action(
        commander_client, "decline_false_positive", [candidate], decline_confirmed="yes", reason=" "
    )

    assert response.status_code == 200
    assert "Say why it is a false positive." in response.content.decode()
    assert reload(candidate).status == Status.TRIAGE


def test_admin_decline_refused_for_all_keeps_what_was_typed(commander_client, declare):
    declared = declare()

    response = run_action(
        commander_client,
        "decline_false_positive",
        [declared],
        decline_confirmed="yes",
        reason="Typed with care",
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Typed with care" in body
    assert f"{declared.reference} is declared, not in triage" in body
    assert reload(declared).status == Status.DECLARED


def test_admin_filter_lists_the_false_positives(commander_client, raise_candidate):
    declined = raise_candidate(title="Flapping")
    services.incident_decline(incident=declined, reason="flapping", source=Source.ADMIN)
    waiting = raise_candidate(title="Waiting")

    body = commander_client.get(CHANGELIST, {"triage": "declined"}).content.decode()

    assert declined.reference in body
    assert waiting.reference not in body


def test_admin_triage_actions_need_change_permission(client, django_user_model, raise_candidate):
    candidate = raise_candidate()
    client.force_login(make_user(django_user_model, "sam", "Stakeholders", is_staff=True))

    run_action(client, "accept_triage", [candidate])
    run_action(client, "decline_false_positive", [candidate], decline_confirmed="yes", reason="x")

    assert reload(candidate).status == Status.TRIAGE


# --- API ------------------------------------------------------------------------------


def url(incident, action: str) -> str:
    return f"/api/v1/incidents/{incident.reference}/{action}/"


@pytest.fixture
def api(commander):
    return client_for(commander)


def test_api_accept_declares_and_returns_the_incident(api, raise_candidate):
    candidate = raise_candidate()

    response = api.post(url(candidate, "accept"), format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["reference"], body["status"], body["severity"]) == (
        candidate.reference,
        "declared",
        "SEV1",
    )
    assert body["declared_at"] is not None
    event = timeline(candidate, Kind.STATUS_CHANGE).get()
    assert (event.source, event.author.username) == (Source.API, "alice")


def test_api_accept_with_severity_and_reason(api, raise_candidate):
    candidate = raise_candidate()

    response = api.post(
        url(candidate, "accept"), {"severity": "high", "reason": "EU only"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["severity"]) == ("declared", "SEV2")
    assert timeline(candidate, Kind.SEVERITY_CHANGE).get().details["reason"] == "EU only"


def test_api_accept_with_an_unknown_severity_is_400(api, raise_candidate):
    candidate = raise_candidate()

    response = api.post(url(candidate, "accept"), {"severity": "SEV9"}, format="json")

    assert response.status_code == 400
    assert errors(response) == [("severity", "unknown")]
    assert reload(candidate).status == Status.TRIAGE


def test_api_accept_what_is_not_in_triage_is_409(api, declare):
    incident = declare()

    response = api.post(url(incident, "accept"), format="json")

    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "not in triage" in response.json()["errors"][0]["detail"]


def test_api_decline_cancels_and_returns_the_incident(api, raise_candidate):
    candidate = raise_candidate()

    response = api.post(url(candidate, "decline"), {"reason": "Test alert"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["declared_at"] is None
    assert timeline(candidate, Kind.STATUS_CHANGE).get().details["declined"] is True


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}, {"reason": "\x01"}])
def test_api_decline_without_a_reason_is_400(api, raise_candidate, body):
    candidate = raise_candidate()

    response = api.post(url(candidate, "decline"), body, format="json")

    assert response.status_code == 400
    assert [attr for attr, _ in errors(response)] == ["reason"]
    assert reload(candidate).status == Status.TRIAGE


def test_api_decline_what_is_not_in_triage_is_409(api, declare):
    incident = declare()

    response = api.post(url(incident, "decline"), {"reason": "noise"}, format="json")

    assert response.status_code == 409
    assert reload(incident).status == Status.DECLARED


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_api_triage_actions_need_a_key(raise_candidate, action):
    candidate = raise_candidate()

    response = APIClient().post(url(candidate, action), {"reason": "x"}, format="json")

    assert response.status_code == 401
    assert reload(candidate).status == Status.TRIAGE


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_api_triage_actions_need_change_permission(django_user_model, raise_candidate, action):
    candidate = raise_candidate()
    stakeholder = make_user(django_user_model, "sam", "Stakeholders")

    response = client_for(stakeholder).post(url(candidate, action), {"reason": "x"}, format="json")

    assert response.status_code == 403
    assert reload(candidate).status == Status.TRIAGE


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_api_confidential_candidate_is_404_for_an_outsider(
    outsider, responder, raise_candidate, security_type, action
):
    candidate = raise_candidate(incident_type=security_type, actor=responder)
    assert candidate.confidential

    response = client_for(outsider).post(url(candidate, action), {"reason": "x"}, format="json")

    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]
    assert reload(candidate).status == Status.TRIAGE


def test_api_confidential_candidate_is_accepted_by_the_security_group(
    security_member, responder, raise_candidate, security_type
):
    candidate = raise_candidate(incident_type=security_type, actor=responder)

    response = client_for(security_member).post(url(candidate, "accept"), format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "declared"


def test_schema_documents_the_triage_actions(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    for action in ("accept", "decline"):
        operation = schema["paths"][f"/api/v1/incidents/{{reference}}/{action}/"]["post"]
        assert {"200", "400", "404", "409"} <= set(operation["responses"]), action
