"""Business-hours deadlines, escalation of unacknowledged incidents, update reminders."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from incidents import services, watchdogs
from incidents.business_time import add_business_time
from incidents.models import (
    BusinessCalendar,
    EscalationLevel,
    EscalationStep,
    Holiday,
    Notification,
    Role,
    Severity,
    Source,
    TimelineEvent,
)
from tests.conftest import make_user

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday 2 March 2026
MINUTE = timedelta(minutes=1)


@pytest.fixture
def office(db):
    calendar = BusinessCalendar.objects.get()  # from the migration: Mon–Fri 09–17 UTC
    calendar.holiday_dates = set()
    return calendar


@pytest.mark.parametrize(
    "start, duration, expected",
    [
        (MONDAY_10, timedelta(hours=4), datetime(2026, 3, 2, 14, 0, tzinfo=UTC)),
        # 16:00 + 4 working hours = 1 h today + 3 h tomorrow
        (
            datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
            timedelta(hours=4),
            datetime(2026, 3, 3, 12, 0, tzinfo=UTC),
        ),
        # Friday 15:00 + 4 h runs into Monday
        (
            datetime(2026, 3, 6, 15, 0, tzinfo=UTC),
            timedelta(hours=4),
            datetime(2026, 3, 9, 11, 0, tzinfo=UTC),
        ),
        # declared on Saturday: the clock starts Monday 09:00
        (
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
            timedelta(hours=4),
            datetime(2026, 3, 9, 13, 0, tzinfo=UTC),
        ),
        # 5 business days from Wednesday 10:00 is next Wednesday 10:00
        (
            datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
            timedelta(days=5),
            datetime(2026, 3, 11, 10, 0, tzinfo=UTC),
        ),
    ],
)
def test_business_time(office, start, duration, expected):
    assert add_business_time(start, duration, office) == expected


def test_business_time_skips_holidays(office):
    office.holiday_dates = {date(2026, 3, 3)}
    end = add_business_time(datetime(2026, 3, 2, 16, 0, tzinfo=UTC), timedelta(hours=4), office)
    assert end == datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def test_business_time_counts_in_the_calendars_time_zone(office):
    office.time_zone = "Europe/Paris"  # 09:00 Paris is 08:00 UTC in March
    end = add_business_time(datetime(2026, 3, 2, 6, 0, tzinfo=UTC), timedelta(hours=1), office)
    assert end == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_sev3_acknowledgement_is_due_in_business_hours(declare, db):
    sev3 = Severity.objects.get(key="SEV3")  # 4 h, business hours
    with time_machine.travel(datetime(2026, 3, 6, 15, 0, tzinfo=UTC), tick=False):
        incident = declare(severity=sev3)
    assert incident.ack_due_at == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)


def test_holiday_added_in_admin_moves_the_deadline(declare, db):
    sev3 = Severity.objects.get(key="SEV3")
    with time_machine.travel(datetime(2026, 3, 6, 15, 0, tzinfo=UTC), tick=False):
        incident = declare(severity=sev3)
    Holiday.objects.create(calendar=BusinessCalendar.objects.get(), date=date(2026, 3, 9), name="x")
    assert incident.ack_due_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


@pytest.fixture
def ladder(django_user_model):
    people = {}
    for level in EscalationLevel.objects.all():
        person = make_user(django_user_model, f"l{level.level}")
        level.members.add(person)
        people[level.level] = person
    cache.clear()
    return people


def test_unacknowledged_sev1_escalates_level_by_level(declare, ladder):
    with time_machine.travel(MONDAY_10, tick=False):
        incident = declare()  # SEV1: acknowledge within 15 min, escalate every 15 min
    assert watchdogs.escalate_unacknowledged(now=MONDAY_10 + 14 * MINUTE) == 0
    assert watchdogs.escalate_unacknowledged(now=MONDAY_10 + 16 * MINUTE) == 1
    assert watchdogs.escalate_unacknowledged(now=MONDAY_10 + 46 * MINUTE) == 2  # L2, L3
    steps = list(EscalationStep.objects.filter(incident=incident).values_list("level", flat=True))
    assert steps == [1, 2, 3]
    paged = Notification.objects.filter(event="escalation").values_list("address", flat=True)
    assert sorted(paged) == ["l1@example.com", "l2@example.com", "l3@example.com"]
    assert incident.timeline.filter(kind=TimelineEvent.Kind.ESCALATION).count() == 3


def test_escalation_pages_nobody_twice(declare, ladder):
    with time_machine.travel(MONDAY_10, tick=False):
        declare()
    watchdogs.escalate_unacknowledged(now=MONDAY_10 + 16 * MINUTE)
    assert watchdogs.escalate_unacknowledged(now=MONDAY_10 + 17 * MINUTE) == 0
    assert Notification.objects.filter(event="escalation").count() == 1


def test_acknowledging_stops_escalation(declare, ladder):
    with time_machine.travel(MONDAY_10, tick=False):
        incident = declare()
    with time_machine.travel(MONDAY_10 + 20 * MINUTE, tick=False):
        watchdogs.escalate_unacknowledged()
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)
    assert watchdogs.escalate_unacknowledged(now=MONDAY_10 + 90 * MINUTE) == 0
    assert list(incident.escalations.values_list("level", flat=True)) == [1]


def test_overdue_update_reminds_commander_and_comms_lead_once(declare, commander, responder):
    with time_machine.travel(MONDAY_10, tick=False):
        incident = declare(commander=commander)
        services.role_assign(
            incident=incident, role=Role.COMMUNICATIONS_LEAD, user=responder, source=Source.ADMIN
        )
    Notification.objects.all().delete()
    assert watchdogs.remind_overdue_updates(now=MONDAY_10 + 29 * MINUTE) == 0
    assert watchdogs.remind_overdue_updates(now=MONDAY_10 + 31 * MINUTE) == 1
    assert watchdogs.remind_overdue_updates(now=MONDAY_10 + 35 * MINUTE) == 0
    reminded = Notification.objects.filter(event="update_reminder").values_list(
        "address", flat=True
    )
    assert sorted(reminded) == ["alice@example.com", "bob@example.com"]


def test_posting_an_update_resets_the_cadence(declare, commander):
    with time_machine.travel(MONDAY_10, tick=False):
        incident = declare(commander=commander)
    with time_machine.travel(MONDAY_10 + 20 * MINUTE, tick=False):
        services.status_update_post(
            incident=incident, audience="internal", summary="Working", source=Source.ADMIN
        )
    assert watchdogs.remind_overdue_updates(now=MONDAY_10 + 45 * MINUTE) == 0
    assert watchdogs.remind_overdue_updates(now=MONDAY_10 + 51 * MINUTE) == 1


def test_admin_marks_update_overdue(commander_client, declare):
    with time_machine.travel(MONDAY_10, tick=False):
        declare()
    with time_machine.travel(MONDAY_10 + 45 * MINUTE, tick=False):
        body = commander_client.get("/admin/incidents/incident/").content.decode()
    assert "update overdue 15m" in body


def test_an_escalation_level_that_pages_nobody_says_so_and_tells_the_commander(
    declare, commander, ladder
):
    level_two = EscalationLevel.objects.get(level=2)
    level_two.members.clear()  # nobody on it, and no channel
    with time_machine.travel(MONDAY_10, tick=False):
        incident = declare(commander=commander)
    watchdogs.escalate_unacknowledged(now=MONDAY_10 + 31 * MINUTE)  # L1 and L2 due

    l2_event = incident.timeline.get(kind=TimelineEvent.Kind.ESCALATION, details__level=2)
    assert "pages nobody" in l2_event.summary
    told = Notification.objects.get(
        event="escalation", dedup_key__startswith=f"escalation:{incident.pk}:2:"
    )
    assert told.recipient == commander
    assert "pages nobody" in told.body
    # The level that does reach someone pages as before.
    l1 = Notification.objects.get(
        event="escalation", dedup_key__startswith=f"escalation:{incident.pk}:1:"
    )
    assert l1.recipient == ladder[1]
    assert "pages nobody" not in incident.timeline.get(details__level=1).summary
