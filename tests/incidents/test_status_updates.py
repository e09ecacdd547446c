"""Status updates: numbered, on the timeline, pre-filled from templates; admin and API."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from incidents import services
from incidents.errors import DomainError
from incidents.models import Audience, MessageTemplate, Source, StatusUpdate, TimelineEvent
from tests.forms import form_data


def post(
    incident, summary="Fix rolling out", audience=Audience.INTERNAL, source=Source.ADMIN, **kwargs
):
    return services.status_update_post(
        incident=incident, audience=audience, summary=summary, source=source, **kwargs
    )


def test_updates_are_numbered_per_incident(declare):
    first, other = declare(), declare()
    assert [post(first).number, post(first).number, post(other).number] == [1, 2, 1]


def test_update_records_status_and_goes_on_timeline(declare, commander):
    incident = declare()
    update = post(incident, summary="Rolled back", actor=commander)
    assert update.status == "declared" and update.author == commander
    event = incident.timeline.get(kind=TimelineEvent.Kind.COMMUNICATION)
    assert event.summary == "Internal update #1: Rolled back"


def test_next_update_defaults_to_the_severity_cadence(declare):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        update = post(declare())  # SEV1: every 30 minutes
    assert update.next_update_at == now + timedelta(minutes=30)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"summary": "  "}, "summary"),
        ({"audience": "everyone"}, "audience"),
        ({"next_update_at": timezone.now() - timedelta(minutes=1)}, "next_update_at"),
    ],
)
def test_bad_update_is_refused_and_writes_nothing(declare, kwargs, field):
    incident = declare()
    with pytest.raises(DomainError) as error:
        post(incident, **kwargs)
    assert error.value.field == field
    assert not StatusUpdate.objects.exists()


def test_confidential_incident_cannot_post_public_update(declare, security_type):
    secret = declare(incident_type=security_type)
    with pytest.raises(DomainError, match="confidential"):
        post(secret, audience=Audience.PUBLIC)


def test_admin_prefills_the_next_update_from_the_editable_template(commander_client, declare):
    MessageTemplate.objects.filter(slug="customer-update").update(
        body="We are working on {{ incident.title }}."
    )
    incident = declare(title="Checkout errors")
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    body = commander_client.get(url).content.decode()
    assert "We are working on Checkout errors." in body


def test_admin_posts_an_update_through_the_inline(commander_client, commander, declare):
    incident = declare()
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    data = form_data(commander_client.get(url).content.decode(), "incident_form")
    data.update({"updates-0-audience": "public", "updates-0-summary": "Investigating errors"})
    assert commander_client.post(url, data).status_code == 302
    update = incident.updates.get()
    assert (update.number, update.audience, update.author) == (1, "public", commander)


def test_api_posts_and_lists_updates(declare, commander):
    _, key = services.api_key_create(user=commander, name="bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    incident = declare()
    url = f"/api/v1/incidents/{incident.reference}/updates/"
    response = client.post(url, {"audience": "public", "summary": "Mitigated"}, format="json")
    assert response.status_code == 201
    assert response.json()["number"] == 1 and response.json()["author"] == "alice"
    listed = client.get(url).json()
    assert [row["summary"] for row in listed] == ["Mitigated"]
    assert incident.timeline.get(kind="communication").source == "api"


def test_api_refuses_public_update_on_confidential_incident(declare, security_type, commander):
    _, key = services.api_key_create(user=commander, name="bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    secret = declare(incident_type=security_type)
    response = client.post(
        f"/api/v1/incidents/{secret.reference}/updates/",
        {"audience": "public", "summary": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "audience"
