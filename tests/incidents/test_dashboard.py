"""The commander's dashboard at /admin/: what needs attention now with its timers and
one-click actions, my work, what is open now, panels from other apps, and the stock app
index one click away."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents import services
from incidents.admin import contributions
from incidents.admin.contributions import DashboardAction, DashboardPanel
from incidents.admin.dashboard import action_button
from incidents.errors import DomainError
from incidents.models import Audience, Role, Source, Status
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("core_only")]

INDEX = reverse("admin:index")
APPS = reverse("admin:apps")
LIVE = reverse("admin:dashboard_live")
ACT = reverse("admin:dashboard_act")


def body(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def section(page: str, name: str) -> str:
    """The HTML of one dashboard section (attention, mine, now)."""
    start = page.index(f'id="dash-{name}"')
    end = page.find("</section>", start)
    return page[start:end]


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def act(client, action: str, target) -> object:
    return client.post(ACT, {"action": action, "target": target})


# --- who sees what -------------------------------------------------------------------


def test_admin_index_is_the_dashboard_for_incident_staff(commander_client):
    response = commander_client.get(INDEX)
    page = body(response)
    assert "admin/dashboard.html" in [template.name for template in response.templates]
    for title in ("Needs attention now", "My work", "Now"):
        assert title in page
    # The stock index is one click away, and the refresh is served from our own files.
    assert f'href="{APPS}"' in page
    assert "django_htmx/htmx-2.min.js" in page
    assert f'hx-get="{LIVE}"' in page


def test_the_apps_page_is_the_stock_index_with_a_way_back(commander_client):
    page = body(commander_client.get(APPS))
    assert "Background tasks" in page or "Incidents" in page
    assert 'id="dash-attention"' not in page
    assert f'<a href="{INDEX}">Dashboard</a>' in page


def test_staff_without_incident_access_get_the_stock_index(client, django_user_model):
    clerk = make_user(django_user_model, "clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_service"))
    client.force_login(clerk)
    page = body(client.get(INDEX))
    assert "Needs attention now" not in page
    assert "Services" in page
    # Nor the dashboard's pieces, nor its actions.
    assert client.get(LIVE).status_code == 302
    response = act(client, "core.acknowledge", 1)
    assert "That action is not available." in messages_of(response)


# --- needs attention now -------------------------------------------------------------


def test_an_unacknowledged_incident_shows_its_live_timer_and_an_acknowledge_button(
    commander_client, declare
):
    incident = declare(title="Checkout is down")
    with time_machine.travel(incident.declared_at + timedelta(minutes=20), tick=False):
        attention = section(body(commander_client.get(INDEX)), "attention")
    assert incident.reference in attention
    assert 'title="Checkout is down"' in attention
    assert "Not acknowledged, overdue" in attention
    assert "OVERDUE by 5m" in attention
    assert 'value="core.acknowledge"' in attention


def test_acknowledge_button_acknowledges_and_comes_back_with_a_message(
    commander_client, declare, commander
):
    incident = declare()
    response = act(commander_client, "core.acknowledge", incident.pk)
    assert response.status_code == 302 and response.url == INDEX
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
    assert incident.history.latest().history_user == commander
    assert f"Acknowledged {incident.reference}." in messages_of(response)
    # Once acknowledged it no longer needs attention for that.
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert 'value="core.acknowledge"' not in attention


def test_a_refused_action_is_an_error_message_not_an_error_page(commander_client, declare):
    incident = declare()
    act(commander_client, "core.acknowledge", incident.pk)
    response = act(commander_client, "core.acknowledge", incident.pk)
    assert response.status_code == 302
    assert any("already acknowledged" in text for text in messages_of(response))


def test_an_unknown_action_or_a_get_changes_nothing(commander_client, declare):
    incident = declare()
    assert commander_client.get(ACT).status_code == 405
    response = act(commander_client, "core.nothing", incident.pk)
    assert "That action is not available." in messages_of(response)
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


def test_make_me_commander_on_a_sev2_without_one(commander_client, declare, sev2, commander):
    incident = declare(title="Search is slow", severity=sev2)
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert "No commander" in attention
    assert 'value="core.command"' in attention
    act(commander_client, "core.command", incident.pk)
    assert incident.roles.filter(
        role=Role.COMMANDER, user=commander, relieved_at__isnull=True
    ).exists()
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert 'value="core.command"' not in attention


def test_a_commanded_sev1_is_not_flagged_for_a_commander(commander_client, declare, commander):
    incident = declare(commander=commander)
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert incident.reference in attention  # still unacknowledged
    assert "No commander" not in attention


def test_a_triage_candidate_waits_with_an_accept_button(commander_client, declare):
    candidate = declare(title="Disk filling", triage=True, actor=None, source=Source.SYSTEM)
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert "Triage candidate waiting" in attention
    assert 'value="core.accept"' in attention
    response = act(commander_client, "core.accept", candidate.pk)
    candidate.refresh_from_db()
    assert candidate.status == Status.DECLARED
    assert f"Accepted {candidate.reference} from triage: it is declared." in messages_of(response)


def test_an_overdue_status_update_links_to_the_incident_to_post_one(commander_client, declare):
    incident = declare()
    services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    services.status_update_post(
        incident=incident, audience=Audience.INTERNAL, summary="Looking", source=Source.ADMIN
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=45), tick=False):
        attention = section(body(commander_client.get(INDEX)), "attention")
    assert "Status update overdue" in attention
    assert "update overdue 15m" in attention
    assert f'href="{incident.get_absolute_url()}#wr-update-box"' in attention


def test_nothing_to_do_says_so(commander_client, declare, commander):
    incident = declare(commander=commander)
    services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert "Nothing needs attention" in attention


def test_closed_incidents_never_need_attention(commander_client, declare, sev2):
    incident = declare(severity=sev2)
    services.incident_transition(incident=incident, to_status=Status.CANCELLED, source=Source.ADMIN)
    assert incident.reference not in section(body(commander_client.get(INDEX)), "attention")


def test_most_urgent_first(commander_client, declare, sev2):
    with time_machine.travel(timezone.now() - timedelta(hours=3), tick=False):
        overdue_sev2 = declare(title="Old and late", severity=sev2)
    fresh_sev1 = declare(title="Just now")
    attention = section(body(commander_client.get(INDEX)), "attention")
    assert attention.index(overdue_sev2.reference) < attention.index(fresh_sev1.reference)


# --- confidentiality -------------------------------------------------------------------


def test_confidential_incidents_stay_hidden_from_outsiders(
    client, declare, security_type, outsider, commander
):
    secret = declare(title="Credential leak", incident_type=security_type)
    assert secret.confidential
    client.force_login(outsider)
    page = body(client.get(INDEX))
    assert secret.reference not in page and "Credential leak" not in page
    assert act(client, "core.acknowledge", secret.pk).status_code == 404
    secret.refresh_from_db()
    assert secret.acknowledged_at is None
    # Its participants see it (the declarer; the clients are one and the same).
    client.force_login(commander)
    assert secret.reference in body(client.get(INDEX))


def test_a_read_only_user_sees_the_rows_but_no_buttons(client, declare, django_user_model):
    reader = make_user(django_user_model, "reader", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_incident"))
    incident = declare()
    client.force_login(reader)
    attention = section(body(client.get(INDEX)), "attention")
    assert incident.reference in attention
    assert "core.acknowledge" not in attention
    assert act(client, "core.acknowledge", incident.pk).status_code == 403


# --- my work and now -------------------------------------------------------------------


def test_my_work_lists_the_open_incidents_where_i_hold_a_role(
    client, declare, responder, commander
):
    mine = declare(title="I am the scribe")
    services.role_assign(
        incident=mine, role=Role.SCRIBE, user=responder, actor=commander, source=Source.ADMIN
    )
    theirs = declare(title="Not mine")
    client.force_login(responder)
    work = section(body(client.get(INDEX)), "mine")
    assert mine.reference in work and "Scribe" in work
    assert theirs.reference not in work


def test_now_counts_open_incidents_by_severity_with_links(commander_client, declare, sev1, sev2):
    declare()
    declare()
    declare(severity=sev2)
    closed = declare(severity=sev2)
    services.incident_transition(incident=closed, to_status=Status.CANCELLED, source=Source.ADMIN)
    now = section(body(commander_client.get(INDEX)), "now")
    assert '<span class="dash-count">2</span> <span class="dash-count-label">Critical' in now
    assert '<span class="dash-count">1</span> <span class="dash-count-label">High' in now
    assert f"?open=yes&amp;severity__id__exact={sev2.pk}" in now


# --- the refresh ---------------------------------------------------------------------


def test_the_live_partial_is_the_sections_alone(commander_client, declare):
    incident = declare()
    page = body(commander_client.get(LIVE, HTTP_HX_REQUEST="true"))
    assert incident.reference in page
    assert "<html" not in page and 'id="dash-attention"' in page


# --- panels from other apps ---------------------------------------------------------------


@pytest.fixture
def contributed_panel(monkeypatch):
    """A panel with a one-click action, as another app would contribute it."""
    monkeypatch.setattr(contributions, "_dashboard", [])
    done = []

    def run(request, target):
        if target == "refuse":
            raise DomainError("The widget says no.")
        done.append(target)
        return f"Poked {target}."

    def render(request):
        return format_html("<p>Widgets: 3</p>{}", action_button(request, "test.poke", "w1", "Poke"))

    contributions.contribute_dashboard(
        DashboardPanel(
            "Widgets", render, section="now", actions=(DashboardAction("test.poke", run),)
        ),
        DashboardPanel("Silent", lambda request: None, section="mine"),
    )
    return done


def test_a_contributed_panel_shows_in_its_section_and_its_action_runs(
    commander_client, contributed_panel
):
    page = body(commander_client.get(INDEX))
    assert "Widgets: 3" in section(page, "now")
    assert "Silent" not in page  # a panel with nothing to say shows nothing
    response = act(commander_client, "test.poke", "w1")
    assert contributed_panel == ["w1"]
    assert "Poked w1." in messages_of(response)
    response = act(commander_client, "test.poke", "refuse")
    assert "The widget says no." in messages_of(response)


def test_a_panel_must_name_a_known_section():
    with pytest.raises(ValueError):
        DashboardPanel("Odd", lambda request: None, section="sidebar")


# --- cost ---------------------------------------------------------------------------------


def _populate(declare, sev2, responder, commander, count: int) -> None:
    for number in range(count):
        incident = declare(title=f"Incident {number}", severity=sev2 if number % 2 else None)
        if number % 3 == 0:
            services.role_assign(
                incident=incident,
                role=Role.TECHNICAL_LEAD,
                user=commander,
                actor=commander,
                source=Source.ADMIN,
            )
        if number % 4 == 0:
            services.incident_acknowledge(incident=incident, source=Source.ADMIN)
            services.status_update_post(
                incident=incident, audience=Audience.INTERNAL, summary="x", source=Source.ADMIN
            )


def _declare_defaulting(declare, sev1):
    def _declare(**fields):
        if fields.get("severity") is None:
            fields["severity"] = sev1
        return declare(**fields)

    return _declare


def test_dashboard_costs_the_same_queries_whatever_the_data(
    commander_client, declare, sev1, sev2, responder, commander, django_assert_max_num_queries
):
    make = _declare_defaulting(declare, sev1)
    _populate(make, sev2, responder, commander, 5)
    # The core's sections and every app's panel: about 26, however many incidents.
    with django_assert_max_num_queries(30) as few:
        body(commander_client.get(INDEX))
    _populate(make, sev2, responder, commander, 30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = body(commander_client.get(INDEX))
    assert page.count("dash-ref") >= 25
