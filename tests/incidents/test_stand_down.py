"""Standing someone down from a role without naming a successor: from the incident's
page (the roles inline) and through the API."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from incidents import extensions, services
from incidents.models import Notification, Role, Source, TimelineEvent
from tests.api import client_for, errors
from tests.conftest import make_user


@pytest.fixture
def scribe(declare, responder):
    """bob is the scribe of a fresh incident that alice commands."""
    incident = declare()
    return services.role_assign(
        incident=incident, role=Role.SCRIBE, user=responder, source=Source.ADMIN
    )


@pytest.fixture
def secret_scribe(declare, security_type, responder):
    """bob is the scribe of a confidential incident."""
    incident = declare(title="Token leaked", incident_type=security_type)
    assert incident.confidential
    return services.role_assign(
        incident=incident, role=Role.SCRIBE, user=responder, source=Source.ADMIN
    )


@pytest.fixture
def viewer(db, django_user_model):
    """Staff who may read incidents but not change them."""
    return make_user(django_user_model, "grace", "Stakeholders", is_staff=True)


def last_role_event(incident):
    return incident.timeline.filter(kind=TimelineEvent.Kind.ROLE_CHANGE).last()


# --- the admin -----------------------------------------------------------------------------


def change_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def stand_down_url(assignment):
    return reverse(
        "admin:incidents_incident_stand_down", args=[assignment.incident_id, assignment.pk]
    )


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_roles_inline_offers_stand_down_on_active_rows_only(commander_client, scribe):
    services.role_relieve(assignment=scribe, source=Source.ADMIN)
    active = services.role_assign(
        incident=scribe.incident,
        role=Role.COMMUNICATIONS_LEAD,
        user=scribe.user,
        source=Source.ADMIN,
    )
    body = commander_client.get(change_url(scribe.incident)).content.decode()
    assert f'href="{stand_down_url(active)}"' in body
    assert stand_down_url(scribe) not in body


def test_commander_stands_a_role_holder_down_from_the_page(commander_client, commander, scribe):
    confirm = commander_client.get(stand_down_url(scribe))
    assert confirm.status_code == 200
    assert "Stand <strong>bob</strong> down as scribe" in confirm.content.decode()
    scribe.refresh_from_db()
    assert scribe.relieved_at is None  # asking is not doing

    response = commander_client.post(stand_down_url(scribe), follow=True)
    # Back to the incident's war-room page.
    assert response.redirect_chain[-1][0] == scribe.incident.get_absolute_url()
    assert "Stood bob down as scribe." in messages_of(response)
    scribe.refresh_from_db()
    assert scribe.relieved_at is not None
    event = last_role_event(scribe.incident)
    assert event.summary == "bob stood down as scribe"
    assert (event.source, event.author) == (Source.ADMIN, commander)


def test_an_ended_role_has_no_stand_down_page(commander_client, scribe):
    commander_client.post(stand_down_url(scribe))
    events = scribe.incident.timeline.count()
    assert commander_client.get(stand_down_url(scribe)).status_code == 404
    assert commander_client.post(stand_down_url(scribe)).status_code == 404
    assert scribe.incident.timeline.count() == events


def test_the_holder_stood_down_is_told(commander, scribe):
    services.role_relieve(assignment=scribe, actor=commander, source=Source.ADMIN)
    told = Notification.objects.get(recipient=scribe.user, event="role_relieved")
    assert f"You are no longer scribe of {scribe.incident.reference}." in told.body


def test_standing_the_commander_down_says_the_incident_has_none(commander, scribe):
    lead = services.role_assign(
        incident=scribe.incident, role=Role.COMMANDER, user=commander, source=Source.ADMIN
    )
    with extensions.restored():
        seen = []
        extensions.role_relieved.register(seen.append)
        services.role_relieve(assignment=lead, actor=commander, source=Source.API)
    event = last_role_event(scribe.incident)
    assert event.summary.endswith(f"{scribe.incident.reference} has no commander now")
    assert [(payload.assignment, payload.source) for payload in seen] == [(lead, Source.API)]


def test_stand_down_needs_change_permission(client, viewer, scribe):
    client.force_login(viewer)
    page = client.get(change_url(scribe.incident))
    assert page.status_code == 200
    assert "Stand down" not in page.content.decode()
    assert client.get(stand_down_url(scribe)).status_code == 403
    assert client.post(stand_down_url(scribe)).status_code == 403
    scribe.refresh_from_db()
    assert scribe.relieved_at is None


def test_stand_down_on_a_confidential_incident_is_404_for_an_outsider(
    client, outsider, secret_scribe
):
    client.force_login(outsider)
    assert client.get(stand_down_url(secret_scribe)).status_code == 404
    response = client.post(stand_down_url(secret_scribe))
    assert response.status_code == 404
    assert "Token leaked" not in response.content.decode()
    secret_scribe.refresh_from_db()
    assert secret_scribe.relieved_at is None


def test_stand_down_of_another_incidents_role_is_404(commander_client, declare, scribe):
    other = declare(title="Elsewhere")
    url = reverse("admin:incidents_incident_stand_down", args=[other.pk, scribe.pk])
    assert commander_client.post(url).status_code == 404
    scribe.refresh_from_db()
    assert scribe.relieved_at is None


def test_stand_down_without_the_csrf_token_is_refused(commander, scribe):
    client = Client(enforce_csrf_checks=True)
    client.force_login(commander)
    assert client.post(stand_down_url(scribe)).status_code == 403
    scribe.refresh_from_db()
    assert scribe.relieved_at is None


# --- the API -------------------------------------------------------------------------------


def role_url(assignment, pk=None):
    reference = assignment.incident.reference
    return f"/api/v1/incidents/{reference}/roles/{pk or assignment.pk}/"


def test_delete_stands_the_holder_down_and_keeps_the_record(commander, scribe):
    api = client_for(commander)
    roles = api.get(f"/api/v1/incidents/{scribe.incident.reference}/roles/").json()
    assert scribe.pk in [row["id"] for row in roles]  # where a client finds the id

    response = api.delete(role_url(scribe))
    assert response.status_code == 204
    assert response.content == b""
    [row] = [
        row
        for row in api.get(f"/api/v1/incidents/{scribe.incident.reference}/roles/").json()
        if row["id"] == scribe.pk
    ]
    assert row["relieved_at"] is not None
    event = last_role_event(scribe.incident)
    assert event.summary == "bob stood down as scribe"
    assert (event.source, event.author) == (Source.API, commander)


def test_delete_of_an_ended_assignment_is_409(commander, scribe):
    api = client_for(commander)
    assert api.delete(role_url(scribe)).status_code == 204
    events = scribe.incident.timeline.count()
    again = api.delete(role_url(scribe))
    assert again.status_code == 409
    assert errors(again) == [(None, "conflict")]
    assert again.json()["errors"][0]["detail"] == "bob was already relieved."
    assert scribe.incident.timeline.count() == events


@pytest.mark.parametrize("pk", [999999, 10**18 - 1])
def test_delete_of_an_unknown_assignment_is_404(commander, scribe, pk):
    response = client_for(commander).delete(role_url(scribe, pk=pk))
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


def test_delete_of_another_incidents_assignment_is_404(commander, declare, scribe):
    other = declare(title="Elsewhere")
    response = client_for(commander).delete(
        f"/api/v1/incidents/{other.reference}/roles/{scribe.pk}/"
    )
    assert response.status_code == 404
    scribe.refresh_from_db()
    assert scribe.relieved_at is None


def test_delete_on_a_confidential_incident_is_404_for_an_outsider(outsider, secret_scribe):
    response = client_for(outsider).delete(role_url(secret_scribe))
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]
    secret_scribe.refresh_from_db()
    assert secret_scribe.relieved_at is None


def test_delete_needs_change_permission(viewer, scribe):
    response = client_for(viewer).delete(role_url(scribe))
    assert response.status_code == 403
    scribe.refresh_from_db()
    assert scribe.relieved_at is None


def test_the_incident_itself_still_cannot_be_deleted(commander, scribe):
    response = client_for(commander).delete(f"/api/v1/incidents/{scribe.incident.reference}/")
    assert response.status_code == 405
    assert errors(response) == [(None, "method_not_allowed")]


def test_schema_documents_stand_down(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/incidents/{reference}/roles/{id}/"]["delete"]
    assert {"204", "404", "409"} <= set(operation["responses"])
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["id"]["schema"]["type"] == "integer"
    assert "requestBody" not in operation
