"""The commander's admin, used as a logged-in commander would use it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Role, Source, Status, TimelineEvent
from tests.conftest import make_user
from tests.forms import form_data

CHANGELIST = reverse("admin:incidents_incident_changelist")
ADD = reverse("admin:incidents_incident_add")
DECLARE = reverse("admin:incidents_incident_declare")


def change_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def submit_change(client, incident, **changes):
    """Load the change page, edit fields like a person would, and save."""
    page = client.get(change_url(incident))
    assert page.status_code == 200
    data = form_data(page.content.decode(), "incident_form")
    data.update(changes)
    return client.post(change_url(incident), data)


def run_action(client, action, incidents, **extra):
    data = {
        "action": action,
        "_selected_action": [incident.pk for incident in incidents],
        **extra,
    }
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


# --- changelist -----------------------------------------------------------------------


def test_changelist_shows_incidents_with_severity_status_and_ack_marker(commander_client, declare):
    incident = declare(title="Checkout returns 502")
    response = commander_client.get(CHANGELIST)
    body = response.content.decode()
    assert response.status_code == 200
    assert incident.reference in body
    assert "Checkout returns 502" in body
    assert "SEV1" in body and "Declared" in body
    assert "due in" in body


def test_changelist_marks_unacknowledged_incident_overdue(commander_client, declare):
    declared = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(declared, tick=False):
        declare()  # SEV1: acknowledge within 15 minutes
    with time_machine.travel(declared + timedelta(minutes=40), tick=False):
        body = commander_client.get(CHANGELIST).content.decode()
    assert "OVERDUE by 25m" in body


def test_changelist_filters_open_and_severity(commander_client, declare, sev2):
    open_one = declare(title="Still burning")
    closed_one = declare(title="Long over", severity=sev2)
    services.incident_transition(
        incident=closed_one, to_status=Status.RESOLVED, source=Source.ADMIN
    )
    body = commander_client.get(CHANGELIST, {"open": "yes"}).content.decode()
    assert open_one.reference in body and closed_one.reference not in body
    body = commander_client.get(CHANGELIST, {"severity__id__exact": sev2.pk}).content.decode()
    assert closed_one.reference in body and open_one.reference not in body


def test_changelist_searches_by_reference(commander_client, declare):
    wanted, other = declare(title="Alpha"), declare(title="Beta")
    body = commander_client.get(CHANGELIST, {"q": wanted.reference}).content.decode()
    assert wanted.reference in body and other.reference not in body


def _changelist_queries(client):
    # The views after the first: banners other apps contribute (on-call's paging gaps)
    # are worked out once a minute, not on every view.
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries)


def test_changelist_query_count_does_not_grow_with_incidents(
    commander_client, declare, responder, api_service
):
    def add(count):
        for number in range(count):
            incident = declare(title=f"Incident {number}", services=[api_service])
            services.role_assign(
                incident=incident, role=Role.COMMANDER, user=responder, source=Source.ADMIN
            )

    add(5)
    with_five = _changelist_queries(commander_client)
    add(45)
    with_fifty = _changelist_queries(commander_client)
    assert with_fifty == with_five
    assert with_five == 12


def test_confidential_incident_is_hidden_from_non_participants(
    client, declare, security_type, outsider
):
    secret = declare(title="Token leaked", incident_type=security_type)
    assert secret.confidential
    client.force_login(outsider)
    assert secret.reference not in client.get(CHANGELIST).content.decode()
    response = client.get(change_url(secret))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert Incident.objects.filter(pk=secret.pk).exists()


def test_confidential_incident_is_visible_to_security_group(
    client, declare, security_type, security_member
):
    secret = declare(title="Token leaked", incident_type=security_type)
    client.force_login(security_member)
    assert secret.reference in client.get(CHANGELIST).content.decode()
    assert client.get(change_url(secret)).status_code == 200


# --- declaring and editing ------------------------------------------------------------


def test_declare_from_admin_allocates_reference_and_names_commander(
    commander_client, commander, sev1, outage, api_service
):
    # The add page sends people to the declare page (tests/incidents/test_declare.py).
    page = commander_client.get(ADD, follow=True)
    assert page.redirect_chain[-1][0] == DECLARE
    data = form_data(page.content.decode(), "declare-form")
    data.update(
        title="Payments failing",
        severity=sev1.pk,
        incident_type=outage.pk,
        environment="production",
        services=[api_service.pk],
        commander=commander.pk,
    )
    response = commander_client.post(DECLARE, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get(title="Payments failing")
    assert incident.reference.startswith("INC-")
    assert incident.status == Status.DECLARED
    assert list(incident.services.all()) == [api_service]
    assert incident.roles.get(role=Role.COMMANDER).user == commander
    assert incident.timeline.filter(kind=TimelineEvent.Kind.DECLARED, source="admin").exists()
    assert incident.history.earliest().history_user == commander


def test_editing_times_rejects_detection_before_start(commander_client, declare):
    # Declaring asks for no times (both are "now"); the details page edits them.
    incident = declare(title="Clock trouble")
    started, detected = incident.started_at, incident.detected_at
    page = commander_client.get(change_url(incident))
    data = form_data(page.content.decode(), "incident_form")
    data.update(
        started_at_0="2026-01-02",
        started_at_1="10:00:00",
        detected_at_0="2026-01-02",
        detected_at_1="09:00:00",
    )
    response = commander_client.post(change_url(incident), data)
    assert response.status_code == 200
    assert "Detection cannot come before the impact started." in response.content.decode()
    incident.refresh_from_db()
    assert (incident.started_at, incident.detected_at) == (started, detected)


def test_editing_title_is_in_history_and_timeline(commander_client, commander, declare):
    incident = declare(title="Old title")
    response = submit_change(commander_client, incident, title="New title")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.title == "New title"
    newest, previous = incident.history.all()[:2]
    delta = newest.diff_against(previous)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("title", "Old title", "New title")]
    assert newest.history_user == commander
    assert incident.timeline.filter(kind=TimelineEvent.Kind.DETAILS_CHANGE).exists()


def test_history_page_shows_who_changed_what(client, declare, responder, commander):
    incident = declare(title="Old title", commander=responder)
    client.force_login(responder)
    submit_change(client, incident, title="New title")
    client.force_login(commander)
    url = reverse("admin:incidents_incident_history", args=[incident.pk])
    body = client.get(url).content.decode()
    table = body[body.index('id="change-history"') :]
    newest_row = table[table.index("<tbody>") : table.index("</tr>", table.index("<tbody>"))]
    assert ">bob<" in newest_row
    assert "Old title" in newest_row and "New title" in newest_row


def test_severity_change_on_page_requires_reason(commander_client, declare, sev2):
    incident = declare()
    response = submit_change(commander_client, incident, severity=sev2.pk)
    assert response.status_code == 200
    assert "Say why the severity changes." in response.content.decode()
    incident.refresh_from_db()
    assert incident.severity.key == "SEV1"


def test_severity_change_on_page_with_reason_goes_on_timeline(commander_client, declare, sev2):
    incident = declare()
    response = submit_change(
        commander_client, incident, severity=sev2.pk, severity_reason="Only EU affected"
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.severity == sev2
    event = incident.timeline.get(kind=TimelineEvent.Kind.SEVERITY_CHANGE)
    assert event.details == {"from": "SEV1", "to": "SEV2", "reason": "Only EU affected"}


def test_move_to_status_on_page_only_offers_allowed_moves(commander_client, declare):
    incident = declare()
    body = commander_client.get(change_url(incident)).content.decode()
    assert '<option value="investigating">' in body
    assert '<option value="closed">' not in body
    response = submit_change(
        commander_client, incident, move_to="identified", move_note="Bad config push"
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.IDENTIFIED
    assert incident.identified_at is not None
    assert "Bad config push" in incident.timeline.get(kind="status_change").summary


@pytest.mark.usefixtures("core_only")  # counts the core's own timeline events
def test_note_added_inline_goes_on_timeline_with_author(commander_client, commander, declare):
    incident = declare()
    response = submit_change(
        commander_client,
        incident,
        **{"timeline-1-kind": "decision", "timeline-1-summary": "Fail over to eu-central"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = incident.timeline.get(kind=TimelineEvent.Kind.DECISION)
    assert event.summary == "Fail over to eu-central"
    assert event.author == commander
    assert event.source == "admin"


def test_role_assigned_inline_hands_over_command(commander_client, declare, commander, responder):
    incident = declare(commander=commander)
    response = submit_change(
        commander_client, incident, **{"roles-1-role": "commander", "roles-1-user": responder.pk}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    old, new = incident.roles.filter(role=Role.COMMANDER).order_by("assigned_at", "id")
    assert old.user == commander and old.relieved_at is not None
    assert new.user == responder and new.relieved_at is None


# --- actions --------------------------------------------------------------------------


def test_acknowledge_action(commander_client, commander, declare):
    incident = declare()
    response = run_action(commander_client, "acknowledge", [incident])
    assert "Acknowledged 1 incident(s)." in messages_of(response)
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at is not None
    assert incident.history.latest().history_user == commander


def test_move_action_reports_illegal_moves_and_changes_nothing(
    commander_client, declare, core_only
):
    fresh, done = declare(), declare()
    services.incident_transition(incident=done, to_status=Status.RESOLVED, source=Source.ADMIN)
    services.incident_transition(incident=done, to_status=Status.CLOSED, source=Source.ADMIN)
    response = run_action(
        commander_client, "move_to_status", [fresh, done], to_status="monitoring", note="Fix out"
    )
    texts = messages_of(response)
    assert "Moved to monitoring: 1 incident(s)." in texts
    assert any("cannot move from closed to monitoring" in text for text in texts)
    done.refresh_from_db()
    assert done.status == Status.CLOSED


def test_change_severity_action_needs_a_reason(commander_client, declare, sev2):
    incident = declare()
    response = run_action(commander_client, "change_severity", [incident], new_severity=sev2.pk)
    assert "Say why the severity changes." in messages_of(response)
    incident.refresh_from_db()
    assert incident.severity.key == "SEV1"
    run_action(
        commander_client, "change_severity", [incident], new_severity=sev2.pk, note="Contained"
    )
    incident.refresh_from_db()
    assert incident.severity == sev2


def test_make_me_commander_action(commander_client, commander, declare):
    incident = declare()
    run_action(commander_client, "make_me_commander", [incident])
    assert incident.roles.get(role=Role.COMMANDER, relieved_at__isnull=True).user == commander


def test_stakeholder_can_view_but_not_change(client, declare, django_user_model):
    viewer = make_user(django_user_model, "grace", "Stakeholders", is_staff=True)
    incident = declare()
    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    response = run_action(client, "acknowledge", [incident])
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["severity", "service", "incidenttype"])
def test_catalogue_pages_render(commander_client, path, api_service):
    assert commander_client.get(f"/admin/incidents/{path}/").status_code == 200


def test_stakeholder_change_page_is_read_only(client, declare, django_user_model):
    viewer = make_user(django_user_model, "grace", "Stakeholders", is_staff=True)
    incident = declare(title="Visible to all")
    client.force_login(viewer)
    response = client.get(change_url(incident))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Visible to all" in body
    assert 'name="title"' not in body
    assert client.post(change_url(incident), {"title": "Renamed"}).status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Visible to all"


def test_history_of_confidential_incident_is_hidden_from_outsiders(
    client, declare, security_type, outsider
):
    secret = declare(title="Token leaked", incident_type=security_type)
    version = secret.history.latest()
    client.force_login(outsider)
    history = reverse("admin:incidents_incident_history", args=[secret.pk])
    one_version = reverse(
        "admin:incidents_incident_simple_history", args=[secret.pk, version.history_id]
    )
    assert client.get(history).status_code == 404
    assert client.get(one_version).status_code == 404
    assert "Token leaked" not in client.get(history).content.decode()


def test_past_versions_cannot_be_saved_back(commander_client, declare):
    incident = declare(title="Current title")
    version = incident.history.earliest()
    url = reverse("admin:incidents_incident_simple_history", args=[incident.pk, version.history_id])
    assert commander_client.get(url).status_code == 200
    response = commander_client.post(url, {"title": "Rewritten history"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Current title"


def test_service_refusal_on_change_page_is_explained_and_saves_nothing(
    commander_client, declare, commander
):
    incident = declare(commander=commander)
    response = submit_change(
        commander_client,
        incident,
        title="Should not stick",
        **{"roles-1-role": "commander", "roles-1-user": commander.pk},
    )
    # The same page again, with what was typed and why it was refused.
    assert response.status_code == 200
    body = response.content.decode()
    assert "Role assignment: alice is already incident commander" in body
    assert 'value="Should not stick"' in body
    incident.refresh_from_db()
    assert incident.title == "Checkout returns 502"
    assert incident.roles.count() == 1


def test_times_out_of_order_on_change_page_are_refused(commander_client, declare):
    incident = declare()
    yesterday = timezone.localtime() - timedelta(days=1)  # before the impact started (now)
    response = submit_change(
        commander_client,
        incident,
        detected_at_0=f"{yesterday:%Y-%m-%d}",
        detected_at_1=f"{yesterday:%H:%M:%S}",
    )
    assert response.status_code == 200
    assert "Detection cannot come before the impact started." in response.content.decode()


def test_role_picker_lists_active_people_for_commanders(
    commander_client, declare, responder, django_user_model
):
    make_user(django_user_model, "gone", is_active=False)
    body = commander_client.get(change_url(declare())).content.decode()
    picker = body[body.index('name="roles-0-user"') :]
    picker = picker[: picker.index("</select>")]
    assert f'value="{responder.pk}">bob<' in picker
    assert ">gone<" not in picker


def test_severity_policy_edit_is_in_history_with_user(commander_client, commander, sev1):
    url = reverse("admin:incidents_severity_change", args=[sev1.pk])
    data = form_data(commander_client.get(url).content.decode(), "severity_form")
    data["acknowledge_within"] = "00:10:00"
    assert commander_client.post(url, data).status_code == 302
    newest = sev1.history.latest()
    assert newest.history_user == commander
    changes = newest.diff_against(newest.prev_record).changes
    assert [change.field for change in changes] == ["acknowledge_within"]


def test_severity_aliases_must_be_unique_names(commander_client, sev1):
    url = reverse("admin:incidents_severity_change", args=[sev1.pk])
    data = form_data(commander_client.get(url).content.decode(), "severity_form")
    data["aliases"] = '["critical", "high"]'
    response = commander_client.post(url, data)
    assert response.status_code == 200
    assert "Already used by another severity: high." in response.content.decode()
    data["aliases"] = '"critical"'
    response = commander_client.post(url, data)
    assert "Give a list of names" in response.content.decode()
    sev1.refresh_from_db()
    assert sev1.aliases == ["critical"]


# --- refusals keep what was typed; the move menu knows the guards ------------------------


@pytest.mark.usefixtures("core_only")  # one timeline event: the inline's blank row is 1
def test_refused_inline_update_keeps_the_note_the_impact_and_the_update(commander_client, declare):
    incident = declare()
    past = timezone.localtime() - timedelta(hours=1)
    response = submit_change(
        commander_client,
        incident,
        customer_impact="EU checkout failing",
        **{
            "timeline-1-kind": "note",
            "timeline-1-summary": "Paged the DBA",
            "updates-0-audience": "internal",
            "updates-0-summary": "Still digging",
            "updates-0-next_update_at_0": f"{past:%Y-%m-%d}",
            "updates-0-next_update_at_1": f"{past:%H:%M:%S}",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Status update: The next update must be in the future." in body
    assert "EU checkout failing</textarea>" in body
    assert "Paged the DBA</textarea>" in body
    assert "Still digging</textarea>" in body
    incident.refresh_from_db()
    assert incident.customer_impact == ""
    assert not incident.timeline.filter(kind=TimelineEvent.Kind.NOTE).exists()
    assert not incident.updates.exists()


def test_move_menu_leaves_out_a_move_the_guards_refuse_and_says_why(commander_client, declare):
    from tests.reviews import resolve

    incident = declare()  # SEV1: closing needs a published post-mortem
    resolve(incident)
    body = commander_client.get(change_url(incident)).content.decode()
    assert '<option value="investigating">' in body
    assert '<option value="closed">' not in body
    assert "Not possible now: Closed (" in body
    assert "its post-mortem is draft" in body


def test_change_page_times_say_their_time_zone(commander_client, declare):
    incident = declare()
    body = commander_client.get(change_url(incident)).content.decode()
    assert "Time zone: UTC." in body
    assert "Times in UTC." in body


def test_blank_update_row_is_prefilled_only_before_the_first_update(commander_client, declare):
    incident = declare()
    opening = "We are aware of a problem"
    assert opening in commander_client.get(change_url(incident)).content.decode()
    services.status_update_post(
        incident=incident, audience="public", summary="Update one", source=Source.ADMIN
    )
    body = commander_client.get(change_url(incident)).content.decode()
    assert opening not in body


def test_quick_select_writes_what_djangos_select_would():
    from django import forms
    from django.test.html import parse_html

    from incidents.admin.widgets import QuickSelect

    choices = [("", "---------"), (1, 'Ann <b>"&'), (2, "Bob"), (3, "Zoë")]
    attrs = {"id": "id_user", "required": True, "data-x": 'a"b'}
    for value in (None, 2, "3"):
        quick = QuickSelect(choices=choices).render("user", value, attrs=attrs)
        django = forms.Select(choices=choices).render("user", value, attrs=attrs)
        assert parse_html(quick) == parse_html(django), value
    assert "&lt;b&gt;&quot;&amp;" in quick and "<b>" not in quick
