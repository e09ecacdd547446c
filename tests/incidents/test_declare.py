"""Declaring in one dialog: the declare page and its htmx fragment, the header button on
every admin page, and the stock add page sending people there."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from incidents.models import Incident, Role, Status, TimelineEvent
from tests.conftest import make_user
from tests.forms import form_data

DECLARE = reverse("admin:incidents_incident_declare")
ADD = reverse("admin:incidents_incident_add")
HTMX = {"HTTP_HX_REQUEST": "true"}


def declare_form(client, **headers):
    page = client.get(DECLARE, **headers)
    assert page.status_code == 200
    return page.content.decode(), form_data(page.content.decode(), "declare-form")


@pytest.fixture
def typed(sev1, outage, api_service):
    """What a commander types into the dialog."""
    return {
        "title": "Checkout returns 502",
        "severity": str(sev1.pk),
        "incident_type": str(outage.pk),
        "environment": "production",
        "services": [str(api_service.pk)],
        "summary": "5xx on every checkout since 10:02",
    }


@pytest.mark.django_db
def test_declare_form_asks_only_what_is_known_in_the_first_minute(commander_client, sev1):
    _, data = declare_form(commander_client)
    fields = set(data) - {"csrfmiddlewaretoken"}
    # Nothing ticked yet sends nothing (severity, services); the rest have a value.
    assert fields == {"title", "incident_type", "environment", "summary", "commander"}
    assert data["environment"] == "production"


@pytest.mark.django_db
def test_each_severity_shows_its_description_and_response_times(commander_client, default_policy):
    body, _ = declare_form(commander_client)
    assert "Whole service down, data lost or exposed, or an active security breach." in body
    assert "acknowledge within 15 minutes · updates every 30 minutes" in body
    assert "acknowledge within 1 hour · updates every 2 hours" in body
    assert "acknowledge within 4 hours (business hours) · updates daily" in body
    assert "acknowledge within 5 days (business days) · updates weekly" in body
    assert "post-mortem within 7 days" in body and "post-mortem optional" in body


@pytest.mark.django_db
def test_commander_defaults_to_whoever_declares(commander_client, commander, typed):
    _, data = declare_form(commander_client)
    assert data["commander"] == str(commander.pk)
    data.update(typed)
    commander_client.post(DECLARE, data)
    incident = Incident.objects.get(title="Checkout returns 502")
    assert incident.roles.get(role=Role.COMMANDER, relieved_at__isnull=True).user == commander


@pytest.mark.django_db
def test_declaring_someone_else_as_commander_or_nobody(
    commander_client, responder, typed, django_user_model
):
    _, data = declare_form(commander_client)
    commander_client.post(DECLARE, {**data, **typed, "commander": str(responder.pk)})
    incident = Incident.objects.get(title="Checkout returns 502")
    assert incident.roles.get(role=Role.COMMANDER).user == responder
    commander_client.post(DECLARE, {**data, **typed, "title": "Nobody yet", "commander": ""})
    assert not Incident.objects.get(title="Nobody yet").roles.exists()


@pytest.mark.django_db
def test_declaring_lands_on_the_new_incidents_war_room_page(
    commander_client, commander, typed, api_service
):
    _, data = declare_form(commander_client)
    response = commander_client.post(DECLARE, {**data, **typed})
    incident = Incident.objects.get(title="Checkout returns 502")
    assert response.status_code == 302
    assert response["Location"] == incident.get_absolute_url()
    assert incident.status == Status.DECLARED
    assert incident.summary == "5xx on every checkout since 10:02"
    assert list(incident.services.all()) == [api_service]
    declared = incident.timeline.get(kind=TimelineEvent.Kind.DECLARED)
    assert (declared.source, declared.author) == ("admin", commander)
    page = commander_client.get(response["Location"])
    assert f"Declared {incident.reference}" in page.content.decode()


@pytest.mark.django_db
def test_an_invalid_declaration_keeps_everything_typed(commander_client, typed, api_service):
    _, data = declare_form(commander_client)
    data.update(typed, title="", severity="")
    response = commander_client.post(DECLARE, data)
    assert response.status_code == 200
    again = form_data(response.content.decode(), "declare-form")
    assert again["summary"] == typed["summary"]
    assert again["services"] == str(api_service.pk)
    assert again["incident_type"] == typed["incident_type"]
    assert "This field is required." in response.content.decode()
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_refusal_by_the_service_keeps_everything_typed(commander_client, typed):
    # Only unprintable characters: the form sees a title, the service an empty one.
    _, data = declare_form(commander_client)
    data.update(typed, title="\x07\x07")
    response = commander_client.post(DECLARE, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "A title is required." in body
    assert form_data(body, "declare-form")["summary"] == typed["summary"]
    assert not Incident.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("service_id", ["9" * 30, "-" + "9" * 30])
def test_a_service_id_past_the_columns_range_is_refused_not_a_500(
    commander_client, typed, service_id
):
    _, data = declare_form(commander_client)
    data.update(typed, services=service_id)
    response = commander_client.post(DECLARE, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "is not one of the available choices" in body
    assert form_data(body, "declare-form")["summary"] == typed["summary"]
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_the_dialog_fetches_the_form_alone(commander_client, default_policy):
    body, data = declare_form(commander_client, **HTMX)
    assert "<html" not in body and 'id="declare-form"' in body
    assert f'hx-post="{DECLARE}"' in body
    assert "acknowledge within 15 minutes" in body
    assert "commander" in data


@pytest.mark.django_db
def test_declaring_in_the_dialog_redirects_the_page_to_the_war_room(commander_client, typed):
    _, data = declare_form(commander_client, **HTMX)
    response = commander_client.post(DECLARE, {**data, **typed}, **HTMX)
    incident = Incident.objects.get(title="Checkout returns 502")
    assert response.status_code == 200
    assert response["HX-Redirect"] == incident.get_absolute_url()


@pytest.mark.django_db
def test_a_refusal_in_the_dialog_shows_the_form_again_inside_it(commander_client, typed):
    _, data = declare_form(commander_client, **HTMX)
    response = commander_client.post(DECLARE, {**data, **typed, "title": ""}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps in only successful answers
    assert "HX-Redirect" not in response
    assert "<html" not in body and "This field is required." in body
    assert form_data(body, "declare-form")["summary"] == typed["summary"]
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_declaring_needs_the_add_permission(client, django_user_model, typed):
    reader = make_user(django_user_model, "viewer", is_staff=True)
    client.force_login(reader)
    assert client.get(DECLARE).status_code == 403
    assert client.post(DECLARE, typed).status_code == 403
    assert not Incident.objects.exists()
    # Nor is the button offered to them.
    assert 'id="declare-button"' not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db
def test_the_declare_page_needs_a_staff_login(client, typed):
    response = client.get(DECLARE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_the_add_page_sends_people_to_the_declare_page_with_its_initial_values(
    commander_client, sev1, api_service
):
    response = commander_client.get(ADD, {"title": "From a link", "severity": sev1.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(DECLARE + "?")
    page = commander_client.get(response["Location"])
    data = form_data(page.content.decode(), "declare-form")
    assert data["title"] == "From a link"
    assert data["severity"] == str(sev1.pk)
    page = commander_client.get(DECLARE, {"services": f"{api_service.pk}"})
    assert form_data(page.content.decode(), "declare-form")["services"] == str(api_service.pk)


@pytest.mark.django_db
def test_every_admin_page_offers_declaring_the_stakeholder_pages_and_the_shortcuts(
    commander_client, declare
):
    incident = declare()
    for url in (
        reverse("admin:index"),
        reverse("admin:incidents_severity_changelist"),
        reverse("admin:incidents_incident_history", args=[incident.pk]),
    ):
        body = commander_client.get(url).content.decode()
        assert f'href="{DECLARE}" id="declare-button"' in body, url
        assert f'hx-get="{DECLARE}"' in body and 'id="declare-dialog"' in body, url
        assert 'href="/status/"' in body and 'href="/postmortems/"' in body, url
        assert 'rel="icon" href="/static/incidents/favicon.svg"' in body, url
        assert 'src="/static/incidents/shortcuts.js"' in body, url
        assert body.count("django_htmx/htmx-2.min.js") == 1, url


def test_the_shortcuts_and_the_favicon_are_static_files():
    script = open(finders.find("incidents/shortcuts.js")).read()
    assert '"searchbar"' in script and 'event.key === "d"' in script
    assert "isTyping(event.target)" in script
    assert finders.find("incidents/favicon.svg")
