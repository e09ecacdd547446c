"""The checklist over the API: read it, apply a playbook or add a step, work one step."""

from datetime import timedelta

import pytest
import time_machine

from incidents.models import Severity, TimelineEvent
from playbooks.models import ChecklistStep
from tests.api import client_for, errors

pytestmark = pytest.mark.django_db


def url(incident, step=None):
    base = f"/api/v1/incidents/{incident.reference}/checklist/"
    return f"{base}{step.pk}/" if step else base


@pytest.fixture
def sev3(default_policy):
    return Severity.objects.get(key="SEV3")


@pytest.fixture
def incident(declare, playbooks, sev3):
    return declare(severity=sev3)


def test_get_shows_progress_per_phase_and_every_step(incident, responder):
    with time_machine.travel(incident.declared_at + timedelta(minutes=20), tick=False):
        response = client_for(responder).get(url(incident))
    assert response.status_code == 200
    body = response.json()
    assert (body["incident"], body["total"], body["resolved"]) == (incident.reference, 15, 0)
    assert body["required_open"] == 12 and body["overdue"] == 4
    assert [phase["phase"] for phase in body["phases"]] == [
        "detection",
        "investigation",
        "containment",
        "communication",
        "post_incident",
    ]
    first = body["steps"][0]
    assert first["title"] == "Confirm the scope and the user impact"
    assert first["playbook"] == "outage" and first["due_within_minutes"] == 15
    assert first["overdue"] is True and first["status"] == "pending"


def test_patch_ticks_skips_and_reopens_a_step(incident, responder):
    api = client_for(responder)
    step = ChecklistStep.objects.filter(incident=incident).order_by("pk").first()
    done = api.patch(url(incident, step), {"status": "done", "note": "Scope: EU only"})
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["completed_by"], done.json()["note"]) == (
        "done",
        "bob",
        "Scope: EU only",
    )
    again = api.patch(url(incident, step), {"status": "done"})
    assert again.status_code == 409
    reopened = api.patch(url(incident, step), {"status": "pending"})
    assert reopened.json()["status"] == "pending"
    skipped = api.patch(url(incident, step), {"status": "skipped", "reason": "Known scope"})
    assert skipped.json()["status"] == "skipped"
    kinds = TimelineEvent.objects.filter(incident=incident, source="api").values_list(
        "kind", flat=True
    )
    assert list(kinds) == ["checklist"] * 3


def test_skipping_without_a_reason_is_a_400_and_changes_nothing(incident, responder):
    step = ChecklistStep.objects.filter(incident=incident).first()
    response = client_for(responder).patch(url(incident, step), {"status": "skipped"})
    assert response.status_code == 400
    assert errors(response) == [("reason", "invalid")]
    step.refresh_from_db()
    assert step.status == "pending"


def test_post_adds_a_step_or_applies_a_playbook(incident, responder, major_outage):
    api = client_for(responder)
    added = api.post(
        url(incident),
        {
            "title": "Call the CDN",
            "phase": "containment",
            "required": True,
            "due_within_minutes": 10,
        },
    )
    assert added.status_code == 201 and added.json()["total"] == 16
    applied = api.post(url(incident), {"playbook": "major-outage"})
    assert applied.status_code == 201 and applied.json()["total"] == 18
    assert api.post(url(incident), {"playbook": "major-outage"}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "x"},
        {"title": "x", "phase": "lunch"},
        {"playbook": "no-such-playbook"},
        {"playbook": "outage", "title": "both"},
        {"title": "x", "phase": "detection", "due_within_minutes": 0},
        {"title": "x" * 201, "phase": "detection"},
        {"title": "x", "phase": "detection", "runbook_url": "javascript:alert(1)"},
    ],
)
def test_bad_input_is_a_clear_4xx_and_adds_nothing(incident, responder, body):
    response = client_for(responder).post(url(incident), body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]
    assert ChecklistStep.objects.filter(incident=incident).count() == 15


def test_a_step_of_another_incident_is_a_404(incident, declare, sev3, responder):
    other = declare(severity=sev3, title="Other")
    step = ChecklistStep.objects.filter(incident=other).first()
    response = client_for(responder).patch(url(incident, step), {"status": "done"})
    assert response.status_code == 404


def test_a_confidential_incidents_checklist_is_hidden_from_outsiders(
    declare, playbooks, security_type, sev3, outsider, security_member
):
    secret = declare(severity=sev3, incident_type=security_type, confidential=True)
    step = ChecklistStep.objects.filter(incident=secret).first()
    api = client_for(outsider)
    assert api.get(url(secret)).status_code == 404
    assert api.patch(url(secret, step), {"status": "done"}).status_code == 404
    step.refresh_from_db()
    assert step.status == "pending"
    assert client_for(security_member).get(url(secret)).status_code == 200


def test_reading_needs_the_view_permission_and_working_the_change_one(incident, django_user_model):
    from tests.conftest import make_user

    viewer = make_user(django_user_model, "sam", "Stakeholders", is_staff=True)
    api = client_for(viewer)
    assert api.get(url(incident)).status_code == 200
    step = ChecklistStep.objects.filter(incident=incident).first()
    assert api.patch(url(incident, step), {"status": "done"}).status_code == 403
    assert api.post(url(incident), {"title": "x", "phase": "detection"}).status_code == 403


def test_the_checklist_reads_in_a_fixed_number_of_queries(
    incident, responder, django_assert_max_num_queries
):
    api = client_for(responder)
    api.get(url(incident))  # the key's last use is written once
    with django_assert_max_num_queries(8):
        assert api.get(url(incident)).status_code == 200
