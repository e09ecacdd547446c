"""The public status page: no login, nothing confidential or internal, right conditions."""

import xml.etree.ElementTree as ET

import pytest

from incidents import services
from incidents.models import Audience, Source, Status


@pytest.fixture
def public_outage(declare, api_service):
    incident = declare(title="Checkout returns 502", services=[api_service])
    services.status_update_post(
        incident=incident,
        audience=Audience.PUBLIC,
        summary="We are looking into errors.",
        source=Source.ADMIN,
    )
    services.status_update_post(
        incident=incident,
        audience=Audience.INTERNAL,
        summary="Suspect the db-7 failover.",
        source=Source.ADMIN,
    )
    return incident


@pytest.fixture
def secret(declare, security_type, api_service):
    return declare(
        title="Token leaked on GitHub", incident_type=security_type, services=[api_service]
    )


def test_status_page_needs_no_login_and_shows_public_updates(client, public_outage):
    body = client.get("/status/").content.decode()
    assert "Checkout returns 502" in body
    assert "We are looking into errors." in body
    assert "Major outage" in body  # SEV1 on the Public API


def test_status_page_hides_internal_updates_and_confidential_incidents(
    client, public_outage, secret
):
    for url in ("/status/", "/status.json", "/status/feed/"):
        body = client.get(url).content.decode()
        assert "Suspect the db-7 failover." not in body, url
        assert "Token leaked" not in body, url
        assert secret.reference not in body, url


def test_confidential_incident_does_not_change_service_condition(client, secret):
    data = client.get("/status.json").json()
    assert data["overall"] == "operational"
    assert {s["slug"]: s["condition"] for s in data["services"]} == {"api": "operational"}


def test_non_production_and_triage_incidents_stay_off_the_page(client, declare, api_service):
    declare(title="Staging flake", environment="staging", services=[api_service])
    declare(title="Alert storm", triage=True, services=[api_service])
    body = client.get("/status/").content.decode()
    assert "Staging flake" not in body and "Alert storm" not in body
    assert "All systems operational" in body


def test_json_lists_services_open_and_recent_incidents(client, public_outage, sev2, declare):
    resolved = declare(title="Search slow", severity=sev2)
    services.incident_transition(incident=resolved, to_status=Status.RESOLVED, source=Source.ADMIN)
    data = client.get("/status.json").json()
    assert data["overall"] == "major_outage"
    [open_one] = data["open_incidents"]
    assert open_one["reference"] == public_outage.reference
    assert [u["summary"] for u in open_one["updates"]] == ["We are looking into errors."]
    assert [i["title"] for i in data["recent_incidents"]] == ["Search slow"]


def test_private_services_are_not_listed(client, api_service):
    api_service.public = False
    api_service.save()
    assert client.get("/status.json").json()["services"] == []


def test_atom_feed_carries_public_updates(client, public_outage):
    response = client.get("/status/feed/")
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    entries = root.findall("atom:entry", ns)
    assert [e.find("atom:summary", ns).text for e in entries] == ["We are looking into errors."]
