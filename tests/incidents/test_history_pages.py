"""History pages read like a record, not a database dump: field labels, choice labels,
local times with their zone and no microseconds, "—" for nothing, and the reason."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse

from incidents import services
from incidents.models import Severity, Source
from remediation import services as remediation_services
from remediation.models import ActionItem

# A moment with microseconds: the page must not show them.
DECLARED = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def history_table(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    start = body.index('id="change-history"')
    return body[start : body.index("</table>", start)]


def rows(table: str) -> list[str]:
    return table.split("<tr>")[2:]  # after the header row


@pytest.fixture
def changed(declare, commander, sev2):
    """An incident declared, acknowledged a little later, then re-rated with a reason."""
    with time_machine.travel(DECLARED, tick=False):
        incident = declare(title="Checkout returns 502")
    with time_machine.travel(DECLARED + timedelta(minutes=5), tick=False):
        services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
        services.incident_change_severity(
            incident=incident,
            severity=sev2,
            reason="Only EU customers affected",
            actor=commander,
            source=Source.ADMIN,
        )
    return incident


def incident_history(incident):
    return reverse("admin:incidents_incident_history", args=[incident.pk])


@pytest.mark.django_db
def test_history_columns_are_labelled_and_show_choice_labels(commander_client, changed):
    table = history_table(commander_client, incident_history(changed))
    header = table[: table.index("</thead>")]
    assert '<th scope="col">Status</th>' in header and '<th scope="col">Severity</th>' in header
    newest = rows(table)[0]
    assert "<td>Investigating</td>" in newest
    assert "<td>SEV2 High</td>" in newest
    assert ">investigating<" not in table


@pytest.mark.django_db
def test_history_changes_show_labels_local_times_and_a_dash_for_nothing(commander_client, changed):
    table = history_table(commander_client, incident_history(changed))
    acknowledged = next(row for row in rows(table) if "Acknowledged at" in row)
    arrow = r"\s*&nbsp;&rarr;&nbsp;&nbsp;"
    assert re.search(
        rf"<strong>Acknowledged at:</strong>\s*—{arrow}2 Mar 2026, 09:05:00 UTC", acknowledged
    )
    assert re.search(rf"<strong>Status:</strong>\s*Declared{arrow}Investigating", acknowledged)
    # Nowhere a raw value: no microseconds, no Python None, no lowercase code.
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", table)
    assert "None" not in table
    assert "→&nbsp;&nbsp;investigating" not in table


@pytest.mark.django_db
def test_history_shows_the_reason_given_and_when_in_the_local_zone(commander_client, changed):
    table = history_table(commander_client, incident_history(changed))
    rerated = next(row for row in rows(table) if "Only EU customers affected" in row)
    assert "<strong>Severity:</strong>" in rerated
    assert "SEV1 Critical" in rerated and "SEV2 High" in rerated
    with override_settings(TIME_ZONE="Europe/Paris"):
        table = history_table(commander_client, incident_history(changed))
    assert "2 Mar 2026, 10:05:00 CET" in table


@pytest.mark.django_db
def test_a_change_by_nobody_says_system(commander_client, declare):
    incident = declare(actor=None)
    table = history_table(commander_client, incident_history(incident))
    assert ">system<" in table


@pytest.mark.django_db
def test_policy_history_shows_durations_and_yes_no(client, django_user_model, default_policy):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin_user)
    severity = Severity.objects.get(key="SEV3")
    severity.acknowledge_within = timedelta(hours=2)
    severity.postmortem_required = True
    severity.save()
    url = reverse("admin:incidents_severity_history", args=[severity.pk])
    newest = rows(history_table(client, url))[0]
    assert "4 hours" in newest and "2 hours" in newest
    assert "<strong>Postmortem required:</strong>" in newest
    assert "no\n" in newest and "yes" in newest
    assert "4:00:00" not in newest


@pytest.mark.django_db
def test_action_item_history_and_progress_show_status_labels(commander_client, declare, commander):
    incident = declare(commander=commander)
    item = remediation_services.action_item_create(
        title="Add a canary stage",
        category=ActionItem.Category.PROCESS,
        incident=incident,
        owner=commander,
        actor=commander,
        source=Source.ADMIN,
    )
    remediation_services.action_item_transition(
        item=item, to_status=ActionItem.Status.IN_PROGRESS, actor=commander, source=Source.ADMIN
    )
    history = reverse("admin:remediation_actionitem_history", args=[item.pk])
    table = history_table(commander_client, history)
    assert "<td>In progress</td>" in table
    assert "in_progress" not in table
    assert f"<td>{item.due_on:%-d %b %Y}</td>" in table
    page = commander_client.get(reverse("admin:remediation_actionitem_change", args=[item.pk]))
    progress = page.content.decode()
    progress = progress[progress.index("Progress (add a note below)") :]
    assert "In progress" in progress and "in_progress" not in progress


@pytest.mark.django_db
def test_a_refused_item_move_names_statuses_in_words(declare, commander):
    item = remediation_services.action_item_create(
        title="Add a canary stage",
        category=ActionItem.Category.PROCESS,
        incident=declare(),
        actor=commander,
        source=Source.ADMIN,
    )
    remediation_services.action_item_transition(
        item=item, to_status=ActionItem.Status.WONT_DO, note="Replaced", source=Source.ADMIN
    )
    with pytest.raises(Exception) as refused:
        remediation_services.action_item_transition(
            item=item, to_status=ActionItem.Status.IN_PROGRESS, source=Source.ADMIN
        )
    assert "from won't do to in progress; allowed from won't do: open." in str(refused.value)
