"""The policy admins, the paging-gaps banner over the incident list, the incident's
Paging panel and the page to page someone by hand."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from incidents.models import Severity
from oncall.models import ActivationRule, EscalationPolicy, OnCallRole, Page

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
CHANGELIST = reverse("admin:incidents_incident_changelist")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_noon")]


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staffed(make_team, make_rotation, make_person, make_policy, api_service, default_policy):
    """Only SEV3 activates; the default team has it staffed; one policy, two levels."""
    ActivationRule.objects.exclude(severity__key="SEV3").delete()
    EscalationPolicy.objects.all().delete()
    team = make_team("Platform", is_default=True, services=[api_service])
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    make_rotation(team, OnCallRole.SCRIBE, members=[make_person("sam")])
    lee = make_person("lee")
    make_policy(
        levels=[
            {"name": "On call", "delay": timedelta(0), "incident_team": True},
            {"name": "Team lead", "delay": timedelta(minutes=15), "users": [lee]},
        ]
    )
    return team


def page_url(incident):
    return reverse("admin:oncall_page_incident", args=[incident.pk])


def test_the_incident_list_warns_when_activation_would_page_nobody(
    commander_client, default_policy
):
    body = commander_client.get(CHANGELIST).content.decode()
    assert "Paging gaps: declaring an incident now may page nobody." in body
    assert "no team owns a service and there is no default team" in body


def test_no_warning_when_everything_is_staffed(commander_client, staffed):
    body = commander_client.get(CHANGELIST).content.decode()
    assert "Paging gaps" not in body


def test_the_paging_panel_lists_the_pages_and_paged_nobody_warnings(
    commander_client, declare, default_policy
):
    incident = declare()  # SEV1 with no team: activation warns
    body = commander_client.get(incident.get_absolute_url()).content.decode()
    assert "<h2>Paging</h2>" in body
    assert "Paged nobody: no team owns its services" in body
    assert f'href="{page_url(incident)}"' in body


def test_the_panel_shows_who_was_paged_why_and_the_state(
    commander_client, declare, staffed, api_service
):
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV3"))
    body = commander_client.get(incident.get_absolute_url()).content.decode()
    assert "<td>tess</td><td>Team activation</td><td>as technical lead</td><td>email</td>" in (body)
    assert "paging: step 1 of 1 sent" in body


def test_paging_a_person_by_hand_from_the_admin(
    commander_client, declare, staffed, make_person, commander
):
    ivy = make_person("ivy")
    incident = declare()
    response = commander_client.post(
        page_url(incident), {"user": ivy.pk, "message": "Need your eyes"}, follow=True
    )
    assert response.redirect_chain[-1][0] == incident.get_absolute_url()
    assert "Paged ivy for" in [str(m) for m in response.context["messages"]][0]
    page = Page.objects.get(incident=incident, user=ivy)
    assert (page.reason, page.created_by) == ("manual", commander)
    assert "Need your eyes" in page.message


def test_paging_a_level_by_hand_from_the_admin(commander_client, declare, staffed):
    incident = declare()
    page = commander_client.get(page_url(incident)).content.decode()
    assert '<option value="2">L2 Team lead</option>' in page
    commander_client.post(page_url(incident), {"level": "2", "message": ""})
    assert Page.objects.get(incident=incident, reason="manual").user.username == "lee"


def test_a_refused_page_shows_the_error_and_keeps_what_was_typed(
    commander_client, declare, staffed, security_type, make_person
):
    ivy = make_person("ivy")
    incident = declare(incident_type=security_type)  # confidential: ivy may not see it
    response = commander_client.post(
        page_url(incident), {"user": ivy.pk, "message": "Typed with care"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "ivy may not see confidential" in body
    assert "Typed with care" in body
    assert not Page.objects.filter(incident=incident, reason="manual").exists()


def test_a_page_needs_a_level_or_a_person(commander_client, declare, staffed):
    incident = declare()
    response = commander_client.post(page_url(incident), {"message": "Help"})
    assert "Choose a level or a person to page" in response.content.decode()


def test_someone_who_may_not_see_the_incident_cannot_open_its_page_form(
    client, outsider, declare, security_type, staffed
):
    incident = declare(incident_type=security_type)
    client.force_login(outsider)
    assert client.get(page_url(incident)).status_code == 404


def test_the_policy_admins_show_levels_and_rules(commander_client, staffed):
    policy = EscalationPolicy.objects.get()
    body = commander_client.get(
        reverse("admin:oncall_escalationpolicy_change", args=[policy.pk])
    ).content.decode()
    assert "Team lead" in body and 'name="levels-1-users"' in body
    rules = commander_client.get(reverse("admin:oncall_activationrule_changelist"))
    assert rules.status_code == 200 and "every type" in rules.content.decode()
    stuck = commander_client.get(reverse("admin:oncall_stuckrule_changelist"))
    assert stuck.status_code == 200
