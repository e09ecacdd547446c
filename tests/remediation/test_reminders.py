"""Reminders about action items: overdue (daily, escalated after a grace period), the
weekly "due this week" digest and long blocks (once per blocking) — each once per period
however often the hourly schedule runs. Time is moved with time_machine."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError
from django.urls import reverse
from django_q.models import Schedule

from incidents.models import Notification, Source
from postmortems import services as pm_services
from postmortems.models import PostMortem
from remediation import reminders, services, tasks, vocabulary
from tests.conftest import make_user

# Monday 7 January 2030 (ISO week 2), long after the fixtures were created.
MONDAY = date(2030, 1, 7)
DAY = timedelta(days=1)


def at(day: date, hour: int = 9):
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tick=False)


def run(day: date, hour: int = 9, times: int = 1) -> int:
    with at(day, hour):
        return sum(reminders.send_reminders() for _ in range(times))


def sent(prefix: str, user=None):
    rows = Notification.objects.filter(
        event=vocabulary.Event.FOLLOW_UP, dedup_key__startswith=prefix
    )
    return rows.filter(recipient=user) if user is not None else rows


@pytest.fixture
def reviewer(db, django_user_model):
    return make_user(django_user_model, "rita", "Incident commanders", is_staff=True)


@pytest.fixture
def incident(declare, commander):
    return declare(commander=commander)


@pytest.fixture
def postmortem(declare, commander, reviewer) -> PostMortem:
    """A draft review of a resolved SEV1, handed to rita (the commander is alice)."""
    from incidents import services as incident_services
    from incidents.models import Status as IncidentStatus

    resolved = declare(title="Payments down", commander=commander)
    incident_services.incident_acknowledge(incident=resolved, actor=commander, source=Source.ADMIN)
    incident_services.incident_transition(
        incident=resolved, to_status=IncidentStatus.RESOLVED, source=Source.ADMIN
    )
    postmortem = PostMortem.objects.get(incident=resolved)
    return pm_services.postmortem_update(postmortem=postmortem, owner=reviewer, source=Source.ADMIN)


@pytest.fixture
def create(incident, commander, responder):
    """An item on `incident` owned by bob (created as alice, on MONDAY by default)."""

    def _create(day: date = MONDAY, **overrides):
        fields = {
            "title": "Add a pool size check",
            "category": "technical",
            "incident": incident,
            "owner": responder,
            "actor": commander,
        }
        fields.update(overrides)
        with at(day, 8):
            return services.action_item_create(source=Source.ADMIN, **fields)

    return _create


# --- overdue --------------------------------------------------------------------------


def test_overdue_owner_is_reminded_once_a_day(create, responder):
    item = create(due_on=MONDAY)
    overdue = f"action-item:{item.pk}:overdue:"

    run(MONDAY, times=3)  # due today: not overdue yet
    assert not sent(overdue).exists()

    run(MONDAY + DAY, hour=0)
    run(MONDAY + DAY, hour=12, times=2)
    run(MONDAY + DAY, hour=23)
    reminded = sent(overdue).get()
    assert reminded.recipient == responder
    assert reminded.dedup_key.startswith(f"{overdue}{MONDAY + DAY}:")
    assert "Overdue by 1 day" in reminded.subject
    assert item.title in reminded.subject

    run(MONDAY + 2 * DAY, times=2)
    assert sent(overdue, responder).count() == 2
    assert set(sent(overdue).values_list("recipient", flat=True)) == {responder.pk}


def test_the_task_runs_the_reminders(create, responder):
    item = create(due_on=MONDAY)
    with at(MONDAY + DAY):
        assert tasks.send_reminders() >= 1
        assert tasks.send_reminders() == 0
    assert sent(f"action-item:{item.pk}:overdue:", responder).count() == 1


def test_nothing_before_the_due_date(create):
    item = create(due_on=MONDAY + 30 * DAY)
    for offset in range(0, 30, 5):
        run(MONDAY + offset * DAY)
    assert not sent(f"action-item:{item.pk}:").exists()


@pytest.mark.parametrize("status", ["done", "wont_do"])
def test_finished_items_are_not_reminded(create, commander, status):
    item = create(due_on=MONDAY)
    with at(MONDAY, 10):
        services.action_item_transition(
            item=item,
            to_status=status,
            actor=commander,
            note="Settled.",
            source=Source.ADMIN,
        )
    for offset in range(1, 6):
        run(MONDAY + offset * DAY)
    assert not sent(f"action-item:{item.pk}:").exists()


@pytest.mark.parametrize("status", ["in_progress", "blocked"])
def test_unfinished_items_are_reminded(create, commander, responder, status):
    item = create(due_on=MONDAY)
    with at(MONDAY, 10):
        services.action_item_transition(
            item=item,
            to_status=status,
            actor=commander,
            note="Started.",
            source=Source.ADMIN,
        )
    run(MONDAY + DAY)
    assert sent(f"action-item:{item.pk}:overdue:", responder).count() == 1


def test_escalates_to_the_commander_when_the_item_has_no_review(
    create, commander, responder, settings
):
    assert settings.ACTION_ITEM_ESCALATE_AFTER_DAYS == 3
    item = create(due_on=MONDAY)
    escalated = f"action-item:{item.pk}:escalated:"

    for offset in (1, 2):
        run(MONDAY + offset * DAY, times=2)
    assert not sent(escalated).exists()

    run(MONDAY + 3 * DAY, times=3)
    told = sent(escalated).get()
    assert told.recipient == commander
    assert "bob" in told.body
    assert "3 days" in told.subject
    # The owner still hears daily, as before.
    assert sent(f"action-item:{item.pk}:overdue:", responder).count() == 3

    run(MONDAY + 4 * DAY, times=2)
    assert sent(escalated, commander).count() == 2
    assert sent(escalated).count() == 2


def test_escalates_to_the_review_owner(
    create, postmortem, commander, responder, reviewer, settings
):
    settings.ACTION_ITEM_ESCALATE_AFTER_DAYS = 1
    item = create(due_on=MONDAY, postmortem=postmortem, incident=None)
    run(MONDAY + DAY, times=2)
    escalated = sent(f"action-item:{item.pk}:escalated:")
    assert list(escalated.values_list("recipient", flat=True)) == [reviewer.pk]
    assert sent(f"action-item:{item.pk}:overdue:", responder).count() == 1


def test_an_unowned_overdue_item_still_escalates(create, commander):
    item = create(due_on=MONDAY, owner=None)
    run(MONDAY + 3 * DAY)
    assert not sent(f"action-item:{item.pk}:overdue:").exists()
    told = sent(f"action-item:{item.pk}:escalated:").get()
    assert told.recipient == commander
    assert "nobody" in told.body


# --- the weekly digest ----------------------------------------------------------------


def test_due_this_week_digest(create, commander, responder, reviewer):
    due_wed = create(title="Due Wednesday", due_on=MONDAY + 2 * DAY)
    due_sun = create(title="Due Sunday", due_on=MONDAY + 6 * DAY)
    next_mon = create(title="Due next Monday", due_on=MONDAY + 7 * DAY)
    create(title="Already overdue", due_on=MONDAY - DAY)
    finished = create(title="Finished early", due_on=MONDAY + DAY)
    with at(MONDAY, 8):
        services.action_item_transition(
            item=finished, to_status="done", actor=responder, source=Source.ADMIN
        )
    create(title="Rita's item", due_on=MONDAY + 3 * DAY, owner=reviewer)

    run(MONDAY, times=2)

    digest = sent("action-digest:")
    assert digest.count() == 2
    bob = sent("action-digest:", responder).get()
    assert bob.dedup_key.startswith(f"action-digest:{responder.pk}:2030-W02:")
    assert bob.incident is None
    assert "2 action item(s)" in bob.subject
    assert due_wed.title in bob.body and due_sun.title in bob.body
    assert bob.body.index(due_wed.title) < bob.body.index(due_sun.title)
    for absent in (next_mon.title, "Already overdue", "Finished early", "Rita's item"):
        assert absent not in bob.body
    rita = sent("action-digest:", reviewer).get()
    assert "Rita's item" in rita.body
    assert due_wed.title not in rita.body
    assert not sent("action-digest:", commander).exists()

    # Later the same week: nothing new, however often it runs.
    for offset in range(1, 7):
        run(MONDAY + offset * DAY, hour=23)
    assert digest.count() == 2

    # The next week: a new digest with what is due then.
    run(MONDAY + 7 * DAY)
    assert sent("action-digest:", responder).count() == 2
    latest = sent("action-digest:", responder).latest("id")
    assert latest.dedup_key.startswith(f"action-digest:{responder.pk}:2030-W03:")
    assert next_mon.title in latest.body
    assert due_wed.title not in latest.body  # overdue by then
    assert sent("action-digest:", reviewer).count() == 1  # nothing due for rita


def test_digest_week_spans_the_year_end(create, responder):
    # Monday 30 December 2030 belongs to ISO week 1 of 2031, like Sunday 5 January.
    create(due_on=date(2031, 1, 2))
    run(date(2030, 12, 30))
    run(date(2031, 1, 5))
    digest = sent("action-digest:", responder).get()
    assert digest.dedup_key.startswith(f"action-digest:{responder.pk}:2031-W01:")


def test_a_digest_naming_a_confidential_item_is_readable_only_by_those_who_may_see_it(
    client, create, declare, incident, responder, outsider, security_member, security_type
):
    secret = declare(title="Badge cloned", incident_type=security_type, actor=responder)
    create(title="Rotate the badge keys", incident=secret, due_on=MONDAY + DAY, actor=responder)
    create(title="Add a pool size check", due_on=MONDAY + 2 * DAY)
    run(MONDAY)
    digest = sent("action-digest:", responder).get()
    assert digest.incident is None
    assert "Rotate the badge keys" in digest.body
    assert set(digest.mentions.all()) == {secret, incident}

    def readable(user) -> bool:
        client.force_login(user)
        url = reverse("admin:incidents_notification_change", args=[digest.pk])
        listing = client.get(reverse("admin:incidents_notification_changelist"))
        shown = client.get(url)
        assert (url in listing.content.decode()) == (shown.status_code == 200)
        return "Rotate the badge keys" in shown.content.decode()

    outsider.groups.add(*responder.groups.all())  # may view the outbox, not the incident
    assert not readable(outsider)
    assert readable(responder)  # the recipient (and a participant)
    assert readable(security_member)


def test_an_item_on_an_incident_the_owner_may_not_see_stays_out_of_their_digest(
    create, declare, responder, commander, security_type
):
    secret = declare(title="Badge cloned", incident_type=security_type, actor=commander)
    with at(MONDAY, 8):
        services.action_item_create(
            title="Rotate the badge keys",
            category="technical",
            incident=secret,
            owner=commander,
            actor=commander,
            due_on=MONDAY + DAY,
            source=Source.ADMIN,
        )
    # The owner is then handed an item on the secret incident by the database alone.
    from remediation.models import ActionItem

    ActionItem.objects.filter(title="Rotate the badge keys").update(owner=responder)
    create(title="Add a pool size check", due_on=MONDAY + 2 * DAY)
    run(MONDAY)
    digest = sent("action-digest:", responder).get()
    assert "Rotate the badge keys" not in digest.body
    assert "1 action item(s)" in digest.subject
    assert not digest.mentions.filter(pk=secret.pk).exists()


# --- long blocks ----------------------------------------------------------------------


def block(item, actor, day: date, hour: int = 10):
    with at(day, hour):
        services.action_item_transition(
            item=item,
            to_status="blocked",
            actor=actor,
            note="Waiting for the vendor.",
            source=Source.ADMIN,
        )


def test_long_blocked_items_are_flagged_once_per_blocking(
    create, postmortem, commander, responder, reviewer, settings
):
    assert settings.ACTION_ITEM_BLOCKED_FLAG == timedelta(days=7)
    item = create(due_on=MONDAY + 365 * DAY, postmortem=postmortem, incident=None)
    flagged = f"action-item:{item.pk}:blocked-since:"
    block(item, commander, MONDAY)

    run(MONDAY + 7 * DAY, hour=9)  # 6 days 23 hours
    assert not sent(flagged).exists()

    run(MONDAY + 7 * DAY, hour=11, times=2)
    assert set(sent(flagged).values_list("recipient", flat=True)) == {
        responder.pk,
        reviewer.pk,
    }
    assert sent(flagged).count() == 2
    assert "Waiting for the vendor." in sent(flagged).first().body

    for offset in range(8, 12):
        run(MONDAY + offset * DAY)
    assert sent(flagged).count() == 2

    # Unblocked, then blocked again: a new blocking, flagged again once it is old.
    with at(MONDAY + 12 * DAY):
        services.action_item_transition(
            item=item, to_status="in_progress", actor=responder, source=Source.ADMIN
        )
    block(item, responder, MONDAY + 13 * DAY)
    run(MONDAY + 15 * DAY)
    assert sent(flagged).count() == 2
    run(MONDAY + 21 * DAY)
    run(MONDAY + 22 * DAY)
    assert sent(flagged, responder).count() == 2
    assert sent(flagged, reviewer).count() == 2


def test_a_long_block_without_review_tells_the_commander(create, commander, responder):
    item = create(due_on=MONDAY + 365 * DAY)
    block(item, responder, MONDAY)
    run(MONDAY + 8 * DAY)
    recipients = set(
        sent(f"action-item:{item.pk}:blocked-since:").values_list("recipient", flat=True)
    )
    assert recipients == {responder.pk, commander.pk}


def test_a_short_block_is_not_flagged(create, commander):
    item = create(due_on=MONDAY + 365 * DAY)
    block(item, commander, MONDAY)
    with at(MONDAY + 3 * DAY):
        services.action_item_transition(
            item=item, to_status="open", actor=commander, source=Source.ADMIN
        )
    run(MONDAY + 20 * DAY)
    assert not sent(f"action-item:{item.pk}:blocked-since:").exists()


# --- the schedule ---------------------------------------------------------------------


def test_the_schedule_exists_after_migrate(db):
    schedule = Schedule.objects.get(func="remediation.tasks.send_reminders")
    assert schedule.schedule_type == Schedule.HOURLY


def test_reminders_are_delivered_by_email(
    create, responder, mailoutbox, django_capture_on_commit_callbacks
):
    # Q runs synchronously in tests: once the reminder commits, the email goes out.
    item = create(due_on=MONDAY)
    mailoutbox.clear()
    with at(MONDAY + DAY), django_capture_on_commit_callbacks(execute=True):
        assert reminders.remind_overdue() == 1
    row = sent(f"action-item:{item.pk}:overdue:", responder).get()
    row.refresh_from_db()
    assert row.state == Notification.State.DELIVERED
    assert [message.to for message in mailoutbox] == [[responder.email]]
    assert item.title in mailoutbox[0].subject


def test_a_reminder_another_worker_sent_first_does_not_stop_the_others(
    create, responder, commander, monkeypatch
):
    first, second = create(due_on=MONDAY), create(due_on=MONDAY, owner=commander)
    real_notify = reminders.notifications.notify

    def racing_notify(incident, event, **kwargs):
        if kwargs["dedup_prefix"].startswith(f"action-item:{first.pk}:"):
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_notify(incident, event, **kwargs)

    monkeypatch.setattr(reminders.notifications, "notify", racing_notify)
    assert run(MONDAY + DAY) >= 1
    assert not sent(f"action-item:{first.pk}:overdue:").exists()
    assert sent(f"action-item:{second.pk}:overdue:", commander).exists()
