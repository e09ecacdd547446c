"""POST /api/v1/incidents/{reference}/page/: page a level or a person by hand."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from incidents import services
from incidents.models import Source, Status
from oncall.models import Page
from tests.api import client_for, errors

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_noon")]


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("lee", "ivy", "nomail")}


@pytest.fixture
def policy(make_policy, people):
    return make_policy(
        levels=[
            {"name": "On call", "delay": timedelta(0), "incident_team": True},
            {"name": "Team lead", "delay": timedelta(minutes=15), "users": [people["lee"]]},
        ]
    )


def url(incident):
    return f"/api/v1/incidents/{incident.reference}/page/"


def test_paging_a_level_answers_201_with_the_pages(commander, declare, policy):
    incident = declare()
    response = client_for(commander).post(url(incident), {"level": 2}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [page["user"] for page in body["pages"]] == ["lee"]
    assert body["pages"][0]["reason"] == "manual"
    assert body["unreachable"] == [] and body["already_paged"] == []


def test_paging_a_person_with_a_message(commander, declare, policy, people):
    incident = declare()
    response = client_for(commander).post(
        url(incident), {"user": "ivy", "message": "Your database"}, format="json"
    )
    assert response.status_code == 201
    page = Page.objects.get(incident=incident, user=people["ivy"])
    assert "Your database" in page.message


def test_someone_who_cannot_be_reached_is_named(commander, declare, policy, people):
    people["nomail"].email = ""
    people["nomail"].save()
    incident = declare()
    response = client_for(commander).post(url(incident), {"user": "nomail"}, format="json")
    assert response.status_code == 201
    assert response.json() == {
        "pages": [],
        "unreachable": ["nomail"],
        "already_paged": [],
        "channels": [],
    }


@pytest.mark.parametrize(
    "payload, attr",
    [
        ({}, "non_field_errors"),
        ({"level": 1, "user": "ivy"}, "non_field_errors"),
        ({"level": 9}, "level"),
        ({"level": "two"}, "level"),
        ({"user": "nobody-by-that-name"}, "user"),
        ({"user": "ivy", "message": 5 * "x" * 2000}, "message"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(commander, declare, policy, people, payload, attr):
    incident = declare()
    response = client_for(commander).post(url(incident), payload, format="json")
    assert response.status_code == 400, response.content
    assert [a for a, _ in errors(response)] == [attr]
    assert not Page.objects.filter(incident=incident, reason="manual").exists()


def test_a_confidential_incident_is_404_for_who_may_not_see_it(
    outsider, declare, security_type, policy
):
    incident = declare(incident_type=security_type)
    response = client_for(outsider).post(url(incident), {"level": 2}, format="json")
    assert response.status_code == 404
    assert not Page.objects.filter(incident=incident, reason="manual").exists()


def test_paging_someone_who_may_not_see_a_confidential_incident_is_refused(
    commander, declare, security_type, policy
):
    incident = declare(incident_type=security_type)
    response = client_for(commander).post(url(incident), {"user": "ivy"}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("user", "invalid")]


def test_only_who_may_change_incidents_may_page(declare, policy, people):
    incident = declare()
    response = client_for(people["ivy"]).post(url(incident), {"level": 2}, format="json")
    assert response.status_code == 403


def test_a_cancelled_incident_is_a_409(commander, declare, policy):
    incident = declare()
    services.incident_transition(
        incident=incident, to_status=Status.CANCELLED, actor=commander, source=Source.API
    )
    response = client_for(commander).post(url(incident), {"level": 2}, format="json")
    assert response.status_code == 409
