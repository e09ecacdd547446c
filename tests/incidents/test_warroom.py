"""The war-room page: header, guard-aware moves, small forms that each call one service
and keep what was typed when refused, and the timeline feed."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import extensions, services
from incidents.errors import StateConflict
from incidents.models import (
    Audience,
    MessageTemplate,
    Role,
    Severity,
    Source,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from tests.conftest import make_user
from tests.reviews import resolve


def page_url(incident):
    return reverse("admin:incidents_incident_warroom", args=[incident.pk])


def action_url(incident, name):
    return reverse(f"admin:incidents_incident_warroom_{name}", args=[incident.pk])


def timeline_url(incident):
    return reverse("admin:incidents_incident_warroom_timeline", args=[incident.pk])


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def add_events(incident, count):
    services.timeline_record_many(
        [
            {
                "incident": incident,
                "kind": TimelineEvent.Kind.NOTE,
                "summary": f"Event number {n}",
                "occurred_at": timezone.now(),
            }
            for n in range(count)
        ],
        actor=None,
        source=Source.SYSTEM,
    )


# --- the page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_page_shows_header_timers_roles_and_links(commander_client, declare, commander):
    incident = declare(commander=commander, title="Checkout returns 502")
    response = commander_client.get(page_url(incident))
    body = response.content.decode()
    assert response.status_code == 200
    assert incident.reference in body and "Checkout returns 502" in body
    assert "SEV1 Critical" in body and ">Declared<" in body
    assert "Acknowledgement" in body and "due in" in body
    assert "Next update" in body
    assert "Incident commander: <strong>alice</strong>" in body
    assert reverse("admin:incidents_incident_change", args=[incident.pk]) in body
    assert reverse("admin:incidents_incident_history", args=[incident.pk]) in body
    # Contributed panels appear here as on the change page (on-call's paging panel).
    assert "<h2>Paging</h2>" in body


@pytest.mark.django_db
def test_the_incident_links_to_its_war_room(declare):
    incident = declare()
    assert incident.get_absolute_url() == page_url(incident)


@pytest.mark.django_db
def test_confidential_incident_is_404_for_an_outsider(client, outsider, declare, security_type):
    incident = declare(incident_type=security_type, title="Token leaked")
    assert incident.confidential
    client.force_login(outsider)
    assert client.get(page_url(incident)).status_code == 404
    assert client.get(timeline_url(incident)).status_code == 404
    response = client.post(action_url(incident, "note"), {"note-kind": "note", "note-summary": "x"})
    assert response.status_code == 404
    assert not incident.timeline.filter(summary="x").exists()


@pytest.mark.django_db
def test_view_only_users_see_the_page_without_forms(client, django_user_model, declare):
    viewer = make_user(django_user_model, "vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_incident"))
    incident = declare()
    client.force_login(viewer)
    body = client.get(page_url(incident)).content.decode()
    assert incident.reference in body
    assert 'id="wr-note"' not in body and "Move to" not in body
    response = client.post(action_url(incident, "note"), {"note-kind": "note", "note-summary": "x"})
    assert response.status_code == 403


# --- each form saves through its service --------------------------------------------------


@pytest.mark.django_db
def test_note_goes_on_the_timeline_and_redirects_back(commander_client, commander, declare):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "note"),
        {"note-kind": "decision", "note-summary": "Fail over to eu-central"},
    )
    assert response.status_code == 302 and response.url == page_url(incident)
    event = incident.timeline.get(kind=TimelineEvent.Kind.DECISION)
    assert (event.summary, event.author, event.source) == (
        "Fail over to eu-central",
        commander,
        Source.ADMIN,
    )
    page = commander_client.get(response.url)
    assert "Added the decision to the timeline." in messages_of(page)
    # The form is empty again.
    assert "Fail over to eu-central</textarea>" not in page.content.decode()


@pytest.mark.django_db
def test_status_update_is_posted(commander_client, declare):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "update"),
        {"update-audience": "public", "update-summary": "We are looking into errors", "post": "1"},
    )
    assert response.status_code == 302
    update = StatusUpdate.objects.get(incident=incident)
    assert (update.audience, update.summary, update.number) == (
        Audience.PUBLIC,
        "We are looking into errors",
        1,
    )


@pytest.mark.django_db
def test_use_template_fills_the_text_and_keeps_the_rest(commander_client, declare, api_service):
    incident = declare(services=[api_service])
    chosen = MessageTemplate.objects.get(slug="customer-update")
    response = commander_client.post(
        action_url(incident, "update"),
        {
            "update-audience": "internal",
            "update-template": chosen.pk,
            "update-summary": "",
            "use_template": "1",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "We are aware of a problem affecting Public API" in body
    assert '<option value="public" selected>' in body  # the template's audience
    assert not StatusUpdate.objects.exists()


@pytest.mark.django_db
def test_public_title_is_saved(commander_client, declare):
    incident = declare(title="Primary DB failover loop")
    response = commander_client.post(
        action_url(incident, "public_title"), {"public_title-public_title": "Checkout errors"}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.public_title == "Checkout errors"


@pytest.mark.django_db
def test_severity_change_needs_its_reason_and_is_made(commander_client, declare, sev2):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "severity"),
        {"severity-severity": sev2.pk, "severity-reason": "Only EU affected"},
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.severity == sev2
    assert incident.timeline.get(kind=TimelineEvent.Kind.SEVERITY_CHANGE).details["reason"] == (
        "Only EU affected"
    )


@pytest.mark.django_db
def test_role_is_assigned(commander_client, declare, responder):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "role"), {"role-role": Role.SCRIBE, "role-user": responder.pk}
    )
    assert response.status_code == 302
    assert incident.roles.get(relieved_at__isnull=True, role=Role.SCRIBE).user == responder


@pytest.mark.django_db
def test_acknowledge_and_move_with_a_note(commander_client, declare):
    incident = declare()
    body = commander_client.get(page_url(incident)).content.decode()
    assert 'id="wr-acknowledge"' in body
    assert commander_client.post(action_url(incident, "acknowledge")).status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING and incident.acknowledged_at is not None
    response = commander_client.post(
        action_url(incident, "move"), {"move-to_status": "identified", "move-note": "Bad push"}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Status.IDENTIFIED
    assert "Bad push" in incident.timeline.filter(kind="status_change").last().summary


@pytest.mark.django_db
def test_triage_candidate_is_accepted_or_declined_from_the_page(commander_client, declare):
    accepted = declare(triage=True, actor=None, source=Source.SYSTEM)
    declined = declare(triage=True, actor=None, source=Source.SYSTEM)
    body = commander_client.get(page_url(accepted)).content.decode()
    assert "Accept: declare it" in body and "Move to" not in body
    commander_client.post(action_url(accepted, "accept"), {"accept-reason": "Real"})
    accepted.refresh_from_db()
    assert accepted.status == Status.DECLARED
    # Declining needs the reason; refused, the page keeps the rest.
    response = commander_client.post(action_url(declined, "decline"), {"decline-reason": ""})
    assert response.status_code == 200
    assert "Say why it is a false positive." in response.content.decode()
    commander_client.post(action_url(declined, "decline"), {"decline-reason": "Flapping check"})
    declined.refresh_from_db()
    assert declined.status == Status.CANCELLED


@pytest.mark.django_db
def test_get_on_a_form_url_goes_back_to_the_page(commander_client, declare):
    incident = declare()
    response = commander_client.get(action_url(incident, "note"))
    assert response.status_code == 302 and response.url == page_url(incident)


# --- refusals keep what was typed -------------------------------------------------------


@pytest.mark.django_db
def test_refused_note_reshows_the_text_with_the_error(commander_client, declare):
    incident = declare()
    future = timezone.localtime() + timedelta(hours=2)
    response = commander_client.post(
        action_url(incident, "note"),
        {
            "note-kind": "action",
            "note-summary": "Restarted the pool <b>twice</b>",
            "note-occurred_at": f"{future:%Y-%m-%dT%H:%M}",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Cannot be in the future." in body
    assert "Restarted the pool &lt;b&gt;twice&lt;/b&gt;</textarea>" in body
    assert '<option value="action" selected>' in body
    assert f'value="{future:%Y-%m-%dT%H:%M}"' in body
    assert not incident.timeline.filter(kind=TimelineEvent.Kind.ACTION).exists()


@pytest.mark.django_db
def test_refused_public_update_keeps_the_text(commander_client, declare, security_type):
    incident = declare(incident_type=security_type)  # confidential: no public updates
    response = commander_client.post(
        action_url(incident, "update"),
        {"update-audience": "public", "update-summary": "Draft for customers", "post": "1"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "A confidential incident cannot have public updates." in body
    assert "Draft for customers</textarea>" in body
    assert not StatusUpdate.objects.exists()


@pytest.mark.django_db
def test_refused_severity_change_keeps_the_reason(commander_client, declare, sev1):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "severity"),
        {"severity-severity": sev1.pk, "severity-reason": "Looks bad"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "is already SEV1" in body
    assert 'value="Looks bad"' in body


@pytest.mark.django_db
def test_refused_role_keeps_the_choice(commander_client, declare, commander):
    incident = declare(commander=commander)
    response = commander_client.post(
        action_url(incident, "role"), {"role-role": Role.COMMANDER, "role-user": commander.pk}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "alice is already incident commander" in body
    assert f'<option value="{commander.pk}" selected>' in body


@pytest.mark.django_db
def test_a_move_a_guard_refuses_is_disabled_with_its_reason_and_refused_if_posted(
    commander_client, declare
):
    incident = declare()

    def no_monitoring(request):
        if request.to_status == Status.MONITORING:
            raise StateConflict("The fix is not deployed yet.")

    with extensions.restored():
        extensions.transition_guard.register(no_monitoring)
        body = commander_client.get(page_url(incident)).content.decode()
        assert (
            '<button type="button" disabled title="The fix is not deployed yet.">'
            "Move to Monitoring</button>" in body
        )
        assert '<span class="wr-reason">The fix is not deployed yet.</span>' in body
        assert 'name="move-to_status" value="identified"' in body
        # Posted anyway (an old page): refused, the note kept.
        response = commander_client.post(
            action_url(incident, "move"),
            {"move-to_status": "monitoring", "move-note": "Rolled back the config"},
        )
    body = response.content.decode()
    assert response.status_code == 200
    assert "The fix is not deployed yet." in body
    assert 'value="Rolled back the config"' in body
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


@pytest.mark.django_db
def test_close_is_disabled_while_the_postmortem_is_a_draft(commander_client, declare):
    incident = declare()  # SEV1
    resolve(incident)
    body = commander_client.get(page_url(incident)).content.decode()
    assert "disabled" in body and "Move to Closed</button>" in body
    assert "requires a published post-mortem and its post-mortem is draft" in body
    assert 'name="move-to_status" value="investigating"' in body
    assert 'name="move-to_status" value="closed"' not in body


# --- the timeline feed -------------------------------------------------------------------


@pytest.mark.django_db
def test_feed_shows_kind_who_time_zone_and_recorded_later(commander_client, declare, commander):
    incident = declare()
    earlier = timezone.now() - timedelta(minutes=20)
    services.timeline_add_entry(
        incident=incident,
        kind="note",
        summary="Scribe catching up",
        occurred_at=earlier,
        actor=commander,
        source=Source.ADMIN,
    )
    body = commander_client.get(page_url(incident)).content.decode()
    assert 'class="wr-entry wr-kind-note"' in body
    assert f"{earlier:%Y-%m-%d %H:%M} UTC" in body
    assert "recorded later at" in body
    assert '<span class="wr-who">alice</span>' in body


@pytest.mark.django_db
def test_a_kind_another_app_registers_gets_the_neutral_style_and_its_label(
    commander_client, declare
):
    incident = declare()
    with extensions.restored():
        extensions.register_timeline_kind("drill", "Fire drill")
        services.timeline_record(
            incident,
            kind="drill",
            summary="Practice run",
            actor=None,
            source=Source.SYSTEM,
            occurred_at=timezone.now(),
        )
        body = commander_client.get(page_url(incident)).content.decode()
    assert 'class="wr-entry wr-kind-other"' in body
    assert '<span class="wr-kind">Fire drill</span>' in body
    assert "system (System)" in body


@pytest.mark.django_db
@pytest.mark.usefixtures("core_only")
def test_feed_is_newest_first_bounded_and_pages_on(commander_client, declare):
    incident = declare()
    add_events(incident, 205)  # and the declaration: 206 events
    body = commander_client.get(page_url(incident)).content.decode()
    assert body.count('<li class="wr-entry') == 200
    assert "older events" in body
    assert "Event number 204" in body and "Event number 4<" not in body
    second = commander_client.get(page_url(incident), {"page": 2}).content.decode()
    assert second.count('<li class="wr-entry') == 6
    assert "Event number 4<" in second and "newer events" in second

    oldest = commander_client.get(page_url(incident), {"order": "oldest"}).content.decode()
    first_entry = oldest.index('<li class="wr-entry')
    assert oldest.index("Declared", first_entry) < oldest.index("Event number 0", first_entry)
    # The order is remembered in the links and the forms.
    assert "?order=oldest&amp;page=2" in oldest
    assert f'action="{action_url(incident, "note")}?order=oldest"' in oldest


@pytest.mark.django_db
def test_timeline_partial_for_htmx_refreshes_itself(commander_client, declare):
    incident = declare()
    body = commander_client.get(page_url(incident)).content.decode()
    assert f'hx-get="{timeline_url(incident)}" hx-trigger="every 15s"' in body
    assert "/static/django_htmx/htmx-2.min.js" in body
    assert 'class="wr-refresh">Refresh</a>' in body  # without JavaScript
    partial = commander_client.get(timeline_url(incident), HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert partial.status_code == 200
    assert text.lstrip().startswith('<section id="wr-timeline"')
    assert "<html" not in text
    # Without htmx, the same URL is a page of its own.
    assert "<html" in commander_client.get(timeline_url(incident)).content.decode()


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_page_costs_the_same_queries_whatever_the_timeline_length(
    commander_client, declare, commander, responder, django_assert_max_num_queries
):
    small = declare(commander=commander)
    add_events(small, 10)
    big = declare(commander=commander)
    add_events(big, 300)
    for user in (responder, make_user(type(commander), "sid")):
        services.role_assign(
            incident=big, role=Role.SME, user=user, actor=commander, source=Source.ADMIN
        )
    for n in range(4):
        services.status_update_post(
            incident=big, audience="internal", summary=f"u{n}", source=Source.ADMIN
        )
    count_queries(commander_client, page_url(small))  # warm the per-process caches
    assert count_queries(commander_client, page_url(small)) == count_queries(
        commander_client, page_url(big)
    )
    assert count_queries(commander_client, page_url(big)) == 22  # 21 + the checklist panel
    with CaptureQueriesContext(connection) as partial:
        commander_client.get(timeline_url(big), HTTP_HX_REQUEST="true")
    assert len(partial) == 8


@pytest.mark.django_db
def test_severity_choices_show_every_level(commander_client, declare):
    incident = declare()
    body = commander_client.get(page_url(incident)).content.decode()
    for severity in Severity.objects.all():
        assert str(severity) in body


@pytest.mark.django_db
def test_a_move_the_lifecycle_does_not_allow_is_refused_with_the_note_kept(
    commander_client, declare
):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "move"), {"move-to_status": "closed", "move-note": "All good"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "cannot move from declared to closed" in body
    assert 'value="All good"' in body
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["9" * 30, "abc", "-3", "0"])
def test_a_hostile_page_number_is_not_a_500(commander_client, declare, page):
    incident = declare()
    assert commander_client.get(page_url(incident), {"page": page}).status_code == 200
    assert commander_client.get(timeline_url(incident), {"page": page}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("template", ["abc", "9" * 30, "1.5"])
def test_use_template_with_a_hostile_template_id_keeps_the_text(
    commander_client, declare, template
):
    incident = declare()
    response = commander_client.post(
        action_url(incident, "update"),
        {
            "update-audience": "internal",
            "update-template": template,
            "update-summary": "Typed by hand",
            "use_template": "1",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Typed by hand" in body
    assert not StatusUpdate.objects.filter(incident=incident).exists()


@pytest.mark.django_db
def test_a_decline_refused_on_a_stale_page_shows_its_error_and_the_reason(
    commander_client, declare
):
    # Someone accepted it meanwhile: the triage forms are gone from a fresh page, but the
    # refused one shows again, with the service's reason and what was typed.
    incident = declare()
    response = commander_client.post(
        action_url(incident, "decline"), {"decline-reason": "Flapping disk check"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "only a triage candidate can be declined" in body
    assert "Flapping disk check" in body
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED


@pytest.mark.django_db
def test_a_move_refused_on_a_final_incident_shows_its_error_and_the_note(commander_client, declare):
    incident = declare()
    services.incident_transition(
        incident=incident, to_status=Status.CANCELLED, actor=None, source=Source.SYSTEM
    )
    response = commander_client.post(
        action_url(incident, "move"),
        {"move-to_status": "investigating", "move-note": "Restarted the pods"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "cannot move from cancelled to investigating" in body
    assert 'value="Restarted the pods"' in body
