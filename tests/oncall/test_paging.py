"""The paging engine (oncall.services.paging), under a controlled clock: a page's plan
from its person's rules, the watchdog sending each step once when it is due, answers
that stop the steps, and paging that is never silent."""

import json
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import extensions, notifications, services
from incidents.errors import StateConflict
from incidents.models import Notification, Source, Status, TimelineEvent
from oncall.models import Page, Urgency
from oncall.services import paging
from oncall.vocabulary import Event

START = datetime.fromisoformat("2026-03-02T10:00:00+00:00")


def minutes(page) -> list[int]:
    return [step["after"] // 60 for step in page.plan]


def page_rows(page):
    return Notification.objects.filter(event=Event.PAGE, recipient=page.user).order_by("pk")


@pytest.fixture(autouse=True)
def engine_alone():
    """The paging engine's own subscriber only: declaring pages nobody by itself (team
    activation is tested on its own), so each test sees only the pages it starts."""
    with extensions.only(paging.stop_pages_on_transition):
        yield


@pytest.fixture
def bob_rules(responder, make_method, make_rule):
    """Bob: email now, then a text after 5 minutes, again every 10 minutes, 3 times."""
    email = make_method(responder, "email", "bob@pager.example.com")
    sms = make_method(responder, "sms", "+447700900123")
    make_rule(email)
    make_rule(sms, delay=5, repeat_every=10, repeat_times=3)
    return email, sms


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_the_plan_follows_the_rules_step_by_step(db, bob_rules, responder):
    [plan] = paging.plans_for([responder], Urgency.HIGH).values()
    assert [(step["after"] // 60, step["channel"]) for step in plan] == [
        (0, "email"),
        (5, "sms"),
        (15, "sms"),
        (25, "sms"),
        (35, "sms"),
    ]


def test_rules_of_the_other_urgency_are_not_in_the_plan(db, bob_rules, responder):
    [plan] = paging.plans_for([responder], Urgency.LOW).values()
    # No low-urgency rule: the account's email address, once.
    assert plan == [{"after": 0, "channel": "email", "address": "bob@example.com"}]


def test_a_page_sends_its_first_step_at_once_and_waits_for_the_next(
    db, clock, bob_rules, declare, responder, page_by_hand
):
    incident = declare()
    [page] = page_by_hand(incident, responder).pages
    assert minutes(page) == [0, 5, 15, 25, 35]
    page.refresh_from_db()
    assert page.steps_sent == 1
    assert page.next_step_at == START + timedelta(minutes=5)
    [row] = page_rows(page)
    assert (row.channel, row.address) == ("email", "bob@pager.example.com")
    assert paging.ack_link(page) in row.body
    said = TimelineEvent.objects.filter(incident=incident, kind="paging").get()
    assert said.summary.startswith("Paged bob (email bob@pager.example.com now, sms")


def test_the_watchdog_sends_exactly_the_due_steps_once(
    db, clock, bob_rules, declare, responder, page_by_hand
):
    [page] = page_by_hand(declare(), responder).pages

    clock.move_to(START + timedelta(minutes=4, seconds=59))
    assert paging.pages_advance() == 0

    clock.move_to(START + timedelta(minutes=16))  # the 5- and 15-minute steps are due
    assert paging.pages_advance() == 2
    assert paging.pages_advance() == 0  # a second round (or worker) sends nothing again
    page.refresh_from_db()
    assert page.steps_sent == 3
    assert page.next_step_at == START + timedelta(minutes=25)
    assert [row.channel for row in page_rows(page)] == ["email", "sms", "sms"]

    clock.move_to(START + timedelta(hours=2))
    assert paging.pages_advance() == 2
    page.refresh_from_db()
    assert page.steps_sent == 5 and page.next_step_at is None
    assert page_rows(page).count() == 5
    again = TimelineEvent.objects.filter(incident=page.incident, summary__contains="again")
    assert again.count() == 4
    assert "step 5 of 5, not acknowledged" in again.latest("pk").summary


def test_acknowledging_stops_further_steps(db, clock, bob_rules, declare, responder, page_by_hand):
    [page] = page_by_hand(declare(), responder).pages
    clock.move_to(START + timedelta(minutes=6))
    paging.pages_advance()
    paging.page_acknowledge(page=page, actor=responder, via="api", source=Source.API)

    clock.move_to(START + timedelta(hours=2))
    assert paging.pages_advance() == 0
    page.refresh_from_db()
    assert page.steps_sent == 2 and page.next_step_at is None
    assert page_rows(page).count() == 2


def test_acknowledging_twice_is_refused_and_changes_nothing(
    db, clock, declare, responder, page_by_hand
):
    [page] = page_by_hand(declare(), responder).pages
    paging.page_acknowledge(page=page, actor=responder, via="api", source=Source.API)
    with pytest.raises(StateConflict, match="already acknowledged at 2026-03-02 10:00"):
        paging.page_acknowledge(page=page, actor=responder, via="link", source=Source.API)
    page.refresh_from_db()
    assert page.acknowledged_via == "api"


def test_acknowledging_the_page_of_a_declared_incident_acknowledges_it(
    db, clock, declare, responder, page_by_hand
):
    incident = declare()
    [page] = page_by_hand(incident, responder).pages
    paging.page_acknowledge(page=page, actor=responder, via="link", source=Source.API)
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at == START
    timeline = TimelineEvent.objects.filter(incident=incident).order_by("pk")
    ack = timeline.get(summary="bob acknowledged the page (link)")
    transition = timeline.filter(pk__gt=ack.pk, kind="status_change").get()
    assert transition.author == responder


def test_acknowledging_a_page_of_an_incident_already_acknowledged_leaves_it_alone(
    db, clock, declare, commander, responder, page_by_hand
):
    incident = declare()
    [page] = page_by_hand(incident, responder).pages
    services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    paging.page_acknowledge(page=page, actor=responder, via="link", source=Source.API)
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING
    assert incident.history.latest().history_user == commander


def test_acknowledging_the_incident_stops_the_pages_that_escalated_it(
    db, clock, bob_rules, declare, commander, responder, page_by_hand
):
    incident = declare()
    [page] = page_by_hand(incident, responder, reason=Page.Reason.ESCALATION).pages
    services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    page.refresh_from_db()
    assert page.stopped_at == START and page.stopped_because == "acknowledged by alice"
    clock.move_to(START + timedelta(hours=1))
    assert paging.pages_advance() == 0
    assert page_rows(page).count() == 1


def test_a_page_that_staffs_a_role_repeats_until_its_person_answers(
    db, clock, bob_rules, declare, commander, responder, page_by_hand
):
    # Someone acknowledging the incident does not mean the scribe knows they are one.
    incident = declare()
    [page] = page_by_hand(incident, responder, reason=Page.Reason.ACTIVATION).pages
    services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    clock.move_to(START + timedelta(minutes=5))
    assert paging.pages_advance() == 1
    paging.page_acknowledge(page=page, actor=responder, via="admin", source=Source.ADMIN)
    clock.move_to(START + timedelta(hours=1))
    assert paging.pages_advance() == 0
    # Resolving it stops whatever is still open.
    [other] = page_by_hand(incident, commander, reason=Page.Reason.ACTIVATION).pages
    services.incident_transition(
        incident=incident, to_status=Status.RESOLVED, actor=commander, source=Source.ADMIN
    )
    other.refresh_from_db()
    assert other.stopped_at is not None and other.next_step_at is None


def test_paging_someone_still_paged_for_the_same_reason_does_not_page_again(
    db, clock, declare, responder, page_by_hand
):
    incident = declare()
    page_by_hand(incident, responder)
    again = page_by_hand(incident, responder)
    assert again.pages == [] and again.unreachable == []
    assert Page.objects.filter(incident=incident, user=responder).count() == 1


def test_someone_who_cannot_be_reached_is_named_and_the_lead_is_told(
    db, clock, declare, commander, make_person, page_by_hand
):
    gone = make_person("dave", is_active=False)
    silent = make_person("erin")
    silent.email = ""
    silent.save()
    incident = declare()

    paged = page_by_hand(incident, gone, silent, why="as technical lead")

    assert not paged.reached_anyone
    assert {user.username for user in paged.unreachable} == {"dave", "erin"}
    assert not Page.objects.filter(incident=incident).exists()
    said = TimelineEvent.objects.filter(incident=incident, kind="paging").get()
    assert said.summary.startswith("Paged nobody as technical lead. Cannot page dave, erin")
    assert said.details["paged_nobody"] is True
    [told] = Notification.objects.filter(incident=incident, event=Event.PAGE_PROBLEM)
    assert told.recipient == commander and told.address == commander.email
    assert "dave, erin cannot be reached" in told.body


def test_a_person_reached_among_others_is_paged_and_the_others_named(
    db, clock, declare, responder, make_person, page_by_hand
):
    gone = make_person("dave", is_active=False)
    incident = declare()
    paged = page_by_hand(incident, responder, gone)
    assert [page.user for page in paged.pages] == [responder]
    said = TimelineEvent.objects.filter(incident=incident, kind="paging").get()
    assert "Cannot page dave" in said.summary
    assert not Notification.objects.filter(event=Event.PAGE_PROBLEM).exists()


def test_a_confidential_incident_is_paged_without_its_title(
    db, clock, declare, security_type, responder, page_by_hand
):
    incident = declare(
        title="Credential stuffing on login", incident_type=security_type, confidential=True
    )
    [page] = page_by_hand(incident, responder).pages
    [row] = page_rows(page)
    assert incident.reference in row.subject
    assert "Credential stuffing" not in row.subject
    assert "Credential stuffing" not in row.body
    assert "a confidential incident" in row.body


def _due_page(declare, user, page_by_hand):
    # One rule, email now and again after a minute: the second step is due from START+1min.
    with notifications.muted():
        incident = declare()
    return page_by_hand(incident, user).pages[0]


def test_the_watchdog_costs_the_same_with_200_incidents_with_nothing_due(
    db, clock, declare, responder, make_method, make_rule, make_person, page_by_hand
):
    make_rule(make_method(responder), repeat_every=1, repeat_times=1)
    _due_page(declare, responder, page_by_hand)
    clock.move_to(START + timedelta(minutes=2))
    with CaptureQueriesContext(connection) as alone:
        assert paging.pages_advance() == 1

    # 200 incidents, each with a page whose steps are all sent.
    clock.move_to(START)
    quiet = make_person("quinn")
    with notifications.muted():
        for _ in range(200):
            page_by_hand(declare(), quiet)
    carol = make_person("carl")
    make_rule(make_method(carol), repeat_every=1, repeat_times=1)
    _due_page(declare, carol, page_by_hand)

    clock.move_to(START + timedelta(minutes=2))
    with CaptureQueriesContext(connection) as crowded:
        assert paging.pages_advance() == 1
    assert len(crowded) <= len(alone)


def test_the_watchdog_with_nothing_due_reads_one_query(db, clock, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert paging.pages_advance() == 0


def test_a_webhook_page_of_a_confidential_incident_carries_no_title(
    declare, responder, make_method, make_rule
):
    make_rule(make_method(responder, "webhook", "https://hooks.example.com/bob"))
    incident = declare(title="Secret breach of the vault", confidential=True)
    paging.page_people(
        incident=incident,
        users=[responder],
        reason=Page.Reason.MANUAL,
        why="by hand",
        source=Source.API,
    )
    sent = Notification.objects.get(incident=incident, recipient=responder, channel="webhook")
    assert sent.payload["incident"]["reference"] == incident.reference
    assert "Secret breach" not in json.dumps(sent.payload) + sent.subject + sent.body


def test_a_long_webhook_address_still_gets_each_step_once(
    clock, declare, responder, make_method, make_rule
):
    # Chat webhooks run long; the key that makes a step once must still fit its column.
    url = "https://hooks.example.com/" + "x" * 400
    make_rule(make_method(responder, "webhook", url), repeat_every=10, repeat_times=1)
    incident = declare()
    paging.page_people(
        incident=incident, users=[responder], reason=Page.Reason.MANUAL, why="by hand",
        source=Source.API,
    )  # fmt: skip
    clock.move_to(START + timedelta(minutes=10))
    assert paging.pages_advance() == 1
    assert paging.pages_advance() == 0
    keys = list(
        Notification.objects.filter(recipient=responder).values_list("dedup_key", flat=True)
    )
    assert len(set(keys)) == 2 and all(len(key) <= 200 for key in keys)
