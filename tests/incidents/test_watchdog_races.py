"""Watchdog rounds racing each other, and an acknowledgement racing a round, on a real
PostgreSQL server: each step fires once, each person is paged once, and an incident
acknowledged while a round waits for it is not escalated."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from incidents import services, watchdogs
from incidents.models import (
    EscalationLevel,
    EscalationStep,
    Notification,
    Role,
    Source,
    TimelineEvent,
)
from tests.conftest import make_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real concurrency"),
    pytest.mark.django_db(transaction=True),
]

LATER = timedelta(hours=5)  # every escalation level of a SEV1 is due by then


def race(workers: int, work) -> list:
    """Run `work()` on `workers` threads released at once; return what each returned."""
    barrier = threading.Barrier(workers)
    results, errors, lock = [], [], threading.Lock()

    def run():
        try:
            barrier.wait(timeout=30)
            result = work()
            with lock:
                results.append(result)
        except Exception as error:  # reported below, on the main thread
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


@pytest.fixture
def levels(django_user_model):
    """Someone on every escalation level (at least three: a flush may have removed the
    migration's); return how many levels there are."""
    for number in (1, 2, 3):
        EscalationLevel.objects.get_or_create(level=number, defaults={"name": f"L{number}"})
    for level in EscalationLevel.objects.all():
        level.members.add(make_user(django_user_model, f"level{level.level}"))
    return EscalationLevel.objects.count()


def test_racing_escalation_rounds_fire_each_step_and_page_each_person_once(declare, levels):
    incidents = [declare(title=f"Storm {n}") for n in range(3)]
    now = timezone.now() + LATER

    fired = race(4, lambda: watchdogs.escalate_unacknowledged(now=now))

    assert sum(fired) == levels * len(incidents)
    assert EscalationStep.objects.count() == levels * len(incidents)
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.ESCALATION).count() == (
        levels * len(incidents)
    )
    pages = Counter(
        Notification.objects.filter(event="escalation").values_list("incident_id", "address")
    )
    assert len(pages) == levels * len(incidents)
    assert set(pages.values()) == {1}


def test_racing_reminder_rounds_remind_each_person_once(declare, commander, responder):
    incidents = [declare(title=f"Storm {n}", commander=commander) for n in range(3)]
    for incident in incidents:
        services.role_assign(
            incident=incident, role=Role.COMMUNICATIONS_LEAD, user=responder, source=Source.ADMIN
        )
    now = timezone.now() + LATER

    reminded = race(4, lambda: watchdogs.remind_overdue_updates(now=now))

    assert sum(reminded) == len(incidents)  # each incident counted by one round only
    reminders = Counter(
        Notification.objects.filter(event="update_reminder").values_list("incident_id", "address")
    )
    assert len(reminders) == 2 * len(incidents)  # the commander and the comms lead
    assert set(reminders.values()) == {1}


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_an_incident_acknowledged_while_a_round_waits_for_it_is_not_escalated(declare, levels):
    incident = declare()
    acknowledging, release = threading.Event(), threading.Event()

    def acknowledge_slowly():
        try:
            with transaction.atomic():
                services.incident_acknowledge(incident=incident, source=Source.ADMIN)
                acknowledging.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    fired = []

    def escalate():
        try:
            fired.append(watchdogs.escalate_unacknowledged(now=timezone.now() + LATER))
        finally:
            connection.close()

    acknowledger = threading.Thread(target=acknowledge_slowly)
    acknowledger.start()
    assert acknowledging.wait(timeout=30)
    # The round saw the incident unacknowledged (not yet committed) and now waits for
    # the row the acknowledgement holds.
    watchdog = threading.Thread(target=escalate)
    watchdog.start()
    deadline = time.monotonic() + 30
    while not waiting_for_a_lock():
        assert time.monotonic() < deadline, "the round never waited for the incident"
        time.sleep(0.01)
    release.set()
    acknowledger.join(timeout=30)
    watchdog.join(timeout=30)

    assert fired == [0]
    assert not EscalationStep.objects.exists()
    assert not Notification.objects.filter(event="escalation").exists()
