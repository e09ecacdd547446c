"""The hot paths cost a fixed number of queries, whatever their size: notify() to many
recipients, the watchdogs over many incidents (an alert storm), a declaration with many
services and stakeholders. Each is measured at two sizes; the same count at both is what
rules out a query per row, and the pinned count keeps new fixed costs visible."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import notifications, services, watchdogs
from incidents.models import (
    ChannelKind,
    ChannelTarget,
    EscalationLevel,
    EscalationStep,
    Notification,
    Role,
    Service,
    Source,
    StakeholderGroup,
    TimelineEvent,
)
from tests.conftest import make_user

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
Event = Notification.Event


def queries(call) -> tuple[int, object]:
    """Return how many queries `call()` ran, and what it returned."""
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured), result


def people(django_user_model, prefix: str, count: int) -> list:
    return [make_user(django_user_model, f"{prefix}{n}") for n in range(count)]


def webhooks(prefix: str, count: int) -> list[ChannelTarget]:
    return [
        ChannelTarget.objects.create(
            name=f"{prefix}{n}", kind=ChannelKind.WEBHOOK, address=f"https://hooks.test/{prefix}{n}"
        )
        for n in range(count)
    ]


# --- notify ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 20])
def test_notify_to_people_and_targets_costs_the_same_at_any_size(size, declare, django_user_model):
    incident = declare()
    users, targets = people(django_user_model, "u", size), webhooks("t", size)
    step = f"escalation:{incident.pk}:1"

    def page():
        return notifications.notify(
            incident, Event.ESCALATION, users=users, targets=targets, dedup_prefix=step
        )

    # The keys already taken, the templates, the incident's facts, one insert.
    count, written = queries(page)
    assert (count, len(written)) == (4, 2 * size)
    assert all(notification.pk for notification in written)
    # The same step again pages nobody, and costs one read.
    assert queries(page) == (1, [])


@pytest.mark.parametrize("size", [2, 20])
def test_notify_to_the_matrix_costs_the_same_at_any_size(size, declare, django_user_model):
    incident = declare()
    on_call = StakeholderGroup.objects.get(slug="on-call-engineers")
    on_call.members.add(*people(django_user_model, "u", size))
    on_call.targets.add(*webhooks("t", size))

    count, written = queries(
        lambda: notifications.notify(incident, Event.STATUS_CHANGED, message="Rolled back")
    )

    # Members and targets of the groups (one query), the templates, the facts, one insert.
    assert (count, len(written)) == (4, 2 * size)


# --- watchdogs ------------------------------------------------------------------------


@pytest.fixture
def storm(declare, django_user_model, commander, responder):
    """Declare `size` SEV1 incidents at T0, each with a commander and a comms lead, and
    someone on every escalation level."""
    for level in EscalationLevel.objects.all():
        level.members.add(make_user(django_user_model, f"level{level.level}"))

    def _storm(size):
        with time_machine.travel(T0, tick=False):
            for n in range(size):
                incident = declare(title=f"Storm {n}", commander=commander)
                services.role_assign(
                    incident=incident,
                    role=Role.COMMUNICATIONS_LEAD,
                    user=responder,
                    source=Source.ADMIN,
                )
        Notification.objects.all().delete()

    return _storm


@pytest.mark.parametrize("size", [2, 12])
def test_escalation_costs_the_same_for_any_number_of_incidents(size, storm):
    storm(size)
    levels = EscalationLevel.objects.count()

    # SEV1: acknowledge within 15 min, then a level every 15 min.
    nothing_due = queries(lambda: watchdogs.escalate_unacknowledged(now=T0 + 5 * MINUTE))
    every_level_due = queries(lambda: watchdogs.escalate_unacknowledged(now=T0 + 5 * 60 * MINUTE))
    all_fired = queries(lambda: watchdogs.escalate_unacknowledged(now=T0 + 6 * 60 * MINUTE))

    assert nothing_due == (3, 0)  # the levels, the waiting incidents, their steps
    # + the people and targets of the levels; then, in one transaction: the locks, the
    # steps fired meanwhile, the steps, their timeline events and history, the pages.
    assert every_level_due == (16, levels * size)
    assert all_fired == (2, 0)  # none waits for a level any more
    assert EscalationStep.objects.count() == levels * size
    assert TimelineEvent.objects.filter(kind=TimelineEvent.Kind.ESCALATION).count() == (
        levels * size
    )
    assert Notification.objects.filter(event=Event.ESCALATION).count() == levels * size


@pytest.mark.parametrize("size", [2, 12])
def test_update_reminders_cost_the_same_for_any_number_of_incidents(size, storm):
    storm(size)

    # SEV1: an update every 30 min.
    nothing_due = queries(lambda: watchdogs.remind_overdue_updates(now=T0 + 29 * MINUTE))
    all_due = queries(lambda: watchdogs.remind_overdue_updates(now=T0 + 31 * MINUTE))
    again = queries(lambda: watchdogs.remind_overdue_updates(now=T0 + 35 * MINUTE))

    assert nothing_due == (1, 0)  # the working incidents with their promised updates
    assert all_due == (8, size)
    assert again == (5, 0)  # read who is due, find every reminder already written
    # The commander and the communications lead of each, once.
    assert Notification.objects.filter(event=Event.UPDATE_REMINDER).count() == 2 * size


# --- declaration ----------------------------------------------------------------------


@pytest.mark.usefixtures("core_only")  # the core's cost; on-call's: tests/oncall
@pytest.mark.parametrize("service_count, stakeholders", [(1, 1), (5, 10)])
def test_declaring_costs_the_same_with_any_number_of_services_and_stakeholders(
    service_count, stakeholders, declare, django_user_model
):
    catalogue = [Service.objects.create(name=f"S{n}", slug=f"s{n}") for n in range(service_count)]
    on_call = StakeholderGroup.objects.get(slug="on-call-engineers")
    on_call.members.add(*people(django_user_model, "s", stakeholders))
    lead = make_user(django_user_model, "lead")
    declare(title="First of the year")  # the year's reference counter exists

    count, incident = queries(lambda: declare(services=catalogue, commander=lead))

    # Was 35 (one service, one stakeholder) and 44 (five, ten) before batching, 22 before
    # step 11. Now 12 statements and the savepoint around them (SAVEPOINT, RELEASE).
    assert count == 14
    assert incident.services.count() == service_count
    assert incident.history.count() == 1  # created with its services
    assert list(incident.timeline.values_list("kind", flat=True)) == ["declared", "role_change"]
    told = Notification.objects.filter(incident=incident)
    assert told.filter(event=Event.DECLARED).count() == stakeholders
    assert list(told.filter(event=Event.ROLE_ASSIGNED).values_list("address", flat=True)) == [
        "lead@example.com"
    ]
