"""The oncall paging provider: a triage candidate pages the on-call responder of the
team owning its service; nobody on call says so and tells the lead."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from incidents import extensions
from incidents.models import Notification
from oncall.models import OnCallRole, Page
from oncall.provider import OnCallPaging

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("at_noon")]


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def team(make_team, api_service):
    return make_team("Platform", services=[api_service])


def test_the_oncall_app_pages_instead_of_the_ladder():
    provider = extensions.paging.get()
    assert isinstance(provider, OnCallPaging)
    assert provider.uses_ladder is False


def test_a_triage_candidate_pages_the_oncall_responder_of_its_services_team(
    declare, team, make_rotation, make_person, api_service
):
    make_rotation(team, OnCallRole.RESPONDER, members=[make_person("rita")])
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    candidate = declare(services=[api_service], triage=True)
    page = Page.objects.get(incident=candidate)
    assert (page.user.username, page.reason, page.urgency) == ("rita", "triage", "high")
    assert Notification.objects.filter(
        incident=candidate, event="page", recipient=page.user
    ).exists()
    assert candidate.timeline.filter(kind="paging", summary__contains="to triage it").exists()


def test_without_a_responder_the_technical_lead_triages(
    declare, team, make_rotation, make_person, api_service, sev2
):
    make_rotation(team, OnCallRole.TECHNICAL_LEAD, members=[make_person("tess")])
    make_rotation(team, OnCallRole.SCRIBE, members=[make_person("sam")])
    candidate = declare(services=[api_service], triage=True)
    assert list(Page.objects.filter(incident=candidate).values_list("user__username")) == [
        ("tess",)
    ]


def test_with_neither_anyone_on_call_for_the_team_triages(
    declare, team, make_rotation, make_person, api_service
):
    make_rotation(team, OnCallRole.SCRIBE, members=[make_person("sam")])
    candidate = declare(services=[api_service], triage=True)
    assert list(Page.objects.filter(incident=candidate).values_list("user__username")) == [("sam",)]


def test_nobody_on_call_warns_on_the_timeline_and_tells_the_lead(
    declare, team, api_service, commander
):
    candidate = declare(services=[api_service], triage=True)
    assert not Page.objects.filter(incident=candidate).exists()
    assert candidate.timeline.filter(
        kind="paging", summary="Paged nobody to triage it: nobody is on call in Platform"
    ).exists()
    told = Notification.objects.get(incident=candidate, event="page_problem")
    assert told.recipient == commander


def test_the_escalation_round_follows_the_policies(declare, make_policy, make_person):
    make_policy(levels=[{"name": "Duty", "delay": timedelta(0), "users": [make_person("ivy")]}])
    incident = declare()
    assert extensions.paging.get().escalate() == 1
    assert Page.objects.get(incident=incident, reason="escalation").user.username == "ivy"


def test_a_candidate_nobody_leads_tells_the_commander_on_call(
    declare, team, api_service, make_team, make_rotation, make_person
):
    # An alert raised it (no commander, nobody declared it), and its responder cannot be
    # reached: the rota's commander hears of it.
    rita = make_person("rita")
    rita.email = ""
    rita.save()
    make_rotation(team, OnCallRole.RESPONDER, members=[rita])
    desk = make_team("Incident response", is_default=True)
    make_rotation(desk, OnCallRole.COMMANDER, members=[make_person("cora")])
    candidate = declare(services=[api_service], triage=True, actor=None)
    assert candidate.timeline.filter(summary__contains="Cannot page rita").exists()
    told = Notification.objects.get(incident=candidate, event="page_problem")
    assert told.recipient.username == "cora"
