"""The action-item API and the report endpoint, as integrations use them."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from incidents import services as incident_services
from incidents.models import IdempotencyRecord, Service, Source
from incidents.models import Status as IncidentStatus
from postmortems.models import PostMortem
from remediation import services, vocabulary
from remediation.models import ActionItem, ActionItemUpdate
from tests.api import client_for, errors
from tests.conftest import make_user
from tests.reviews import publish_review

ITEMS = "/api/v1/action-items/"
REPORT = "/api/v1/remediation/report/"
S = ActionItem.Status


def url(item, action=""):
    return f"{ITEMS}{item.pk}/{action + '/' if action else ''}"


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["title"] for row in response.json()["results"])


@pytest.fixture
def stakeholder(db, django_user_model):
    return make_user(django_user_model, "sam", "Stakeholders")


@pytest.fixture
def incident(declare, api_service):
    return declare(services=[api_service])


@pytest.fixture
def secret(declare, security_type):
    """A confidential incident declared by alice."""
    return declare(title="Leaked token", incident_type=security_type, confidential=True)


@pytest.fixture
def item(incident, commander):
    def _item(title="Add a pool alert", **fields):
        fields = {"category": "technical", "incident": incident, **fields}
        return services.action_item_create(
            title=title, actor=commander, source=Source.ADMIN, **fields
        )

    return _item


@pytest.fixture
def api(commander):
    return client_for(commander)


@pytest.fixture
def postmortem(incident, commander):
    incident_services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    incident_services.incident_transition(
        incident=incident, to_status=IncidentStatus.RESOLVED, source=Source.ADMIN
    )
    return PostMortem.objects.get(incident=incident)


# --- create, read, change ---------------------------------------------------------------


def test_create_records_the_item_and_its_first_update(api, incident, responder):
    body = {
        "incident": incident.reference,
        "title": "Alert on pool saturation",
        "category": "technical",
        "priority": "P2",
        "owner": "bob",
        "team": "Platform",
    }
    response = api.post(ITEMS, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    item = ActionItem.objects.get()
    assert response["Location"].endswith(url(item))
    assert data["incident"] == incident.reference and data["postmortem"] is None
    assert (data["owner"], data["priority"], data["status"]) == ("bob", "P2", "open")
    # P2 defaults to 30 days
    assert data["due_on"] == str(timezone.localdate() + timedelta(days=30))
    assert data["overdue"] is False
    assert list(item.updates.values_list("kind", flat=True)) == ["created"]
    assert item.created_by.username == "alice"


def test_create_via_postmortem_reference(api, postmortem):
    reference = postmortem.incident.reference
    body = {"postmortem": reference, "title": "Run a drill", "category": "training"}
    response = api.post(ITEMS, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["postmortem"] == reference
    assert response.json()["incident"] == reference
    assert ActionItem.objects.get().postmortem == postmortem


def test_create_for_incident_without_postmortem_reference_is_400(api, incident):
    body = {"postmortem": incident.reference, "title": "Run a drill", "category": "training"}
    response = api.post(ITEMS, body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("postmortem", "invalid")]
    assert not ActionItem.objects.exists()


def test_create_on_published_review_is_409(api, incident, commander):
    incident_services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    incident_services.incident_transition(
        incident=incident, to_status=IncidentStatus.RESOLVED, source=Source.ADMIN
    )
    publish_review(incident)
    body = {"postmortem": incident.reference, "title": "Too late", "category": "process"}
    response = api.post(ITEMS, body, format="json")
    assert response.status_code == 409
    assert not ActionItem.objects.exists()


def test_create_needs_incident_or_postmortem(api):
    response = api.post(ITEMS, {"title": "Orphan", "category": "process"}, format="json")
    assert response.status_code == 400
    assert ("incident", "invalid") in errors(response)


def test_create_with_unknown_category_is_400_with_error_shape(api, incident):
    body = {"incident": incident.reference, "title": "X", "category": "magic"}
    response = api.post(ITEMS, body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("category", "invalid_choice")]


def test_create_replays_the_first_response_for_the_same_idempotency_key(api, incident):
    body = {"incident": incident.reference, "title": "Once only", "category": "process"}
    first = api.post(ITEMS, body, format="json", HTTP_IDEMPOTENCY_KEY="item-1")
    retry = api.post(ITEMS, body, format="json", HTTP_IDEMPOTENCY_KEY="item-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert ActionItem.objects.count() == 1
    assert ActionItemUpdate.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.usefixtures("responder")
def test_retrieve_and_patch(api, item):
    entry = item()
    assert api.get(url(entry)).json()["title"] == "Add a pool alert"
    due = date.today() + timedelta(days=3)
    response = api.patch(url(entry), {"owner": "bob", "due_on": str(due)}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["owner"], response.json()["due_on"]) == ("bob", str(due))
    change = entry.updates.get(kind="change")
    assert change.author.username == "alice" and "owner" in change.note


@pytest.mark.usefixtures("responder")
def test_patch_status_is_not_writable(api, item):
    entry = item()
    response = api.patch(url(entry), {"status": "done"}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.status == S.OPEN


def test_every_action_item_write_through_the_api_is_recorded_as_api(api, incident):
    """Create, change, note and move an item through the API: each step's timeline event,
    and the history row of that event, say the change came from the API."""
    response = api.post(
        ITEMS,
        {"incident": incident.reference, "title": "Add a pool alert", "category": "technical"},
        format="json",
    )
    assert response.status_code == 201, response.content
    entry = ActionItem.objects.get(pk=response.json()["id"])
    assert api.patch(url(entry), {"priority": "P1"}, format="json").status_code == 200
    note = api.post(url(entry, "updates"), {"note": "Drafted the alert"}, format="json")
    assert note.status_code == 201, note.content
    moved = api.post(url(entry, "updates"), {"status": "in_progress"}, format="json")
    assert moved.status_code == 201, moved.content

    steps = incident.timeline.filter(kind=vocabulary.Kind.FOLLOW_UP).order_by("pk")
    assert len(steps) == 4  # created, changed, noted, moved
    assert [event.source for event in steps] == [Source.API] * 4
    assert [event.history.get().source for event in steps] == [Source.API] * 4


# --- progress ---------------------------------------------------------------------------


def test_post_note_and_list_updates(api, item):
    entry = item()
    response = api.post(url(entry, "updates"), {"note": "Drafted the alert"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    updates = api.get(url(entry, "updates")).json()
    assert [(u["kind"], u["note"], u["author"]) for u in updates] == [
        ("created", "", "alice"),
        ("note", "Drafted the alert", "alice"),
    ]


def test_status_change_with_reason(api, item):
    entry = item()
    response = api.post(
        url(entry, "updates"), {"status": "blocked", "note": "Waiting on DBA"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "blocked"
    assert response.json()["blocked_reason"] == "Waiting on DBA"
    last = api.get(url(entry, "updates")).json()[-1]
    assert (last["kind"], last["from_status"], last["to_status"]) == ("status", "open", "blocked")


def test_done_records_verification_and_who(api, item):
    entry = item()
    response = api.post(
        url(entry, "updates"), {"status": "done", "note": "Drill passed"}, format="json"
    )
    data = response.json()
    assert (data["status"], data["verification_note"], data["completed_by"]) == (
        "done",
        "Drill passed",
        "alice",
    )
    assert data["completed_at"]


def test_illegal_move_is_409(api, item):
    entry = item()
    api.post(url(entry, "updates"), {"status": "done"}, format="json")
    response = api.post(url(entry, "updates"), {"status": "blocked", "note": "x"}, format="json")
    assert response.status_code == 409
    assert len(errors(response)) == 1
    assert "cannot move from done to blocked" in response.json()["errors"][0]["detail"]
    entry.refresh_from_db()
    assert entry.status == S.DONE


def test_blocked_without_note_is_400(api, item):
    entry = item()
    response = api.post(url(entry, "updates"), {"status": "blocked"}, format="json")
    assert response.status_code == 400
    assert [attr for attr, _ in errors(response)] == ["note"]
    entry.refresh_from_db()
    assert entry.status == S.OPEN
    assert entry.updates.count() == 1


def test_empty_note_without_status_is_400(api, item):
    response = api.post(url(item(), "updates"), {"note": "  "}, format="json")
    assert response.status_code == 400


# --- filters ----------------------------------------------------------------------------


@pytest.fixture
def spread(item, commander, responder, declare, postmortem):
    """Items in several states, owners and priorities."""
    today = timezone.localdate()
    mine = item("Alice P1", priority="P1", owner=commander)
    bobs = item("Bob P2 late", priority="P2", owner=responder, due_on=today - timedelta(days=2))
    item("Nobody P4", priority="P4", category="process")
    done = item("Done late", priority="P3", owner=responder, due_on=today - timedelta(days=9))
    services.action_item_transition(
        item=done, to_status=S.DONE, actor=commander, source=Source.ADMIN
    )
    blocked = item("Blocked", owner=commander, category="training")
    services.action_item_transition(
        item=blocked, to_status=S.BLOCKED, note="x", actor=commander, source=Source.ADMIN
    )
    other = declare(title="Other incident")
    item("Elsewhere", incident=other)
    services.action_item_create(
        title="From review",
        category="process",
        postmortem=postmortem,
        actor=commander,
        source=Source.ADMIN,
    )
    return mine, bobs, other


def test_filters(api, spread, postmortem):
    _, _, other = spread
    assert titles(api.get(ITEMS, {"status": "blocked"})) == ["Blocked"]
    assert titles(api.get(ITEMS, {"status": ["done", "blocked"]})) == ["Blocked", "Done late"]
    assert titles(api.get(ITEMS, {"owner": "bob"})) == ["Bob P2 late", "Done late"]
    assert titles(api.get(ITEMS, {"owner": "me"})) == ["Alice P1", "Blocked"]
    assert titles(api.get(ITEMS, {"priority": "P1"})) == ["Alice P1"]
    assert titles(api.get(ITEMS, {"category": "training"})) == ["Blocked"]
    assert titles(api.get(ITEMS, {"overdue": "true"})) == ["Bob P2 late"]
    assert "Bob P2 late" not in titles(api.get(ITEMS, {"overdue": "false"}))
    assert "Done late" in titles(api.get(ITEMS, {"overdue": "false"}))
    assert titles(api.get(ITEMS, {"incident": other.reference})) == ["Elsewhere"]
    reference = postmortem.incident.reference
    assert titles(api.get(ITEMS, {"postmortem": reference})) == ["From review"]


def test_owner_me_for_someone_else(spread, responder):
    assert titles(client_for(responder).get(ITEMS, {"owner": "me"})) == [
        "Bob P2 late",
        "Done late",
    ]


# --- permissions and visibility ---------------------------------------------------------


def test_without_credentials_is_401(item):
    entry = item()
    client = APIClient()
    assert client.get(ITEMS).status_code == 401
    assert client.get(url(entry)).status_code == 401
    assert client.get(REPORT).status_code == 401


def test_stakeholder_reads_but_cannot_write(item, stakeholder, incident):
    entry = item()
    client = client_for(stakeholder)
    assert titles(client.get(ITEMS)) == ["Add a pool alert"]
    assert client.get(url(entry)).status_code == 200
    assert client.get(url(entry, "updates")).status_code == 200
    body = {"incident": incident.reference, "title": "Mine", "category": "process"}
    assert client.post(ITEMS, body, format="json").status_code == 403
    assert client.patch(url(entry), {"title": "Renamed"}, format="json").status_code == 403
    note = client.post(url(entry, "updates"), {"note": "hi"}, format="json")
    assert note.status_code == 403
    assert ActionItem.objects.count() == 1 and entry.updates.count() == 1


def test_outsider_cannot_see_confidential_items(item, secret, outsider):
    hidden = item("Rotate keys", incident=secret)
    item("Public work")
    client = client_for(outsider)
    assert titles(client.get(ITEMS)) == ["Public work"]
    assert client.get(url(hidden)).status_code == 404
    assert client.get(url(hidden, "updates")).status_code == 404
    response = client.post(url(hidden, "updates"), {"note": "peek"}, format="json")
    assert response.status_code == 404
    assert client.patch(url(hidden), {"title": "x"}, format="json").status_code == 404
    body = {"incident": secret.reference, "title": "Sneak", "category": "process"}
    assert client.post(ITEMS, body, format="json").status_code == 400
    assert ActionItem.objects.count() == 2


def test_security_member_sees_confidential_items(item, secret, security_member):
    hidden = item("Rotate keys", incident=secret)
    client = client_for(security_member)
    assert titles(client.get(ITEMS)) == ["Rotate keys"]
    assert client.get(url(hidden)).status_code == 200


def test_unknown_item_is_404_with_error_shape(api):
    response = api.get(f"{ITEMS}999999/")
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


# --- cost -------------------------------------------------------------------------------


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ITEMS)
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


def test_list_query_count_does_not_grow(item, commander, responder, postmortem):
    client = client_for(responder)
    client.get(ITEMS)  # first use of the key stamps it: not part of the list's cost
    item(owner=commander)
    small, count = _list_queries(client)
    assert count == 1
    for n in range(4):
        entry = services.action_item_create(
            title=f"Item {n}",
            category="process",
            postmortem=postmortem,
            owner=responder,
            actor=commander,
            source=Source.ADMIN,
        )
        services.action_item_transition(
            item=entry, to_status=S.DONE, actor=commander, source=Source.ADMIN
        )
    large, count = _list_queries(client)
    assert count == 5
    assert large == small


# --- the report -------------------------------------------------------------------------


def test_report_returns_the_figures(api, item, responder, commander):
    today = timezone.localdate()
    item("Late", priority="P1", team="Platform", owner=responder, due_on=today - timedelta(1))
    blocked = item("Stuck", team="Platform")
    services.action_item_transition(
        item=blocked, to_status=S.BLOCKED, note="DBA", actor=commander, source=Source.ADMIN
    )
    done = item("Shipped", team="Payments")
    services.action_item_transition(
        item=done, to_status=S.DONE, actor=commander, source=Source.ADMIN
    )
    dropped = item("Dropped", team="Payments")
    services.action_item_transition(
        item=dropped, to_status=S.WONT_DO, note="no", actor=commander, source=Source.ADMIN
    )
    response = api.get(REPORT)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["summary"] == {
        "total": 4,
        "open": 2,
        "blocked": 1,
        "done": 1,
        "wont_do": 1,
        "overdue": 1,
        "completion_rate": 0.333,
    }
    assert data["median_days_to_complete"] == 0.0
    assert [(r["group"], r["total"]) for r in data["by_team"]] == [("Payments", 2), ("Platform", 2)]
    assert [(r["group"], r["total"]) for r in data["by_service"]] == [("Public API", 4)]
    [late] = data["overdue"]
    assert (late["title"], late["owner"], late["days_overdue"]) == ("Late", "bob", 1)
    [stuck] = data["blockers"]
    assert (stuck["title"], stuck["blocked_reason"], stuck["blocked_days"]) == ("Stuck", "DBA", 0)
    filtered = api.get(REPORT, {"team": "Payments", "service": "api", "severity": "SEV1"})
    assert filtered.json()["summary"]["total"] == 2
    other = Service.objects.create(name="Mail", slug="mail", owning_team="Ops", tier=3)
    assert api.get(REPORT, {"service": other.slug}).json()["summary"]["total"] == 0


def test_report_rejects_unknown_service_and_bad_dates(api):
    response = api.get(REPORT, {"service": "nope"})
    assert response.status_code == 400
    assert errors(response) == [("service", "invalid")]
    response = api.get(REPORT, {"created_from": "2026-13-01"})
    assert response.status_code == 400
    assert errors(response) == [("created_from", "invalid")]
    assert api.get(REPORT, {"created_to": "yesterday"}).status_code == 400
    assert api.get(REPORT, {"severity": "SEV9"}).status_code == 400


def test_report_respects_confidentiality(item, secret, outsider, security_member):
    item("Rotate keys", incident=secret)
    item("Public work")
    assert client_for(outsider).get(REPORT).json()["summary"]["total"] == 1
    assert client_for(security_member).get(REPORT).json()["summary"]["total"] == 2


def test_stakeholder_may_read_the_report(item, stakeholder):
    item()
    response = client_for(stakeholder).get(REPORT)
    assert response.status_code == 200
    assert response.json()["summary"]["total"] == 1
