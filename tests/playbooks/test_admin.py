"""The checklist in the admin: the incident list's column, the incident page's panel, the
checklist page where steps are worked, and the templates commanders edit."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from incidents.models import Severity
from playbooks.models import ChecklistStep

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(declare, playbooks):
    return declare(severity=Severity.objects.get(key="SEV3"))


def checklist_url(incident):
    return reverse("admin:playbooks_checklist", args=[incident.pk])


def step_titled(incident, title):
    return ChecklistStep.objects.get(incident=incident, title=title)


def test_the_incident_list_shows_progress_and_overdue_steps(incident, commander_client):
    with time_machine.travel(incident.declared_at + timedelta(minutes=20), tick=False):
        page = commander_client.get(reverse("admin:incidents_incident_changelist"))
    assert page.status_code == 200
    assert "0/15" in page.content.decode() and "4 overdue" in page.content.decode()


def test_the_incident_page_shows_progress_per_phase_and_the_overdue_steps(
    incident, commander_client
):
    with time_machine.travel(incident.declared_at + timedelta(minutes=20), tick=False):
        page = commander_client.get(
            reverse("admin:incidents_incident_change", args=[incident.pk])
        ).content.decode()
    assert "Detection &amp; Triage" in page and "Post-Incident" in page
    assert "Overdue:" in page and "Confirm the scope and the user impact — due" in page
    assert checklist_url(incident) in page


def test_ticking_on_the_checklist_page(incident, commander_client, commander):
    step = step_titled(incident, "Post the first status update")
    response = commander_client.post(
        checklist_url(incident),
        {"action": f"complete-{step.pk}", f"s{step.pk}-note": "Posted"},
    )
    assert response.status_code == 302
    step.refresh_from_db()
    assert (step.status, step.completed_by, step.note) == ("done", commander, "Posted")
    page = commander_client.get(checklist_url(incident)).content.decode()
    assert "Done by alice" in page and "Reopen" in page


def test_a_refused_skip_shows_why_and_keeps_nothing(incident, commander_client):
    step = step_titled(incident, "Open the incident channel and bridge")
    response = commander_client.post(
        checklist_url(incident), {"action": f"skip-{step.pk}", f"s{step.pk}-reason": ""}
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    step.refresh_from_db()
    assert step.status == "pending"


def test_a_refused_tick_keeps_the_typed_note(incident, commander_client, commander):
    from playbooks import services

    step = step_titled(incident, "Post the first status update")
    services.checklist_step_complete(step=step, actor=commander, source="admin")
    response = commander_client.post(
        checklist_url(incident),
        {"action": f"complete-{step.pk}", f"s{step.pk}-note": "My long typed note"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "already done by alice" in page


def test_adding_a_step_on_the_page_keeps_the_form_on_error(incident, commander_client):
    response = commander_client.post(
        checklist_url(incident),
        {
            "action": "add",
            "add-title": "Call the CDN",
            "add-phase": "containment",
            "add-due_within": "0",
        },
    )
    assert response.status_code == 200
    assert 'value="Call the CDN"' in response.content.decode()
    assert not ChecklistStep.objects.filter(incident=incident, title="Call the CDN").exists()
    commander_client.post(
        checklist_url(incident),
        {
            "action": "add",
            "add-title": "Call the CDN",
            "add-phase": "containment",
            "add-due_within": "10",
        },
    )
    assert ChecklistStep.objects.filter(incident=incident, title="Call the CDN").exists()


def test_a_viewer_reads_the_checklist_but_cannot_work_it(incident, client, django_user_model):
    from tests.conftest import make_user

    viewer = make_user(django_user_model, "sam", "Stakeholders", is_staff=True)
    client.force_login(viewer)
    page = client.get(checklist_url(incident))
    assert page.status_code == 200 and "Read-only" in page.content.decode()
    step = step_titled(incident, "Post the first status update")
    response = client.post(checklist_url(incident), {"action": f"complete-{step.pk}"})
    assert response.status_code == 403
    step.refresh_from_db()
    assert step.status == "pending"


def test_a_confidential_incidents_checklist_is_a_404_for_outsiders(
    declare, playbooks, security_type, client, outsider
):
    secret = declare(incident_type=security_type, confidential=True)
    client.force_login(outsider)
    assert client.get(checklist_url(secret)).status_code == 404
    steps = client.get(reverse("admin:playbooks_checkliststep_changelist")).content.decode()
    assert "Isolate the affected systems" not in steps


def test_commanders_edit_playbooks_with_their_steps(playbooks, commander_client):
    playbook = playbooks["performance"]
    page = commander_client.get(reverse("admin:playbooks_playbook_change", args=[playbook.pk]))
    assert page.status_code == 200
    assert "Confirm the degradation against the baseline" in page.content.decode()
    changelist = commander_client.get(reverse("admin:playbooks_playbook_changelist"))
    assert "Security breach" in changelist.content.decode()


def test_the_checklist_page_costs_the_same_few_queries_however_many_steps(
    incident, commander, commander_client, django_assert_max_num_queries
):
    commander_client.get(checklist_url(incident))
    with django_assert_max_num_queries(12):
        assert commander_client.get(checklist_url(incident)).status_code == 200
    from playbooks import services

    for n in range(30):
        step = services.checklist_step_add(
            incident=incident,
            title=f"extra {n}",
            phase="investigation",
            actor=commander,
            source="admin",
        )
        services.checklist_step_complete(step=step, note="x", actor=commander, source="admin")
    with django_assert_max_num_queries(12):
        assert commander_client.get(checklist_url(incident)).status_code == 200
