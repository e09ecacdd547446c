"""Unprintable characters never reach a page, a CSV cell or the XML feed.

A pasted terminal line carries escapes (ESC, vertical tab, NUL); XML 1.0 cannot carry
them at all, so one of them in a public update used to break /status/feed/ for good.
Every text a person or client writes passes through clean_text, which drops them.
"""

import xml.etree.ElementTree as ET

import pytest

from incidents import services
from incidents.errors import DomainError
from incidents.models import Audience, Source, StatusUpdate
from postmortems import services as pm_services
from remediation import services as remediation_services
from tests.api import client_for

DIRTY = "Disk \x0bfull\x1b[31m on db-7\x00\ud800\ufffe"
CLEAN = "Disk full[31m on db-7"


@pytest.fixture
def incident(declare, commander, api_service):
    return declare(commander=commander, services=[api_service])


def test_clean_text_drops_unprintable_characters_but_keeps_tabs_and_line_breaks():
    kept = "line one\n\tline two\r\nline three — ünïcødé ✅"
    assert services.clean_text(kept, field="x", limit=100) == kept
    assert services.clean_text(DIRTY, field="x", limit=100) == CLEAN


def test_a_required_text_of_only_unprintable_characters_is_refused(incident):
    with pytest.raises(DomainError) as refused:
        services.timeline_add_entry(
            incident=incident, kind="note", summary="\x0b\x1b", source=Source.ADMIN
        )
    assert refused.value.field == "summary"


@pytest.mark.parametrize(
    "write, read",
    [
        (
            lambda i: services.status_update_post(
                incident=i,
                audience=Audience.PUBLIC,
                summary=DIRTY,
                source=Source.ADMIN,
            ),
            lambda i: i.updates.get().summary,
        ),
        (
            lambda i: services.timeline_add_entry(
                incident=i, kind="note", summary=DIRTY, source=Source.ADMIN
            ),
            lambda i: i.timeline.filter(kind="note").get().summary,
        ),
        (
            lambda i: services.incident_update_details(
                incident=i,
                summary=DIRTY,
                customer_impact=DIRTY,
                title=DIRTY,
                source=Source.ADMIN,
            ),
            lambda i: {i.summary, i.customer_impact, i.title},
        ),
        (
            lambda i: services.incident_transition(
                incident=i, to_status="identified", note=DIRTY, source=Source.ADMIN
            ),
            lambda i: i.timeline.filter(kind="status_change").get().details["note"],
        ),
        (
            lambda i: services.incident_change_severity(
                incident=i,
                severity=i.severity.__class__.objects.get(key="SEV2"),
                reason=DIRTY,
                source=Source.ADMIN,
            ),
            lambda i: i.timeline.filter(kind="severity_change").get().details["reason"],
        ),
    ],
    ids=["status update", "timeline entry", "details", "transition note", "severity reason"],
)
def test_incident_services_store_text_without_unprintable_characters(incident, write, read):
    write(incident)
    incident.refresh_from_db()
    stored = read(incident)
    assert stored == CLEAN or stored == {CLEAN}


def test_declaring_drops_them_from_summary_and_impact(declare):
    incident = declare(title=DIRTY, summary=DIRTY, customer_impact=DIRTY)
    assert (incident.title, incident.summary, incident.customer_impact) == (CLEAN,) * 3


def test_review_and_action_item_texts_are_cleaned_too(incident, commander):
    postmortem = pm_services.postmortem_create(
        incident=incident, actor=commander, source=Source.ADMIN
    )
    pm_services.postmortem_update(
        postmortem=postmortem,
        root_cause=DIRTY,
        contributing_factors=[("process", DIRTY)],
        source=Source.ADMIN,
    )
    postmortem.refresh_from_db()
    assert postmortem.root_cause == CLEAN
    assert postmortem.contributing_factors.get().description == CLEAN
    item = remediation_services.action_item_create(
        incident=incident,
        title=DIRTY,
        description=DIRTY,
        category="technical",
        actor=commander,
        source=Source.ADMIN,
    )
    assert (item.title, item.description) == (CLEAN, CLEAN)


def test_the_feed_stays_valid_xml_after_a_public_update_with_control_characters(
    client, incident, commander
):
    api = client_for(commander)
    response = api.post(
        f"/api/v1/incidents/{incident.reference}/updates/",
        {"audience": "public", "summary": "We are \u000binvestigating."},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["summary"] == "We are investigating."
    feed = client.get("/status/feed/")
    assert feed.status_code == 200
    entries = ET.fromstring(feed.content).findall("{http://www.w3.org/2005/Atom}entry")
    assert [entry.findtext("{http://www.w3.org/2005/Atom}summary") for entry in entries] == [
        "We are investigating."
    ]


def test_the_feed_survives_a_row_written_before_the_services_cleaned_text(client, incident):
    services.status_update_post(
        incident=incident, audience=Audience.PUBLIC, summary="Looking", source=Source.ADMIN
    )
    StatusUpdate.objects.update(summary="Old \x0brow")  # as an older release stored it
    feed = client.get("/status/feed/")
    assert feed.status_code == 200
    assert b"Old row" in feed.content
    ET.fromstring(feed.content)
