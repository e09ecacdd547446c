"""The dashboard's on-call panels: pages nobody answered (acknowledged in one click by
whoever may), and who is on call now."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Role, Source, Status
from oncall.models import OnCallRole, Page, Urgency

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
ACT = reverse("admin:dashboard_act")


def section(client, name) -> str:
    page = client.get(INDEX).content.decode()
    start = page.index(f'id="dash-{name}"')
    return page[start : page.index("</section>", start)]


@pytest.fixture
def page_for(declare, core_only):
    def _page(user, incident=None):
        incident = incident or declare(title="Payments failing")
        return Page.objects.create(
            incident=incident,
            user=user,
            reason=Page.Reason.MANUAL,
            urgency=Urgency.HIGH,
            plan=[{"after": 0, "channel": "email", "address": user.email}],
            steps_sent=1,
            created_at=timezone.now(),
        )

    return _page


def test_an_unanswered_page_shows_and_its_person_acknowledges_it(client, page_for, make_person):
    from django.contrib.auth.models import Group

    dora = make_person("dora", is_staff=True)
    dora.groups.add(Group.objects.get(name="Responders"))
    page = page_for(dora)
    client.force_login(dora)
    attention = section(client, "attention")
    assert "Pages not answered" in attention and "all 1 steps sent, unanswered" in attention
    assert 'value="oncall.acknowledge_page"' in attention
    response = client.post(ACT, {"action": "oncall.acknowledge_page", "target": page.pk})
    page.refresh_from_db()
    assert page.acknowledged_at is not None
    # Answering the page acknowledges its incident too (paging.page_acknowledge).
    assert page.incident.status == Status.INVESTIGATING or page.incident.acknowledged_at
    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert f"Acknowledged the page to dora for {page.incident.reference}." in texts
    assert "Pages not answered" not in section(client, "attention")


def test_someone_else_sees_the_page_but_may_not_acknowledge_it(
    client, page_for, make_person, responder
):
    dora = make_person("dora")
    page = page_for(dora)
    client.force_login(responder)
    attention = section(client, "attention")
    assert page.incident.reference in attention
    assert 'value="oncall.acknowledge_page"' not in attention
    response = client.post(ACT, {"action": "oncall.acknowledge_page", "target": page.pk})
    assert response.status_code == 403


def test_the_commander_may_answer_for_the_person_paged(
    client, page_for, make_person, responder, declare, commander
):
    incident = declare()
    services.role_assign(
        incident=incident, role=Role.COMMANDER, user=responder, source=Source.ADMIN
    )
    page_for(make_person("dora"), incident)
    client.force_login(responder)
    assert 'value="oncall.acknowledge_page"' in section(client, "attention")


def test_who_is_on_call_now(commander_client, make_person, make_team, make_rotation):
    erin = make_person("erin")
    team = make_team("Payments", members=[erin])
    make_rotation(team, OnCallRole.RESPONDER, members=[erin])
    now = section(commander_client, "now")
    assert "On call now" in now and "Payments" in now and "erin" in now
