"""Action items in the admin: changelist filters, bulk actions, forms, inlines, report."""

import csv
import io
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Source
from incidents.models import Status as IncidentStatus
from postmortems.models import PostMortem
from remediation import services
from remediation.models import ActionItem, ActionItemUpdate
from tests.forms import form_data
from tests.remediation.test_report import build
from tests.reviews import publish_review

CHANGELIST = reverse("admin:remediation_actionitem_changelist")
ADD = reverse("admin:remediation_actionitem_add")
REPORT = reverse("admin:remediation_remediationreport_changelist")
S = ActionItem.Status


def change_url(item):
    return reverse("admin:remediation_actionitem_change", args=[item.pk])


def run_action(client, action, items, **extra):
    data = {"action": action, "_selected_action": [item.pk for item in items], **extra}
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def listed(client, **params) -> list[str]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return sorted(item.title for item in response.context["cl"].result_list)


def fresh(item) -> ActionItem:
    return ActionItem.objects.get(pk=item.pk)


@pytest.fixture
def incident(declare, api_service):
    return declare(services=[api_service])


@pytest.fixture
def item(incident, commander):
    def _item(title="Add a pool alert", **fields):
        fields = {"category": "technical", "incident": incident, **fields}
        return services.action_item_create(
            title=title, actor=commander, source=Source.ADMIN, **fields
        )

    return _item


@pytest.fixture
def resolved(incident, commander):
    incident_services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    incident_services.incident_transition(
        incident=incident, to_status=IncidentStatus.RESOLVED, source=Source.ADMIN
    )
    return incident


# --- changelist filters -----------------------------------------------------------------


def test_mine_filter_shows_the_users_items(commander_client, item, commander, responder):
    item("Alice's", owner=commander)
    item("Bob's", owner=responder)
    item("Nobody's")
    assert listed(commander_client, mine="yes") == ["Alice's"]
    assert listed(commander_client, mine="unowned") == ["Nobody's"]
    assert listed(commander_client) == ["Alice's", "Bob's", "Nobody's"]


def test_attention_filters(commander_client, item, commander):
    today = timezone.localdate()
    item("Late", due_on=today - timedelta(days=1))
    done = item("Late but done", due_on=today - timedelta(days=5))
    services.action_item_transition(
        item=done, to_status=S.DONE, actor=commander, source=Source.ADMIN
    )
    fresh_block = item("Just blocked")
    services.action_item_transition(
        item=fresh_block, to_status=S.BLOCKED, note="x", source=Source.ADMIN
    )
    old_block = item("Long blocked")
    with time_machine.travel(timezone.now() - timedelta(days=10)):
        services.action_item_transition(
            item=old_block, to_status=S.BLOCKED, note="vendor", source=Source.ADMIN
        )
    item("Fine")
    assert listed(commander_client, attention="overdue") == ["Late"]
    assert listed(commander_client, attention="blocked") == ["Just blocked", "Long blocked"]
    assert listed(commander_client, attention="stale") == ["Long blocked"]


def test_changelist_hides_confidential_items_from_outsiders(
    client, item, declare, security_type, outsider, security_member
):
    secret = declare(title="Leak", incident_type=security_type, confidential=True)
    item("Rotate keys", incident=secret)
    item("Public work")
    client.force_login(outsider)
    assert listed(client) == ["Public work"]
    assert client.get(change_url(ActionItem.objects.get(title="Rotate keys"))).status_code in (
        302,
        404,
    )
    client.force_login(security_member)
    assert listed(client) == ["Public work", "Rotate keys"]


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


def test_changelist_query_count_does_not_grow(commander_client, item, responder):
    item(owner=responder, tracker_key="OPS-1", tracker_url="https://jira.example.com/OPS-1")
    one, count = _changelist_queries(commander_client)
    assert count == 1
    for n in range(9):
        item(f"Item {n}", owner=responder, due_on=date(2020, 1, 1))
    ten, count = _changelist_queries(commander_client)
    assert count == 10
    assert ten == one


# --- bulk actions -----------------------------------------------------------------------


def test_reassign_goes_through_the_service(commander_client, item, responder):
    first, second = item("One"), item("Two")
    response = run_action(
        commander_client, "reassign", [first, second], new_owner=responder.pk, note="Bob's area"
    )
    assert "Reassigned to bob: 2 action item(s)." in messages_of(response)
    for entry in (first, second):
        assert fresh(entry).owner == responder
        change = entry.updates.get(kind=ActionItemUpdate.Kind.CHANGE)
        assert (change.note, change.author.username) == ("Bob's area", "alice")


def test_reassign_without_owner_is_refused(commander_client, item):
    entry = item()
    response = run_action(commander_client, "reassign", [entry])
    assert "Choose the new owner." in messages_of(response)
    assert fresh(entry).owner is None
    assert entry.updates.count() == 1


def test_change_due_date(commander_client, item):
    entry = item()
    response = run_action(commander_client, "change_due_date", [entry], new_due_on="2030-01-31")
    assert "Moved to 2030-01-31: 1 action item(s)." in messages_of(response)
    assert fresh(entry).due_on == date(2030, 1, 31)
    assert entry.updates.filter(kind=ActionItemUpdate.Kind.CHANGE).count() == 1
    refused = run_action(commander_client, "change_due_date", [entry], new_due_on="")
    assert "Choose the new due date." in messages_of(refused)


def test_mark_done_note_becomes_verification(commander_client, commander, item):
    entry, done = item("Open one"), item("Already done")
    services.action_item_transition(
        item=done, to_status=S.DONE, actor=commander, source=Source.ADMIN
    )
    response = run_action(commander_client, "mark_done", [entry, done], note="Drill passed")
    texts = messages_of(response)
    assert "Marked done 1 action item(s)." in texts
    assert any("cannot move from done to done" in text for text in texts)
    entry = fresh(entry)
    assert (entry.status, entry.verification_note) == (S.DONE, "Drill passed")
    assert entry.completed_by == commander and entry.completed_at
    update = entry.updates.get(kind=ActionItemUpdate.Kind.STATUS)
    assert (update.from_status, update.to_status, update.note) == ("open", "done", "Drill passed")


# --- change and add forms ---------------------------------------------------------------


def change_form(client, item) -> dict:
    page = client.get(change_url(item))
    assert page.status_code == 200
    return form_data(page.content.decode(), "actionitem_form")


def test_change_form_edits_and_moves(commander_client, item, responder):
    entry = item()
    data = change_form(commander_client, entry)
    data.update(
        title="Alert on pool saturation",
        owner=str(responder.pk),
        move_to="blocked",
        move_note="Waiting on the DBA",
    )
    response = commander_client.post(change_url(entry), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = fresh(entry)
    assert (entry.title, entry.owner, entry.status) == (
        "Alert on pool saturation",
        responder,
        S.BLOCKED,
    )
    assert entry.blocked_reason == "Waiting on the DBA"
    kinds = list(entry.updates.values_list("kind", "to_status"))
    assert kinds == [("created", "open"), ("change", ""), ("status", "blocked")]


def test_change_form_offers_only_allowed_moves(commander_client, item, commander):
    entry = item()
    services.action_item_transition(
        item=entry, to_status=S.DONE, actor=commander, source=Source.ADMIN
    )
    body = commander_client.get(change_url(entry)).content.decode()
    assert '<option value="open">' in body
    assert '<option value="blocked">' not in body


def test_change_form_block_without_note_shows_error(commander_client, item):
    entry = item()
    data = change_form(commander_client, entry)
    data.update(move_to="blocked", move_note="")
    response = commander_client.post(change_url(entry), data, follow=True)
    assert any("Say what blocks it." in text for text in messages_of(response))
    assert fresh(entry).status == S.OPEN
    assert entry.updates.count() == 1


def test_progress_inline_adds_a_note(commander_client, item):
    entry = item()
    data = change_form(commander_client, entry)
    new_row = f"updates-{data['updates-INITIAL_FORMS']}-note"  # the empty row below the record
    assert data[new_row] == ""
    data[new_row] = "Drafted the alert rule"
    response = commander_client.post(change_url(entry), data)
    assert response.status_code == 302
    note = entry.updates.get(kind=ActionItemUpdate.Kind.NOTE)
    assert (note.note, note.author.username) == ("Drafted the alert rule", "alice")


def add_form(client, incident, **changes) -> dict:
    page = client.get(ADD)
    assert page.status_code == 200
    data = form_data(page.content.decode(), "actionitem_form")
    data.update(incident=str(incident.pk), title="Add a runbook", category="process", **changes)
    return data


def test_add_form_creates_through_the_service(commander_client, incident, responder):
    data = add_form(
        commander_client, incident, priority="P1", owner=str(responder.pk), due_on="2030-02-01"
    )
    response = commander_client.post(ADD, data)
    assert response.status_code == 302
    entry = ActionItem.objects.get()
    assert entry.due_on == date(2030, 2, 1)
    assert (entry.created_by.username, entry.owner, entry.priority) == ("alice", responder, "P1")
    assert list(entry.updates.values_list("kind", flat=True)) == ["created"]
    assert incident.timeline.filter(summary__contains="Add a runbook").exists()


def test_add_form_with_empty_due_date_takes_the_priority_default(commander_client, incident):
    data = add_form(commander_client, incident, priority="P1", due_on="")
    response = commander_client.post(ADD, data, follow=True)
    assert "Give a date." not in " ".join(messages_of(response))
    entry = ActionItem.objects.get()
    assert entry.due_on == timezone.localdate() + timedelta(days=7)


# --- inlines on incident and review pages ----------------------------------------------


def incident_inline_post(client, incident, **row):
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    page = client.get(change)
    assert page.status_code == 200
    data = form_data(page.content.decode(), "incident_form")
    assert data["action_items-0-title"] == ""
    data.update({f"action_items-0-{name}": value for name, value in row.items()})
    return client.post(change, data, follow=True)


def test_incident_page_inline_adds_an_item(commander_client, incident, responder):
    response = incident_inline_post(
        commander_client,
        incident,
        title="Raise the pool size",
        category="technical",
        priority="P2",
        owner=str(responder.pk),
        due_on="2030-03-01",
    )
    assert any("changed successfully" in text for text in messages_of(response))
    entry = ActionItem.objects.get()
    assert (entry.incident, entry.postmortem, entry.owner) == (incident, None, responder)
    assert entry.due_on == date(2030, 3, 1)
    assert entry.created_by.username == "alice"
    assert entry.updates.get().kind == "created"
    body = commander_client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))
    assert f"open #{entry.pk}" in body.content.decode()


def test_incident_page_inline_row_without_due_date_takes_the_default(commander_client, incident):
    incident_inline_post(
        commander_client, incident, title="Raise the pool size", category="technical", priority="P2"
    )
    entry = ActionItem.objects.get()
    assert entry.due_on == timezone.localdate() + timedelta(days=30)


def test_postmortem_page_inline_adds_an_item(commander_client, resolved):
    postmortem = PostMortem.objects.get(incident=resolved)
    change = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    data = form_data(commander_client.get(change).content.decode(), "postmortem_form")
    assert "action_items-0-title" in data
    data.update(
        {
            "action_items-0-title": "Practise failover",
            "action_items-0-category": "training",
            "action_items-0-priority": "P3",
            "action_items-0-due_on": "2030-04-01",
        }
    )
    response = commander_client.post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = ActionItem.objects.get()
    assert (entry.incident, entry.postmortem) == (resolved, postmortem)


def test_published_review_page_refuses_new_items(commander_client, resolved):
    postmortem = publish_review(resolved)
    change = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    page = commander_client.get(change)
    assert page.status_code == 200
    assert 'name="action_items-0-title"' not in page.content.decode()
    # A row posted anyway (a stale page) creates nothing.
    data = form_data(page.content.decode(), "postmortem_form")
    data.update(
        {
            "action_items-TOTAL_FORMS": "1",
            "action_items-INITIAL_FORMS": "0",
            "action_items-0-title": "Too late",
            "action_items-0-category": "process",
            "action_items-0-priority": "P3",
            "action_items-0-due_on": "2030-04-01",
        }
    )
    commander_client.post(change, data)
    assert not ActionItem.objects.exists()


# --- the report page --------------------------------------------------------------------


@pytest.fixture
def data(declare, sev1, sev2, security_type, api_service, commander):
    return build(declare, sev1, sev2, security_type, api_service, commander)


def test_report_is_linked_from_the_admin_index(commander_client):
    body = commander_client.get(reverse("admin:apps")).content.decode()  # the app index
    assert f'href="{REPORT}"' in body


def test_report_page_renders_the_figures(client, data, responder):
    client.force_login(responder)
    with time_machine.travel(date(2026, 3, 20)):
        response = client.get(REPORT)
    assert response.status_code == 200
    summary = response.context["report"]["summary"]
    assert (summary["total"], summary["open"], summary["done"], summary["overdue"]) == (8, 4, 3, 3)
    body = response.content.decode()
    assert "<span>Action items</span><b>8</b>" in body
    assert "<span>Completion rate</span><b>43%</b>" in body
    assert "<b>2.0 d</b>" in body
    assert "Waiting on vendor" in body
    assert "Public API" in body and "Web shop" in body
    assert 'id="csv-download"' in body


def test_report_page_filters(client, data, responder):
    client.force_login(responder)
    with time_machine.travel(date(2026, 3, 20)):
        response = client.get(REPORT, {"service": "web", "team": "Platform"})
    assert response.context["report"]["summary"]["total"] == 2  # b1, b4


def test_report_csv(client, data, responder):
    client.force_login(responder)
    with time_machine.travel(date(2026, 3, 20)):
        response = client.get(REPORT, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "remediation-report-2026-03-20.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "section",
        "group",
        "total",
        "open",
        "blocked",
        "done",
        "wont_do",
        "overdue",
        "completion_rate",
    ]
    assert rows[1] == ["summary", "all", "8", "4", "2", "3", "1", "3", "0.429"]
    assert ["team", "(no team)", "1", "1", "1", "0", "0", "1", "0.0"] in rows
    assert rows[-1] == ["median_days_to_complete", "2.0"]


def test_report_hidden_from_users_without_permission(client, django_user_model):
    from tests.conftest import make_user

    nobody = make_user(django_user_model, "nina", is_staff=True)
    client.force_login(nobody)
    assert client.get(REPORT).status_code in (302, 403)


def _report_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(REPORT)
    assert response.status_code == 200
    return len(queries), response.context["report"]["summary"]["total"]


def test_report_page_query_count_does_not_grow(
    client, declare, sev1, sev2, security_type, api_service, commander, security_member
):
    client.force_login(security_member)
    build(declare, sev1, sev2, security_type, api_service, commander)
    small, total = _report_queries(client)
    assert total == 9
    for copy in ("-2", "-3"):
        build(declare, sev1, sev2, security_type, api_service, commander, suffix=copy)
    large, total = _report_queries(client)
    assert total == 27
    assert large == small


def test_report_csv_defuses_spreadsheet_formulas(client, item, responder):
    item(team='=HYPERLINK("http://evil.example")')
    client.force_login(responder)

    response = client.get(REPORT, {"format": "csv"})

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    teams = [row[1] for row in rows if row[:1] == ["team"]]
    assert teams == ['\'=HYPERLINK("http://evil.example")']


def test_report_has_no_change_or_history_pages_for_its_rows(client, item, responder):
    secret_free = item()
    client.force_login(responder)

    for suffix in ("change/", "history/"):
        url = f"{REPORT}{secret_free.pk}/{suffix}"
        assert client.get(url).status_code == 404
