"""The REST API as an integration uses it: endpoints, auth, permissions, errors."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.serializers import ModelSerializer
from rest_framework.test import APIClient

from incidents import services
from incidents.api.pagination import BoundedCountPaginator, SearchCountPaginator
from incidents.api.serializers import IncidentSerializer
from incidents.api.throttling import APIKeyRateThrottle
from incidents.models import (
    APIKey,
    IdempotencyRecord,
    Incident,
    Role,
    RoleAssignment,
    Service,
    Source,
    Status,
    TimelineEvent,
)
from incidents.queries import with_commander
from postmortems import vocabulary as postmortem_vocabulary
from tests.api import client_for, errors
from tests.conftest import make_user

INCIDENTS = "/api/v1/incidents/"


def detail(incident, action=""):
    return f"{INCIDENTS}{incident.reference}/{action + '/' if action else ''}"


def error_attrs(response) -> set:
    """Return the fields an error response names."""
    return {attr for attr, _ in errors(response)}


def only_detail(response) -> str:
    [error] = response.json()["errors"]
    return error["detail"]


def references(response) -> list[str]:
    return [row["reference"] for row in response.json()["results"]]


@pytest.fixture
def api(commander):
    """The commander's integration, e.g. a monitoring system."""
    return client_for(commander)


@pytest.fixture
def stakeholder(db, django_user_model):
    return make_user(django_user_model, "sam", "Stakeholders")


DECLARE = {"title": "Checkout returns 502", "severity": "SEV1", "type": "outage"}


# --- listing --------------------------------------------------------------------------


def test_list_is_paginated_with_count_next_and_results(api, declare):
    for number in range(3):
        declare(title=f"Incident {number}")
    first = api.get(INCIDENTS, {"page_size": 2})
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None
    second = api.get(body["next"])
    assert len(second.json()["results"]) == 1
    assert second.json()["next"] is None


@pytest.mark.parametrize("search", [None, "Incident"])
def test_count_stops_at_its_limit_and_pages_go_on_to_the_end(api, declare, monkeypatch, search):
    monkeypatch.setattr(BoundedCountPaginator, "limit", 3)
    monkeypatch.setattr(SearchCountPaginator, "limit", 3)
    declared = [declare(title=f"Incident {number}").reference for number in range(7)]
    query = {"page_size": 2, **({"search": search} if search else {})}

    seen, url, pages = [], INCIDENTS, []
    while url:
        body = api.get(url, query if url == INCIDENTS else None).json()
        pages.append((body["count"], body["count_exact"]))
        seen += [row["reference"] for row in body["results"]]
        url = body["next"]

    assert pages == [(3, False)] * 4  # "at least 3": the count stops, the pages do not
    assert seen == declared[::-1]  # every incident once, newest first
    past_the_end = api.get(INCIDENTS, {**query, "page": 5})
    assert past_the_end.status_code == 404


def test_last_page_while_the_count_is_exact_and_a_clear_404_past_it(api, declare, monkeypatch):
    references = [declare(title=f"Incident {number}").reference for number in range(5)]
    last = api.get(INCIDENTS, {"page_size": 2, "page": "last"})
    assert [row["reference"] for row in last.json()["results"]] == [references[0]]

    monkeypatch.setattr(BoundedCountPaginator, "limit", 3)
    refused = api.get(INCIDENTS, {"page_size": 2, "page": "last"})
    assert refused.status_code == 404
    assert "follow `next`" in only_detail(refused)


def test_count_is_exact_below_its_limit(api, declare):
    for number in range(3):
        declare(title=f"Incident {number}")
    body = api.get(INCIDENTS, {"search": "Incident"}).json()
    assert (body["count"], body["count_exact"]) == (3, True)


def test_list_shows_incident_fields(api, declare, api_service, responder):
    incident = declare(title="Checkout returns 502", services=[api_service], commander=responder)
    [row] = api.get(INCIDENTS).json()["results"]
    assert row["reference"] == incident.reference
    assert row["url"].endswith(detail(incident))
    assert row["severity"] == "SEV1"
    assert row["type"] == "outage"
    assert row["services"] == ["api"]
    assert row["commander"] == "bob"
    assert row["declared_by"] == "alice"
    assert row["status"] == "declared"


def test_list_filters_by_status_repeatedly(api, declare):
    declared = declare(title="Declared")
    investigating = declare(title="Investigating")
    services.incident_acknowledge(incident=investigating, source=Source.ADMIN)
    resolved = declare(title="Resolved")
    services.incident_transition(incident=resolved, to_status=Status.RESOLVED, source=Source.ADMIN)
    response = api.get(INCIDENTS, {"status": ["declared", "investigating"]})
    assert sorted(references(response)) == sorted([declared.reference, investigating.reference])


@pytest.mark.parametrize("name", ["SEV2", "high", "High"])
def test_list_filters_by_severity_key_or_alias(api, declare, sev2, name):
    declare(title="Critical")
    high = declare(title="High", severity=sev2)
    assert references(api.get(INCIDENTS, {"severity": name})) == [high.reference]


def test_list_rejects_unknown_severity_naming_the_field(api, declare):
    declare()
    response = api.get(INCIDENTS, {"severity": "catastrophic"})
    assert response.status_code == 400
    assert error_attrs(response) == {"severity"}
    assert "SEV1" in only_detail(response)


def test_list_filters_by_type(api, declare, security_type):
    declare(title="Outage")
    breach = declare(title="Breach", incident_type=security_type)
    assert references(api.get(INCIDENTS, {"type": "security"})) == [breach.reference]


def test_list_filters_by_environment(api, declare):
    declare(title="Production")
    staging = declare(title="Staging", environment="staging")
    assert references(api.get(INCIDENTS, {"environment": "staging"})) == [staging.reference]


def test_list_filters_by_service(api, declare, api_service):
    declare(title="Elsewhere")
    on_api = declare(title="On the API", services=[api_service])
    assert references(api.get(INCIDENTS, {"service": "api"})) == [on_api.reference]


@pytest.mark.parametrize("value, wanted", [("true", "open"), ("false", "closed")])
def test_list_filters_open_and_closed(api, declare, value, wanted):
    incidents = {"open": declare(title="Open"), "closed": declare(title="Closed")}
    services.incident_transition(
        incident=incidents["closed"], to_status=Status.RESOLVED, source=Source.ADMIN
    )
    assert references(api.get(INCIDENTS, {"open": value})) == [incidents[wanted].reference]


def test_list_filters_by_declared_window(api, declare):
    now = timezone.now().replace(microsecond=0)
    old, middle, new = (
        declare(title=title, declared_at=now - timedelta(days=days))
        for title, days in (("Old", 3), ("Middle", 2), ("New", 1))
    )
    boundary = (now - timedelta(days=2)).isoformat()
    after = api.get(INCIDENTS, {"declared_after": boundary})
    assert sorted(references(after)) == sorted([middle.reference, new.reference])
    assert references(api.get(INCIDENTS, {"declared_before": boundary})) == [old.reference]


def test_list_searches_title_and_summary(api, declare):
    declare(title="Checkout returns 502")
    by_summary = declare(title="Queue backlog", summary="Payments stuck in the queue")
    assert references(api.get(INCIDENTS, {"search": "payments"})) == [by_summary.reference]


def test_list_searches_by_reference(api, declare):
    wanted, _ = declare(title="Alpha"), declare(title="Beta")
    assert references(api.get(INCIDENTS, {"search": wanted.reference})) == [wanted.reference]


def test_list_orders_by_the_requested_field(api, declare):
    made = [declare(title=f"Incident {number}").reference for number in range(3)]
    assert references(api.get(INCIDENTS, {"ordering": "reference"})) == made
    assert references(api.get(INCIDENTS, {"ordering": "-reference"})) == made[::-1]


# --- declaring ------------------------------------------------------------------------


def test_create_declares_incident_with_reference_and_location(api, sev1, outage):
    response = api.post(INCIDENTS, DECLARE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert re.fullmatch(rf"INC-{timezone.now().year}-\d{{4}}", body["reference"])
    assert body["status"] == "declared"
    assert body["title"] == "Checkout returns 502"
    assert response["Location"].endswith(f"{INCIDENTS}{body['reference']}/")
    assert Incident.objects.get().reference == body["reference"]


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_create_writes_api_timeline_event_and_history_with_keys_user(api, commander, sev1, outage):
    reference = api.post(INCIDENTS, DECLARE, format="json").json()["reference"]
    incident = Incident.objects.get(reference=reference)
    event = incident.timeline.get()
    assert (event.kind, event.source, event.author) == (
        TimelineEvent.Kind.DECLARED,
        "api",
        commander,
    )
    assert incident.history.earliest().history_user == commander
    assert incident.declared_by == commander


def test_create_keeps_every_given_field(api, responder, sev1, outage, api_service):
    started = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    detected = started + timedelta(minutes=30)
    body = {
        "title": "Slow checkout",
        "severity": "high",
        "type": "outage",
        "environment": "staging",
        "summary": "p99 at 4s",
        "services": ["api"],
        "customer_impact": "Some carts time out",
        "estimated_users_affected": 120,
        "detection_source": "customer_report",
        "started_at": started.isoformat(),
        "detected_at": detected.isoformat(),
        "confidential": True,
        "commander": "bob",
    }
    response = api.post(INCIDENTS, body, format="json")
    assert response.status_code == 201, response.content
    incident = Incident.objects.get()
    assert incident.severity.key == "SEV2"
    assert (incident.environment, incident.summary) == ("staging", "p99 at 4s")
    assert list(incident.services.all()) == [api_service]
    assert incident.estimated_users_affected == 120
    assert incident.detection_source == "customer_report"
    assert (incident.started_at, incident.detected_at) == (started, detected)
    assert incident.confidential is True
    assert incident.roles.get(role=Role.COMMANDER).user == responder
    assert response.json()["commander"] == "bob"


# --- one incident ---------------------------------------------------------------------


def test_detail_is_addressed_by_reference(api, declare):
    incident = declare(title="Checkout returns 502")
    response = api.get(detail(incident))
    assert response.status_code == 200
    assert response.json()["reference"] == incident.reference
    assert response.json()["title"] == "Checkout returns 502"


def test_detail_of_unknown_reference_is_404_in_error_shape(api, declare):
    response = api.get(f"{INCIDENTS}INC-1999-0001/")
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/incidents/not-a-reference/",
        "/api/v1/incidents/INC-26-1/timeline/",
        "/api/v1/services/api./",
        "/api/v1/no-such-endpoint/",
    ],
)
def test_unroutable_api_path_is_404_in_error_shape(api, url):
    response = api.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert errors(response) == [(None, "not_found")]


def test_patch_edits_title_with_history_and_timeline(api, commander, declare):
    incident = declare(title="Old title")
    response = api.patch(detail(incident), {"title": "New title"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "New title"
    newest, previous = incident.history.all()[:2]
    changes = {c.field: (c.old, c.new) for c in newest.diff_against(previous).changes}
    assert changes["title"] == ("Old title", "New title")
    assert newest.history_user == commander
    event = incident.timeline.get(kind=TimelineEvent.Kind.DETAILS_CHANGE)
    assert (event.source, event.author, event.details) == ("api", commander, {"fields": ["title"]})


def test_patch_edits_summary_impact_and_services(api, declare, api_service):
    incident = declare()
    web = Service.objects.create(name="Web", slug="web")
    incident.services.set([web])
    body = {
        "summary": "Root cause unknown",
        "customer_impact": "Checkout down",
        "estimated_users_affected": 5000,
        "services": ["api"],
    }
    response = api.patch(detail(incident), body, format="json")
    assert response.status_code == 200, response.content
    incident.refresh_from_db()
    assert (incident.summary, incident.customer_impact) == ("Root cause unknown", "Checkout down")
    assert incident.estimated_users_affected == 5000
    assert list(incident.services.all()) == [api_service]
    event = incident.timeline.get(kind=TimelineEvent.Kind.DETAILS_CHANGE)
    assert event.details["services"] == {"from": ["web"], "to": ["api"]}


def test_patch_ignores_fields_that_change_through_actions(api, declare):
    incident = declare()
    response = api.patch(detail(incident), {"status": "closed", "reference": "X"}, format="json")
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED
    assert response.json()["reference"] == incident.reference


# --- lifecycle actions ----------------------------------------------------------------


def test_acknowledge_starts_investigation(api, commander, declare):
    incident = declare()
    response = api.post(detail(incident, "acknowledge"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "investigating"
    assert response.json()["acknowledged_at"] is not None
    event = incident.timeline.get(kind=TimelineEvent.Kind.STATUS_CHANGE)
    assert (event.source, event.author) == ("api", commander)


def test_resolving_through_the_api_records_every_step_it_causes_as_api(api, declare):
    """The resolve and the review it starts (a SEV1 requires one) both came from the API."""
    incident = declare()
    assert incident.severity.postmortem_required

    response = api.post(detail(incident, "transition"), {"status": "resolved"}, format="json")

    assert response.status_code == 200, response.content
    written = incident.timeline.filter(
        kind__in=[TimelineEvent.Kind.STATUS_CHANGE, postmortem_vocabulary.Kind.REVIEW]
    )
    assert sorted(event.kind for event in written) == ["review", "status_change"]
    assert [event.source for event in written] == [Source.API, Source.API]
    assert [event.history.get().source for event in written] == [Source.API, Source.API]


def test_acknowledging_twice_is_a_conflict(api, declare):
    incident = declare()
    api.post(detail(incident, "acknowledge"))
    response = api.post(detail(incident, "acknowledge"))
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "already acknowledged" in only_detail(response)


def test_transition_moves_status_with_note(api, declare):
    incident = declare()
    response = api.post(
        detail(incident, "transition"),
        {"status": "identified", "note": "Bad config push"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "identified"
    event = incident.timeline.get(kind=TimelineEvent.Kind.STATUS_CHANGE)
    assert event.summary == "Status Declared → Identified: Bad config push"
    assert event.source == "api"


def test_illegal_transition_is_409_naming_allowed_targets(api, declare):
    incident = declare()
    response = api.post(detail(incident, "transition"), {"status": "closed"}, format="json")
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "allowed from declared: investigating" in only_detail(response)
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


def test_transition_to_unknown_status_is_400(api, declare):
    response = api.post(detail(declare(), "transition"), {"status": "exploded"}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("status", "invalid_choice")]


def test_severity_change_with_reason(api, declare, sev2):
    incident = declare()
    response = api.post(
        detail(incident, "severity"), {"severity": "high", "reason": "Only EU"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["severity"] == "SEV2"
    event = incident.timeline.get(kind=TimelineEvent.Kind.SEVERITY_CHANGE)
    assert event.details == {"from": "SEV1", "to": "SEV2", "reason": "Only EU"}
    assert event.source == "api"


@pytest.mark.parametrize("body", [{"severity": "SEV2"}, {"severity": "SEV2", "reason": "  "}])
def test_severity_change_without_reason_is_400_naming_reason(api, declare, sev2, body):
    incident = declare()
    response = api.post(detail(incident, "severity"), body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"reason"}
    incident.refresh_from_db()
    assert incident.severity.key == "SEV1"


def test_assigning_commander_hands_over_from_previous_holder(api, commander, declare, responder):
    incident = declare(commander=commander)
    response = api.post(
        detail(incident, "roles"), {"role": "commander", "user": "bob"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "id": incident.roles.get(user__username="bob").pk,
        "role": "commander",
        "user": "bob",
        "assigned_at": response.json()["assigned_at"],
        "relieved_at": None,
        "assigned_by": "alice",
    }
    old, new = api.get(detail(incident, "roles")).json()
    assert (old["user"], new["user"]) == ("alice", "bob")
    assert old["relieved_at"] == new["assigned_at"]
    assert new["relieved_at"] is None
    assert api.get(detail(incident)).json()["commander"] == "bob"
    event = incident.timeline.filter(kind=TimelineEvent.Kind.ROLE_CHANGE).last()
    assert (event.source, event.details["relieved"]) == ("api", ["alice"])


# --- timeline -------------------------------------------------------------------------


def add_notes(incident, count, start):
    for number in range(count):
        services.timeline_add_entry(
            incident=incident,
            kind=TimelineEvent.Kind.NOTE,
            summary=f"Note {number}",
            occurred_at=start + timedelta(minutes=number),
            source=Source.ADMIN,
        )


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_timeline_is_cursor_paginated_oldest_first(api, declare):
    now = timezone.now()
    incident = declare(declared_at=now - timedelta(hours=2))
    add_notes(incident, 4, now - timedelta(hours=1))
    page = api.get(detail(incident, "timeline"), {"page_size": 2}).json()
    seen = []
    while True:
        assert set(page) == {"next", "previous", "results"}
        seen += [event["summary"] for event in page["results"]]
        if page["next"] is None:
            break
        page = api.get(page["next"]).json()
    assert seen == [incident.timeline.first().summary, "Note 0", "Note 1", "Note 2", "Note 3"]


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_timeline_after_filter_keeps_later_events(api, declare):
    now = timezone.now().replace(microsecond=0)
    incident = declare(declared_at=now - timedelta(hours=2))
    add_notes(incident, 3, now - timedelta(minutes=30))
    cut = (now - timedelta(minutes=29)).isoformat()
    response = api.get(detail(incident, "timeline"), {"after": cut})
    assert [event["summary"] for event in response.json()["results"]] == ["Note 2"]


def test_timeline_rejects_bad_after_naming_it(api, declare):
    response = api.get(detail(declare(), "timeline"), {"after": "yesterday-ish"})
    assert response.status_code == 400
    assert errors(response) == [("after", "invalid")]


def test_timeline_post_adds_decision_keeping_occurred_at(api, commander, declare):
    incident = declare(declared_at=timezone.now() - timedelta(hours=1))
    when = (timezone.now() - timedelta(minutes=20)).replace(microsecond=0)
    response = api.post(
        detail(incident, "timeline"),
        {"kind": "decision", "summary": "Roll back", "occurred_at": when.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["summary"], body["source"]) == ("decision", "Roll back", "api")
    assert body["author"] == "alice"
    event = incident.timeline.get(kind=TimelineEvent.Kind.DECISION)
    assert (event.occurred_at, event.author) == (when, commander)


def test_timeline_post_defaults_to_a_note_now(api, declare):
    incident = declare()
    response = api.post(detail(incident, "timeline"), {"summary": "Looking"}, format="json")
    assert response.status_code == 201
    assert response.json()["kind"] == "note"
    event = incident.timeline.get(kind=TimelineEvent.Kind.NOTE)
    assert timezone.now() - event.occurred_at < timedelta(minutes=1)


def test_timeline_post_in_the_future_is_400(api, declare):
    incident = declare()
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    response = api.post(
        detail(incident, "timeline"), {"summary": "Later", "occurred_at": future}, format="json"
    )
    assert response.status_code == 400
    assert error_attrs(response) == {"occurred_at"}
    assert not incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).exists()


def test_timeline_post_refuses_kinds_written_by_services(api, declare):
    incident = declare()
    response = api.post(
        detail(incident, "timeline"), {"kind": "status_change", "summary": "x"}, format="json"
    )
    assert response.status_code == 400
    assert errors(response) == [("kind", "invalid_choice")]


# --- catalogue ------------------------------------------------------------------------


def test_services_are_listed(api, api_service):
    response = api.get("/api/v1/services/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row == {
        "slug": "api",
        "name": "Public API",
        "description": "",
        "owning_team": "Platform",
        "tier": 1,
    }


def test_severities_are_listed_with_aliases(api, sev1):
    response = api.get("/api/v1/severities/")
    assert response.status_code == 200
    rows = response.json()
    assert [row["key"] for row in rows] == ["SEV1", "SEV2", "SEV3", "SEV4"]
    assert [row["aliases"] for row in rows] == [["critical"], ["high"], ["medium"], ["low"]]


def test_incident_types_are_listed(api, outage):
    response = api.get("/api/v1/incident-types/")
    assert response.status_code == 200
    slugs = {row["slug"]: row["confidential_by_default"] for row in response.json()}
    assert slugs["outage"] is False
    assert slugs["security"] is True


# --- authentication -------------------------------------------------------------------


def test_request_without_key_is_401_with_www_authenticate(declare):
    declare()
    response = APIClient().get(INCIDENTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert errors(response) == [(None, "not_authenticated")]


def test_unknown_key_is_401(declare):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sitrep_00000000_not-a-real-key")
    response = client.get(INCIDENTS)
    assert response.status_code == 401
    assert errors(response) == [(None, "authentication_failed")]


@pytest.mark.parametrize("header", ["Bearer", "Bearer two words"])
def test_malformed_bearer_header_is_401(commander, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(INCIDENTS).status_code == 401


def test_revoked_key_is_401(commander):
    key, plaintext = services.api_key_create(user=commander, name="old")
    services.api_key_revoke(key=key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = client.get(INCIDENTS)
    assert response.status_code == 401
    assert "revoked" in only_detail(response)


def test_expired_key_is_401(commander):
    _, plaintext = services.api_key_create(user=commander, name="short", expires_in_days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get(INCIDENTS).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = client.get(INCIDENTS)
    assert response.status_code == 401
    assert "expired" in only_detail(response)


def test_key_of_inactive_user_is_401(commander):
    client = client_for(commander)
    commander.is_active = False
    commander.save()
    response = client.get(INCIDENTS)
    assert response.status_code == 401
    assert "inactive" in only_detail(response)


def test_using_a_key_records_last_used_at(commander):
    client = client_for(commander)
    key = APIKey.objects.get(user=commander)
    assert key.last_used_at is None
    client.get(INCIDENTS)
    key.refresh_from_db()
    assert timezone.now() - key.last_used_at < timedelta(minutes=1)


def test_session_user_can_read(commander, declare):
    incident = declare()
    client = APIClient()
    client.force_login(commander)
    assert references(client.get(INCIDENTS)) == [incident.reference]


def test_session_post_without_csrf_token_is_refused(commander, sev1, outage):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(commander)
    response = client.post(INCIDENTS, DECLARE, format="json")
    assert response.status_code == 403
    assert "CSRF" in only_detail(response)
    assert not Incident.objects.exists()


def test_session_post_with_csrf_token_is_accepted(commander, sev1, outage):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(commander)
    client.cookies["csrftoken"] = "a" * 32
    response = client.post(INCIDENTS, DECLARE, format="json", HTTP_X_CSRFTOKEN="a" * 32)
    assert response.status_code == 201, response.content


# --- permissions ----------------------------------------------------------------------


def test_stakeholder_may_read(stakeholder, declare):
    incident = declare()
    client = client_for(stakeholder)
    assert references(client.get(INCIDENTS)) == [incident.reference]
    assert client.get(detail(incident)).status_code == 200
    assert client.get(detail(incident, "timeline")).status_code == 200


def test_stakeholder_may_not_declare(stakeholder, sev1, outage):
    response = client_for(stakeholder).post(INCIDENTS, DECLARE, format="json")
    assert response.status_code == 403
    assert errors(response) == [(None, "permission_denied")]
    assert not Incident.objects.exists()


def test_stakeholder_may_not_acknowledge(stakeholder, declare):
    incident = declare()
    response = client_for(stakeholder).post(detail(incident, "acknowledge"))
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


def test_stakeholder_may_not_edit(stakeholder, declare):
    incident = declare(title="Old title")
    response = client_for(stakeholder).patch(detail(incident), {"title": "New"}, format="json")
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Old title"


def test_stakeholder_may_not_add_to_timeline(stakeholder, declare):
    incident = declare()
    client = client_for(stakeholder)
    response = client.post(detail(incident, "timeline"), {"summary": "Hi"}, format="json")
    assert response.status_code == 403
    assert not incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).exists()


def test_user_without_groups_may_not_read(db, django_user_model, declare):
    declare()
    nobody = make_user(django_user_model, "nobody")
    response = client_for(nobody).get(INCIDENTS)
    assert response.status_code == 403


def test_put_is_not_allowed(api, declare):
    incident = declare()
    response = api.put(detail(incident), {"title": "Replaced"}, format="json")
    assert response.status_code == 405
    assert errors(response) == [(None, "method_not_allowed")]


@pytest.mark.parametrize("url", [INCIDENTS, "/api/v1/services/"])
def test_unsupported_delete_is_405(api, url):
    response = api.delete(url)
    assert response.status_code == 405
    assert errors(response) == [(None, "method_not_allowed")]


# --- confidential incidents -----------------------------------------------------------


@pytest.fixture
def secret(declare, security_type):
    incident = declare(title="Token leaked", incident_type=security_type)
    assert incident.confidential
    return incident


@pytest.mark.parametrize("action", ["", "timeline", "roles"])
def test_confidential_incident_is_404_for_outsider_reads(outsider, secret, action):
    response = client_for(outsider).get(detail(secret, action))
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


@pytest.mark.parametrize(
    "action, body",
    [
        ("acknowledge", None),
        ("transition", {"status": "resolved"}),
        ("severity", {"severity": "SEV2", "reason": "x"}),
        ("roles", {"role": "scribe", "user": "mallory"}),
        ("timeline", {"summary": "peek"}),
    ],
)
def test_confidential_incident_is_404_for_outsider_actions(outsider, secret, sev2, action, body):
    before = secret.timeline.count()
    response = client_for(outsider).post(detail(secret, action), body, format="json")
    assert response.status_code == 404
    assert secret.timeline.count() == before


def test_confidential_incident_is_404_for_outsider_edit(outsider, secret):
    response = client_for(outsider).patch(detail(secret), {"title": "Mine"}, format="json")
    assert response.status_code == 404
    secret.refresh_from_db()
    assert secret.title == "Token leaked"


def test_confidential_incident_is_absent_from_outsiders_list_and_search(outsider, secret, declare):
    public = declare(title="Token service slow")
    client = client_for(outsider)
    assert references(client.get(INCIDENTS)) == [public.reference]
    assert references(client.get(INCIDENTS, {"search": "Token"})) == [public.reference]
    assert references(client.get(INCIDENTS, {"search": secret.reference})) == []
    assert client.get(INCIDENTS, {"type": "security"}).json()["count"] == 0


def test_confidential_incident_is_visible_to_security_group(security_member, secret):
    client = client_for(security_member)
    assert references(client.get(INCIDENTS, {"search": "Token"})) == [secret.reference]
    assert client.get(detail(secret)).status_code == 200
    assert client.get(detail(secret, "timeline")).status_code == 200


def test_confidential_incident_is_visible_to_its_declarer(commander, secret):
    client = client_for(commander)
    assert secret.declared_by == commander
    assert references(client.get(INCIDENTS)) == [secret.reference]
    assert client.get(detail(secret)).status_code == 200


def test_confidential_incident_is_visible_to_a_role_holder(outsider, secret):
    services.role_assign(incident=secret, role=Role.SCRIBE, user=outsider, source=Source.ADMIN)
    client = client_for(outsider)
    assert references(client.get(INCIDENTS)) == [secret.reference]
    assert client.get(detail(secret, "roles")).status_code == 200
    response = client.post(detail(secret, "timeline"), {"summary": "Noted"}, format="json")
    assert response.status_code == 201


# --- idempotency ----------------------------------------------------------------------


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_retry_with_same_key_and_body_replays_the_first_response(api, sev1, outage):
    first = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="alert-42")
    retry = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="alert-42")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Incident.objects.count() == 1
    assert TimelineEvent.objects.count() == 1


def test_same_key_with_another_body_is_422_and_creates_nothing(api, sev1, outage):
    api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="alert-42")
    other = {**DECLARE, "title": "Something else"}
    response = api.post(INCIDENTS, other, format="json", HTTP_IDEMPOTENCY_KEY="alert-42")
    assert response.status_code == 422
    assert errors(response) == [(None, "idempotency_key_reused")]
    assert list(Incident.objects.values_list("title", flat=True)) == ["Checkout returns 502"]


def test_same_key_string_is_independent_per_user(api, responder, sev1, outage):
    theirs = client_for(responder)
    mine = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    other = theirs.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert (mine.status_code, other.status_code) == (201, 201)
    assert mine.json()["reference"] != other.json()["reference"]
    assert Incident.objects.count() == 2


def test_rejected_request_does_not_use_up_the_key(api, sev1, outage):
    bad = api.post(
        INCIDENTS, {**DECLARE, "severity": "SEV9"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    good = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (bad.status_code, good.status_code) == (400, 201)
    assert Incident.objects.count() == 1


def test_timeline_post_is_idempotent(api, declare):
    incident = declare()
    url, body = detail(incident, "timeline"), {"summary": "Rolled back"}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    retry = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).count() == 1


def test_roles_post_is_idempotent(api, declare, responder):
    incident = declare()
    url, body = detail(incident, "roles"), {"role": "commander", "user": "bob"}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="page-bob")
    retry = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="page-bob")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert incident.roles.count() == 1


@pytest.mark.parametrize("key", ["x" * 256, "   "])
def test_idempotency_key_must_be_1_to_255_characters(api, sev1, outage, key):
    response = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert errors(response) == [("Idempotency-Key", "invalid")]
    assert not Incident.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_idempotency_key_of_255_characters_is_accepted(api, sev1, outage):
    response = api.post(INCIDENTS, DECLARE, format="json", HTTP_IDEMPOTENCY_KEY="x" * 255)
    assert response.status_code == 201


# --- throttling -----------------------------------------------------------------------


@pytest.fixture
def three_per_minute(monkeypatch):
    # DRF reads the rates when the class is defined, so override_settings cannot reach them.
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    cache.clear()
    yield
    cache.clear()


def test_fourth_request_in_a_minute_is_429_with_retry_after(three_per_minute, api):
    for _ in range(3):
        assert api.get(INCIDENTS).status_code == 200
    response = api.get(INCIDENTS)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert errors(response) == [(None, "throttled")]


def test_throttling_counts_each_key_separately(three_per_minute, api, commander):
    for _ in range(4):
        api.get(INCIDENTS)
    assert api.get(INCIDENTS).status_code == 429
    assert client_for(commander).get(INCIDENTS).status_code == 200


def test_throttle_window_passes(three_per_minute, api):
    for _ in range(4):
        api.get(INCIDENTS)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert api.get(INCIDENTS).status_code == 200


# --- bad input ------------------------------------------------------------------------


def test_malformed_json_is_400_parse_error(api, sev1, outage):
    response = api.post(INCIDENTS, '{"title": "x",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "client_error"
    assert errors(response) == [(None, "parse_error")]
    assert not Incident.objects.exists()


def test_form_encoded_body_is_415(api, sev1, outage):
    response = api.post(
        INCIDENTS,
        "title=x&severity=SEV1&type=outage",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert errors(response) == [(None, "unsupported_media_type")]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": ["a", "list"]}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),
        ({"summary": "x" * 20_001}, "summary"),
        ({"estimated_users_affected": "many"}, "estimated_users_affected"),
        ({"estimated_users_affected": -1}, "estimated_users_affected"),
        ({"services": "api"}, "services"),
        ({"environment": "moon"}, "environment"),
        ({"started_at": "last tuesday"}, "started_at"),
        ({"confidential": "perhaps"}, "confidential"),
        ({"commander": "ghost"}, "commander"),
    ],
)
def test_create_with_a_bad_field_is_400_naming_it(api, api_service, sev1, outage, changes, field):
    response = api.post(INCIDENTS, {**DECLARE, **changes}, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {field}
    assert not Incident.objects.exists()


def test_create_with_unknown_severity_type_and_service_names_each(api, api_service, sev1):
    body = {**DECLARE, "severity": "SEV9", "type": "volcano", "services": ["api", "nope"]}
    response = api.post(INCIDENTS, body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"severity", "type", "services"}
    assert not Incident.objects.exists()


def test_create_without_required_fields_names_each(api, sev1):
    response = api.post(INCIDENTS, {}, format="json")
    assert response.status_code == 400
    assert errors(response) == [
        ("title", "required"),
        ("severity", "required"),
        ("type", "required"),
    ]


def test_create_with_detection_before_start_is_400(api, sev1, outage):
    now = timezone.now()
    body = {
        **DECLARE,
        "started_at": (now - timedelta(hours=1)).isoformat(),
        "detected_at": (now - timedelta(hours=2)).isoformat(),
    }
    response = api.post(INCIDENTS, body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"detected_at"}
    assert not Incident.objects.exists()


def test_create_with_start_in_the_future_is_400(api, sev1, outage):
    body = {**DECLARE, "started_at": (timezone.now() + timedelta(days=1)).isoformat()}
    response = api.post(INCIDENTS, body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"started_at"}
    assert not Incident.objects.exists()


@pytest.mark.parametrize("body", [["a", "list"], "a string", 42])
def test_create_with_a_body_that_is_not_an_object_is_400(api, sev1, body):
    response = api.post(INCIDENTS, body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("non_field_errors", "invalid")]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": "x" * 201}, "title"),
        ({"title": None}, "title"),
        ({"summary": "x" * 20_001}, "summary"),
        ({"services": ["nope"]}, "services"),
        ({"estimated_users_affected": -1}, "estimated_users_affected"),
    ],
)
def test_patch_with_a_bad_field_is_400_naming_it(api, declare, changes, field):
    incident = declare(title="Kept")
    response = api.patch(detail(incident), changes, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {field}
    incident.refresh_from_db()
    assert incident.title == "Kept"
    assert incident.history.count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"role": "overlord", "user": "bob"}, "role"),
        ({"role": "commander", "user": "ghost"}, "user"),
        ({"role": "commander", "user": "dave"}, "user"),
        ({"role": "commander"}, "user"),
    ],
)
def test_roles_post_with_bad_role_or_user_is_400(
    api, declare, responder, django_user_model, body, field
):
    make_user(django_user_model, "dave", "Responders", is_active=False)
    incident = declare()
    response = api.post(detail(incident, "roles"), body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {field}
    assert not RoleAssignment.objects.exists()


def test_assigning_the_current_holder_again_is_409(api, declare, responder):
    incident = declare(commander=responder)
    response = api.post(
        detail(incident, "roles"), {"role": "commander", "user": "bob"}, format="json"
    )
    assert response.status_code == 409
    assert "already incident commander" in only_detail(response)
    assert incident.roles.count() == 1


@pytest.mark.parametrize("name", ["declared_after", "declared_before"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_list_with_out_of_range_declared_time_is_not_a_server_error(commander, name, value):
    client = client_for(commander, raise_request_exception=False)
    response = client.get(INCIDENTS, {name: value})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert error_attrs(response) == {name}


@pytest.mark.parametrize("field", ["type", "services", "commander"])
def test_create_with_nul_in_a_lookup_field_is_400(commander, api_service, sev1, outage, field):
    client = client_for(commander, raise_request_exception=False)
    value = {"services": ["a\x00pi"]}.get(field, "a\x00b")
    response = client.post(INCIDENTS, {**DECLARE, field: value}, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {field}
    assert not Incident.objects.exists()


def test_roles_post_with_nul_in_user_is_400(commander, declare):
    incident = declare()
    client = client_for(commander, raise_request_exception=False)
    body = {"role": "scribe", "user": "b\x00ob"}
    response = client.post(detail(incident, "roles"), body, format="json")
    assert response.status_code == 400
    assert error_attrs(response) == {"user"}


@pytest.mark.parametrize("catalogue", ["services", "severities", "incident-types"])
def test_catalogue_lookup_with_nul_is_400(commander, sev1, catalogue):
    client = client_for(commander, raise_request_exception=False)
    response = client.get(f"/api/v1/{catalogue}/a%00b/")
    assert response.status_code == 400
    assert errors(response) == [(None, "null_characters_not_allowed")]


def test_timeline_post_without_summary_is_400(api, declare):
    incident = declare()
    response = api.post(detail(incident, "timeline"), {"kind": "note"}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("summary", "required")]


# --- bounded queries ------------------------------------------------------------------


def _queries(client, url):
    client.get(url)  # the first use of a key also stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_incident_list_query_count_does_not_grow(api, declare, responder, api_service):
    def add(count):
        for number in range(count):
            incident = declare(title=f"Incident {number}", services=[api_service])
            services.role_assign(
                incident=incident, role=Role.COMMANDER, user=responder, source=Source.ADMIN
            )

    add(5)
    with_five = _queries(api, INCIDENTS)
    add(25)
    with_thirty = _queries(api, INCIDENTS)
    assert api.get(INCIDENTS).json()["count"] == 30
    assert with_thirty == with_five
    # The key, the permissions, the Security check, the bounded count, the page, its
    # services: never a query per incident.
    assert with_five == 6


def test_incident_representation_is_drfs(api, declare, responder, api_service):
    """The serializer's written-out to_representation says what DRF's walk of the
    declared fields would: every field, every value, in the same order."""
    web = Service.objects.create(name="Checkout web", slug="web")
    full = declare(title="Full", services=[web, api_service], commander=responder)
    Incident.objects.filter(pk=full.pk).update(estimated_users_affected=120)
    services.incident_transition(
        incident=full, to_status=Status.RESOLVED, note="Rolled back", source=Source.ADMIN
    )
    bare = declare(title="Bare")
    Incident.objects.filter(pk=bare.pk).update(declared_by=None)
    request = api.get(INCIDENTS).wsgi_request
    context = {"request": request}
    shown = {}
    for incident in with_commander(Incident.objects.filter(pk__in=[full.pk, bare.pk])):
        written_out = IncidentSerializer(context=context).to_representation(incident)
        walked = ModelSerializer.to_representation(IncidentSerializer(context=context), incident)
        assert list(written_out.items()) == list(walked.items())
        shown[incident.title] = written_out
    assert shown["Full"]["commander"] == "bob" and shown["Full"]["resolved_at"]
    assert shown["Full"]["url"] == f"http://testserver{detail(full)}"
    assert shown["Bare"]["declared_by"] is None and shown["Bare"]["resolved_at"] is None


def test_search_query_count_does_not_grow(api, declare, api_service):
    def add(count):
        for number in range(count):
            declare(title=f"Orders database slow {number}", services=[api_service])
            declare(title=f"Checkout errors {number}")

    add(3)
    with_three = _queries(api, f"{INCIDENTS}?search=database")
    add(27)
    with_thirty = _queries(api, f"{INCIDENTS}?search=database")
    assert api.get(INCIDENTS, {"search": "database"}).json()["count"] == 30
    assert with_thirty == with_three == 6  # as the plain list: the search is in its WHERE


def test_declaring_through_the_api_costs_a_fixed_number_of_queries(api, default_policy):
    body = {"title": "Checkout returns 502", "severity": "SEV4", "type": "outage"}
    api.post(INCIDENTS, {**body, "title": "The year's first"}, format="json")
    Service.objects.create(name="Checkout", slug="checkout")
    Service.objects.create(name="Payments", slug="payments")

    with CaptureQueriesContext(connection) as queries:
        response = api.post(
            INCIDENTS, {**body, "services": ["checkout", "payments"]}, format="json"
        )

    assert response.status_code == 201
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The request: the key, the permissions, the severity, the type, the services (5).
    # The declaration, in one transaction (11): the reference, the incident, its
    # services, their history (2), who hears of it, on-call's activation rules and the
    # teams of its services, the timeline events and their history, the outbox rows;
    # playbooks' checklist (3): the matching steps, their copies and the copies' history.
    assert len(statements) == 19
    incident = Incident.objects.get(reference=response.json()["reference"])
    assert incident.history.count() == 1
    assert sorted(incident.services.values_list("slug", flat=True)) == ["checkout", "payments"]


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_timeline_query_count_does_not_grow(api, declare):
    now = timezone.now()
    incident = declare(declared_at=now - timedelta(days=1))
    add_notes(incident, 4, now - timedelta(hours=12))
    with_five = _queries(api, detail(incident, "timeline"))
    add_notes(incident, 25, now - timedelta(hours=6))
    with_thirty = _queries(api, detail(incident, "timeline"))
    assert len(api.get(detail(incident, "timeline")).json()["results"]) == 30
    assert with_thirty == with_five
    assert with_five <= 10


# --- schema and docs ------------------------------------------------------------------


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_generated_once_per_process(db, monkeypatch):
    from drf_spectacular.generators import SchemaGenerator

    from incidents.api.docs import CachedSchemaView

    monkeypatch.setattr(CachedSchemaView, "_schemas", {})
    generated = []
    original = SchemaGenerator.get_schema
    monkeypatch.setattr(
        SchemaGenerator,
        "get_schema",
        lambda self, *args, **kwargs: generated.append(1) or original(self, *args, **kwargs),
    )
    client = APIClient()
    first = client.get("/api/schema/", {"format": "json"})
    again = client.get("/api/schema/", {"format": "json"})
    as_yaml = client.get("/api/schema/")
    assert first.status_code == again.status_code == as_yaml.status_code == 200
    assert first.json() == again.json()
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert len(generated) == 1


def test_schema_is_openapi_3_and_served_to_anyone(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_schema_describes_every_endpoint(schema):
    expected = {
        "/api/v1/incidents/": {"get", "post"},
        "/api/v1/incidents/{reference}/": {"get", "patch"},
        "/api/v1/incidents/{reference}/acknowledge/": {"post"},
        "/api/v1/incidents/{reference}/transition/": {"post"},
        "/api/v1/incidents/{reference}/severity/": {"post"},
        "/api/v1/incidents/{reference}/roles/": {"get", "post"},
        "/api/v1/incidents/{reference}/timeline/": {"get", "post"},
        "/api/v1/services/": {"get"},
        "/api/v1/severities/": {"get"},
        "/api/v1/incident-types/": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(schema["paths"][path]), path


def test_schema_documents_409_on_transition(schema):
    transition = schema["paths"]["/api/v1/incidents/{reference}/transition/"]["post"]
    assert "409" in transition["responses"]


def test_schema_documents_idempotency_key_on_create(schema):
    create = schema["paths"]["/api/v1/incidents/"]["post"]
    assert "Idempotency-Key" in {parameter["name"] for parameter in create["parameters"]}
    assert "422" in create["responses"]


def test_docs_page_loads_only_local_static_files(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "cdn" not in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset


def _resolve(schema, ref):
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _response_schema(schema, path, method, status):
    content = schema["paths"][path][method]["responses"][status]["content"]
    return content["application/json"]["schema"]


def documented_validation_errors(schema, path, method) -> set:
    """Return the (attr, code) pairs the schema lists for the operation's 400."""
    top = _resolve(schema, _response_schema(schema, path, method, "400")["$ref"])
    validation = top["discriminator"]["mapping"].get("validation_error")
    if validation is None:
        return set()
    items = _resolve(schema, validation)["properties"]["errors"]["items"]["$ref"]
    pairs = set()
    for option in _resolve(schema, items).get("oneOf", [{"$ref": items}]):
        properties = _resolve(schema, option["$ref"])["properties"]
        for attr in properties["attr"]["enum"]:
            pairs.update((attr, code) for code in properties["code"]["enum"])
    return pairs


@pytest.mark.parametrize(
    "path, method, query, body, headers",
    [
        ("/api/v1/incidents/", "post", None, {**DECLARE, "severity": "SEV9"}, {}),
        ("/api/v1/incidents/", "post", None, {**DECLARE, "title": "x" * 201}, {}),
        ("/api/v1/incidents/", "post", None, {**DECLARE, "started_at": "2099-01-01T00:00Z"}, {}),
        ("/api/v1/incidents/", "post", None, ["not", "an", "object"], {}),
        ("/api/v1/incidents/{reference}/", "patch", None, {"services": ["nope"]}, {}),
        ("/api/v1/incidents/{reference}/transition/", "post", None, {"status": "x"}, {}),
        ("/api/v1/incidents/{reference}/severity/", "post", None, {"severity": "SEV2"}, {}),
        ("/api/v1/incidents/{reference}/roles/", "post", None, {"role": "x", "user": "bob"}, {}),
        ("/api/v1/incidents/{reference}/timeline/", "post", None, {"kind": "alert"}, {}),
        ("/api/v1/incidents/", "get", {"status": "x"}, None, {}),
        ("/api/v1/incidents/", "get", {"type": "x"}, None, {}),
        ("/api/v1/incidents/", "get", {"declared_after": "x"}, None, {}),
        pytest.param(
            "/api/v1/incidents/",
            "get",
            {"severity": "catastrophic"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/incidents/",
            "get",
            {"type": "\x00"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/incidents/",
            "get",
            {"service": "\x00"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/incidents/",
            "get",
            {"search": "\x00"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/services/",
            "get",
            {"search": "\x00"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/incidents/{reference}/severity/",
            "post",
            None,
            {"severity": "SEV1", "reason": "same"},
            {},
        ),
        pytest.param(
            "/api/v1/incidents/{reference}/timeline/",
            "get",
            {"after": "soon"},
            None,
            {},
        ),
        pytest.param(
            "/api/v1/incidents/",
            "post",
            None,
            DECLARE,
            {"HTTP_IDEMPOTENCY_KEY": "x" * 256},
        ),
        pytest.param(
            "/api/v1/incidents/{reference}/roles/",
            "post",
            None,
            {"role": "scribe", "user": "bob"},
            {"HTTP_IDEMPOTENCY_KEY": "x" * 256},
        ),
        pytest.param(
            "/api/v1/incidents/{reference}/timeline/",
            "post",
            None,
            {"summary": "x"},
            {"HTTP_IDEMPOTENCY_KEY": "x" * 256},
        ),
    ],
)
def test_schema_documents_each_validation_error_returned(
    api, schema, declare, responder, path, method, query, body, headers
):
    url = path.replace("{reference}", declare().reference)
    if method == "get":
        response = api.get(url, query)
    else:
        response = getattr(api, method)(url, body, format="json", **headers)
    assert response.status_code == 400
    assert set(errors(response)) <= documented_validation_errors(schema, path, method)


@pytest.mark.parametrize(
    "component, field",
    [
        ("Incident", "commander"),
        ("Incident", "declared_by"),
        ("Incident", "ack_due_at"),
        ("TimelineEvent", "author"),
        ("RoleAssignment", "assigned_by"),
    ],
)
def test_schema_allows_null_where_the_api_sends_null(
    api, schema, declare, responder, component, field
):
    incident = declare(actor=None, triage=True)
    services.role_assign(incident=incident, role=Role.SCRIBE, user=responder, source=Source.ADMIN)
    sent = {
        "Incident": api.get(detail(incident)).json(),
        "TimelineEvent": api.get(detail(incident, "timeline")).json()["results"][0],
        "RoleAssignment": api.get(detail(incident, "roles")).json()[0],
    }[component]
    assert sent[field] is None
    assert schema["components"]["schemas"][component]["properties"][field].get("nullable")


def test_schema_documents_roles_list_as_returned(api, schema, declare):
    path = "/api/v1/incidents/{reference}/roles/"
    assert isinstance(api.get(detail(declare(), "roles")).json(), list)
    assert _response_schema(schema, path, "get", "200")["type"] == "array"
    parameters = {parameter["name"] for parameter in schema["paths"][path]["get"]["parameters"]}
    assert parameters == {"reference"}


def test_schema_documents_timeline_page_as_returned(api, schema, declare):
    path = "/api/v1/incidents/{reference}/timeline/"
    assert set(api.get(detail(declare(), "timeline")).json()) == {"next", "previous", "results"}
    documented = _response_schema(schema, path, "get", "200")
    if "$ref" in documented:
        documented = _resolve(schema, documented["$ref"])
    assert {"next", "previous", "results"} <= set(documented.get("properties", {}))
