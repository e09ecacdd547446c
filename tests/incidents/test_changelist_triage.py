"""The incident list for triage: open incidents by default, most urgent first, the
attention / mine / overdue / no-commander filters, rows that open the war room, and a
constant query count."""

import re
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import (
    Audience,
    BusinessCalendar,
    Incident,
    Role,
    Severity,
    Source,
    Status,
)
from incidents.queries import ack_overdue_q

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("core_only")]

CHANGELIST = reverse("admin:incidents_incident_changelist")


def listed(client, **params) -> list[str]:
    """The references the list shows, in order."""
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return re.findall(r">(INC-\d{4}-\d{4})<", response.content.decode())


@pytest.fixture
def cancelled(declare, sev2):
    incident = declare(title="False alarm", severity=sev2)
    services.incident_transition(incident=incident, to_status=Status.CANCELLED, source=Source.ADMIN)
    return incident


def test_the_list_shows_open_incidents_unless_asked_for_all(commander_client, declare, cancelled):
    burning = declare()
    assert listed(commander_client) == [burning.reference]
    assert set(listed(commander_client, open="all")) == {burning.reference, cancelled.reference}
    assert listed(commander_client, open="no") == [cancelled.reference]
    page = commander_client.get(CHANGELIST).content.decode()
    assert "?open=all" in page  # "All" is a choice of its own


def test_another_filter_or_a_search_looks_at_every_incident(commander_client, declare, cancelled):
    declare()
    assert listed(commander_client, status__exact="cancelled") == [cancelled.reference]
    assert listed(commander_client, q=cancelled.reference) == [cancelled.reference]


def test_overdue_first_then_severity_then_oldest(commander_client, declare, sev1, sev2):
    start = timezone.now() - timedelta(hours=5)
    with time_machine.travel(start, tick=False):
        old_sev2 = declare(title="Old SEV2", severity=sev2)  # ack overdue (1 h)
    with time_machine.travel(start + timedelta(hours=4, minutes=50), tick=False):
        new_sev1 = declare(title="New SEV1", severity=sev1, commander=None)
        newer_sev1 = declare(title="Newer SEV1", severity=sev1)
    with time_machine.travel(start + timedelta(hours=4, minutes=55), tick=False):
        fresh_sev2 = declare(title="Fresh SEV2", severity=sev2)
    assert listed(commander_client) == [
        old_sev2.reference,
        new_sev1.reference,
        newer_sev1.reference,
        fresh_sev2.reference,
    ]
    # A column click still sorts by that column.
    by_title = listed(commander_client, o="2")
    assert by_title == [
        fresh_sev2.reference,
        new_sev1.reference,
        newer_sev1.reference,
        old_sev2.reference,
    ]


def test_an_overdue_update_counts_as_overdue(commander_client, declare, sev1, sev2):
    with time_machine.travel(timezone.now() - timedelta(hours=3), tick=False):
        late = declare(title="Acknowledged, update late", severity=sev2)
        services.incident_acknowledge(incident=late, source=Source.ADMIN)
    on_time = declare(title="Fresh SEV1", severity=sev1)
    assert listed(commander_client) == [late.reference, on_time.reference]
    assert listed(commander_client, overdue="yes") == [late.reference]


def test_filter_needs_attention_matches_the_dashboard(commander_client, declare, commander):
    waiting = declare(title="Not acknowledged")
    calm = declare(title="All in hand", commander=commander)
    services.incident_acknowledge(incident=calm, source=Source.ADMIN)
    services.status_update_post(
        incident=calm, audience=Audience.INTERNAL, summary="Fixing", source=Source.ADMIN
    )
    candidate = declare(title="Candidate", triage=True, actor=None, source=Source.SYSTEM)
    shown = listed(commander_client, attention="yes")
    assert set(shown) == {waiting.reference, candidate.reference}


def test_filter_mine_lists_incidents_where_i_hold_any_role(client, declare, responder, commander):
    mine = declare(title="Bob is technical lead")
    services.role_assign(
        incident=mine, role=Role.TECHNICAL_LEAD, user=responder, source=Source.ADMIN
    )
    declare(title="Not Bob's")
    client.force_login(responder)
    assert listed(client, mine="yes") == [mine.reference]


def test_filter_no_commander(commander_client, declare, commander):
    lonely = declare(title="Nobody leads")
    declare(title="Alice leads", commander=commander)
    assert listed(commander_client, commander="none") == [lonely.reference]


def test_titles_are_cut_with_the_full_title_on_hover(commander_client, declare):
    title = "A very long title " * 8
    declare(title=title.strip())
    page = commander_client.get(CHANGELIST).content.decode()
    assert f'class="incident-title" title="{title.strip()}"' in page
    assert "incidents/console.css" in page


def test_rows_open_the_incident_page(commander_client, declare):
    incident = declare()
    page = commander_client.get(CHANGELIST).content.decode()
    assert f'href="{incident.get_absolute_url()}"' in page


def test_business_hours_deadline_is_exact_in_the_database(declare, outage):
    """SEV3 counts 4 business hours: declared Friday 16:00, it is due Monday 12:00."""
    sev3 = Severity.objects.get(key="SEV3")
    assert sev3.response_in_business_hours
    BusinessCalendar.objects.all().delete()
    BusinessCalendar.objects.create(
        name="Office",
        time_zone="UTC",
        working_days=[0, 1, 2, 3, 4],
        day_starts=time(9),
        day_ends=time(17),
    )
    friday = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    with time_machine.travel(friday, tick=False):
        incident = declare(severity=sev3, incident_type=outage)
    due = incident.ack_due_at
    assert due == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for moment, overdue in (
        (friday + timedelta(hours=5), False),  # a wall-clock count would say overdue
        (due - timedelta(seconds=1), False),
        (due + timedelta(seconds=1), True),
    ):
        found = Incident.objects.filter(ack_overdue_q(moment), pk=incident.pk).exists()
        assert found is overdue, moment
        assert incident.is_ack_overdue(moment) is overdue


def _populate(declare, commander, responder, count: int) -> None:
    for number in range(count):
        incident = declare(title=f"Incident {number}")
        services.role_assign(
            incident=incident, role=Role.SCRIBE, user=responder, source=Source.ADMIN
        )
        if number % 2:
            services.role_assign(
                incident=incident, role=Role.COMMANDER, user=commander, source=Source.ADMIN
            )
            services.incident_acknowledge(incident=incident, source=Source.ADMIN)
            services.status_update_post(
                incident=incident, audience=Audience.INTERNAL, summary="x", source=Source.ADMIN
            )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"open": "all"},
        {"attention": "yes"},
        {"mine": "yes"},
        {"overdue": "yes"},
        {"commander": "none"},
    ],
)
def test_the_list_costs_the_same_queries_at_any_size(
    commander_client, declare, commander, responder, params, django_assert_max_num_queries
):
    _populate(declare, commander, responder, 5)
    with django_assert_max_num_queries(30) as few:
        commander_client.get(CHANGELIST, params)
    _populate(declare, commander, responder, 25)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert commander_client.get(CHANGELIST, params).status_code == 200
