"""Other apps add to the one incident admin (and the review admin) through
incidents.admin.contribute, without subclassing or re-registering it."""

import copy

import pytest
from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents import services
from incidents.admin import IncidentAdmin, Inline, Panel, contribute
from incidents.admin import contributions as registry
from incidents.models import Incident, Notification, Source, TimelineEvent
from postmortems.admin import PostMortemAdmin
from postmortems.models import PostMortem
from tests.forms import form_data
from tests.reviews import resolve

CHANGELIST = reverse("admin:incidents_incident_changelist")


def change_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


@pytest.fixture
def throwaway(monkeypatch):
    """Contributions made in a test are gone after it."""
    monkeypatch.setattr(registry, "_by_model", copy.deepcopy(registry._by_model))


# --- a newcomer's app: a war room per incident, written outside incidents/ --------------


class MessagesInline(admin.TabularInline):
    model = Notification
    fields = ("event", "address", "state")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "War room: messages sent"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DecisionForm(forms.ModelForm):
    class Meta:
        model = TimelineEvent
        fields = ("summary",)

    def clean(self):
        # The admin's change message names each new row, and a timeline row's name has
        # its time; the hook records the decision as happening now.
        self.instance.occurred_at = timezone.now()
        return super().clean()


class DecisionInline(admin.TabularInline):
    """Takes input, on the same model as a core inline: its rows are saved by its hook."""

    model = TimelineEvent
    form = DecisionForm
    extra = 1
    verbose_name_plural = "War room: decisions"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None):
        return False


def save_decisions(request, form, formset, change):
    for event in formset.save(commit=False):
        services.timeline_add_entry(
            incident=form.instance,
            kind=TimelineEvent.Kind.DECISION,
            summary=f"War room: {event.summary}",
            actor=request.user,
            source=Source.ADMIN,
        )


@admin.display(description="war room")
def war_room(incident):
    return f"#war-{incident.reference.lower()}"


@admin.action(description="Open a war room", permissions=["change"])
def open_war_room(modeladmin, request, queryset):
    modeladmin.message_user(request, f"Opened {queryset.count()} war room(s).")


def war_room_panel(request, incident):
    if incident.severity.key != "SEV1":
        return None  # war rooms are for the worst
    return format_html("<p>{} is watching.</p>", request.user.get_username())


def contribute_war_room():
    contribute(
        Incident,
        inlines=[MessagesInline, Inline(DecisionInline, save=save_decisions)],
        actions=[open_war_room],
        columns=[war_room],
        fieldsets=[("War room", {"fields": (war_room,)})],
        panels=[Panel("War room watchers", war_room_panel)],
    )


def test_a_newcomer_adds_a_column_and_an_action_to_the_changelist(
    throwaway, commander_client, declare
):
    incident = declare()
    contribute_war_room()
    body = commander_client.get(CHANGELIST).content.decode()
    assert 'class="column-war_room"' in body
    assert f"#war-{incident.reference.lower()}" in body
    assert '<option value="open_war_room">Open a war room</option>' in body
    response = commander_client.post(
        CHANGELIST, {"action": "open_war_room", "_selected_action": [incident.pk]}, follow=True
    )
    assert "Opened 1 war room(s)." in [str(m) for m in response.context["messages"]]


def test_a_newcomer_adds_a_fieldset_inlines_and_a_panel_to_the_change_page(
    throwaway, commander_client, commander, declare
):
    incident = declare()
    contribute_war_room()
    body = commander_client.get(change_url(incident)).content.decode()
    assert 'fieldset-heading">War room</h2>' in body
    assert "field-war_room" in body and f"#war-{incident.reference.lower()}" in body
    assert "War room: messages sent" in body
    assert "War room: decisions" in body
    assert "War room watchers" in body and "<p>alice is watching.</p>" in body
    # After the core's own parts: the fields, then the panel, then the core's inlines first.
    assert body.index("Milestones") < body.index("War room watchers") < body.index("Roles (")
    assert body.index("Timeline (") < body.index("War room: messages sent")


def test_a_contributed_inline_is_saved_by_its_hook_not_the_core(
    throwaway, commander_client, commander, declare
):
    incident = declare()
    contribute_war_room()
    page = commander_client.get(change_url(incident)).content.decode()
    data = form_data(page, "incident_form")
    # The core's timeline inline comes first and keeps its prefix; ours is the second.
    data["timeline-2-0-summary"] = "Freeze deploys"
    response = commander_client.post(change_url(incident), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = incident.timeline.get(summary="War room: Freeze deploys")
    assert (event.kind, event.source, event.author) == ("decision", "admin", commander)


def test_contributions_stay_off_the_add_page_and_the_add_page_still_declares(
    throwaway, commander_client, sev1
):
    contribute_war_room()
    body = commander_client.get(reverse("admin:incidents_incident_add"), follow=True)
    body = body.content.decode()
    assert "War room" not in body


def test_contributing_the_same_parts_twice_shows_them_once(throwaway, commander_client, declare):
    incident = declare()
    contribute_war_room()
    contribute_war_room()
    body = commander_client.get(change_url(incident)).content.decode()
    assert body.count('fieldset-heading">War room</h2>') == 1
    assert body.count("War room: messages sent") == 1
    assert body.count("War room watchers") == 1
    changelist = commander_client.get(CHANGELIST).content.decode()
    assert changelist.count('value="open_war_room"') == 1


def test_a_panel_may_show_nothing(throwaway, commander_client, declare, sev2):
    incident = declare(severity=sev2)
    contribute_war_room()
    body = commander_client.get(change_url(incident)).content.decode()
    assert "War room watchers" not in body


# --- the apps that ship today ----------------------------------------------------------


def test_the_registered_admins_are_the_apps_own_classes():
    assert type(admin.site._registry[Incident]) is IncidentAdmin
    assert type(admin.site._registry[PostMortem]) is PostMortemAdmin


def test_postmortem_and_remediation_parts_appear_once_on_the_incident_admin(
    commander_client, declare
):
    incident = declare()
    body = commander_client.get(change_url(incident)).content.decode()
    assert body.count('fieldset-heading">Post-incident review</h2>') == 1
    assert body.count("field-postmortem_link") == 1
    assert body.count("Action items (add one below") == 1
    changelist = commander_client.get(CHANGELIST).content.decode()
    assert changelist.count('<option value="start_postmortem">Start the post-mortem</option>') == 1


def test_the_action_item_inline_appears_once_on_the_review_page(commander_client, declare):
    postmortem = resolve(declare())
    url = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    body = commander_client.get(url).content.decode()
    assert body.count("Action items (add one below") == 1
    assert body.count("Contributing factors") == 1
