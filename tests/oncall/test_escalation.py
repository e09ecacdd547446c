"""Escalation policies: unacknowledged and stuck incidents page level by level, once; and
paging a level or a person by hand."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services
from incidents.errors import DomainError, StateConflict
from incidents.models import (
    Audience,
    ChannelTarget,
    Incident,
    Notification,
    Severity,
    Source,
    Status,
)
from incidents.watchdogs import escalation_due_at
from oncall.models import Escalation, OnCallRole, Page, StuckRule
from oncall.services.escalation import (
    escalate_stuck,
    escalate_unacknowledged,
    level_due_at,
    page_manually,
    policy_for,
)

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("rita", "lee", "max", "ivy")}


@pytest.fixture
def team(make_team, make_rotation, api_service, people):
    """Platform owns the API; Rita is its on-call responder."""
    team = make_team("Platform", services=[api_service])
    make_rotation(team, OnCallRole.RESPONDER, members=[people["rita"]])
    return team


@pytest.fixture
def policy(make_policy, team, people):
    """L1 the incident's team at once, L2 Lee after 15 minutes, L3 Max after 30."""
    return make_policy(
        levels=[
            {"name": "On-call engineer", "delay": timedelta(0), "incident_team": True},
            {"name": "Team lead", "delay": timedelta(minutes=15), "users": [people["lee"]]},
            {"name": "Manager", "delay": timedelta(minutes=30), "users": [people["max"]]},
        ]
    )


@pytest.fixture
def incident(clock, declare, api_service, policy):
    return declare(services=[api_service], severity=Severity.objects.get(key="SEV4"))


def paged(incident, reason):
    pages = Page.objects.filter(incident=incident, reason=reason).order_by("pk")
    return [(page.user.username, page.level) for page in pages]


def summaries(incident):
    return list(incident.timeline.filter(kind="paging").values_list("summary", flat=True))


def test_levels_fire_at_their_delays_and_each_only_once(clock, incident):
    assert escalate_unacknowledged() == 1
    assert paged(incident, "escalation") == [("rita", 1)]
    assert escalate_unacknowledged() == 0
    clock.move_to(NOW + 15 * MIN - timedelta(seconds=1))
    assert escalate_unacknowledged() == 0
    clock.move_to(NOW + 15 * MIN)
    assert escalate_unacknowledged() == 1
    assert escalate_unacknowledged() == 0
    assert paged(incident, "escalation") == [("rita", 1), ("lee", 2)]
    assert Notification.objects.filter(incident=incident, event="page", recipient__username="lee")
    assert "Not acknowledged in time: escalated to L2 Team lead" in summaries(incident)
    assert list(Escalation.objects.filter(incident=incident).values_list("level", "due_at")) == [
        (1, NOW),
        (2, NOW + 15 * MIN),
    ]


def test_a_watchdog_that_missed_levels_fires_them_all_in_one_round(clock, incident):
    clock.move_to(NOW + 31 * MIN)
    assert escalate_unacknowledged() == 3
    assert paged(incident, "escalation") == [("rita", 1), ("lee", 2), ("max", 3)]


def test_a_level_without_delay_follows_the_severity_timing(clock, declare, make_policy, people):
    make_policy(
        "Two levels",
        levels=[
            {"name": "Duty", "delay": None, "users": [people["ivy"]]},
            {"name": "Lead", "delay": None, "users": [people["lee"]]},
        ],
    )
    sev1 = Severity.objects.get(key="SEV1")
    incident = declare(severity=sev1)
    policy = policy_for(incident)
    first, second = policy.levels.all()
    assert level_due_at(incident, first) == escalation_due_at(incident, 1) == NOW + 15 * MIN
    assert level_due_at(incident, second) == NOW + 30 * MIN
    clock.move_to(NOW + 15 * MIN - timedelta(seconds=1))
    assert escalate_unacknowledged() == 0
    clock.move_to(NOW + 15 * MIN)
    assert escalate_unacknowledged() == 1
    assert paged(incident, "escalation") == [("ivy", 1)]


def test_acknowledging_stops_further_levels_and_the_pages(clock, incident, people):
    escalate_unacknowledged()
    services.incident_acknowledge(incident=incident, actor=people["rita"], source=Source.API)
    clock.move_to(NOW + 40 * MIN)
    assert escalate_unacknowledged() == 0
    assert paged(incident, "escalation") == [("rita", 1)]
    assert not Page.objects.filter(
        incident=incident, acknowledged_at__isnull=True, stopped_at__isnull=True
    ).exists()


def test_someone_already_being_paged_is_not_paged_again_by_the_next_level(
    clock, make_policy, declare, api_service, team, people
):
    make_policy(
        levels=[
            {"name": "On-call engineer", "delay": timedelta(0), "incident_team": True},
            {"name": "Everyone", "delay": 5 * MIN, "users": [people["rita"], people["lee"]]},
        ]
    )
    incident = declare(services=[api_service], severity=Severity.objects.get(key="SEV4"))
    escalate_unacknowledged()
    clock.move_to(NOW + 5 * MIN)
    escalate_unacknowledged()
    assert paged(incident, "escalation") == [("rita", 1), ("lee", 2)]
    assert any("already being paged: rita" in summary for summary in summaries(incident))


def test_a_level_that_pages_nobody_warns_on_the_timeline_and_tells_the_lead(
    clock, make_policy, declare, commander
):
    make_policy(levels=[{"name": "Ghosts", "delay": timedelta(0)}])
    incident = declare(severity=Severity.objects.get(key="SEV4"))
    assert escalate_unacknowledged() == 1
    assert any(
        summary.startswith("Paged nobody: escalation L1 Ghosts: not acknowledged in time")
        for summary in summaries(incident)
    )
    told = Notification.objects.filter(incident=incident, event="page_problem")
    assert told.filter(recipient=commander, body__contains="L1 Ghosts").exists()


def test_a_level_channel_gets_the_page_in_the_outbox(clock, make_policy, declare):
    channel = ChannelTarget.objects.create(
        name="#ops", kind="webhook", address="https://hooks.example.com/ops"
    )
    make_policy(levels=[{"name": "Ops channel", "delay": timedelta(0), "targets": [channel]}])
    incident = declare(severity=Severity.objects.get(key="SEV4"))
    escalate_unacknowledged()
    assert Notification.objects.filter(incident=incident, event="page", target=channel).exists()
    assert "Not acknowledged in time: escalated to L1 Ops channel; told #ops" in summaries(incident)


def test_the_watchdog_costs_the_same_with_200_quiet_incidents(
    clock, incident, sev1, outage, people
):
    def round_queries():
        Escalation.objects.all().delete()
        Page.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            assert escalate_unacknowledged() == 1
        return len(queries)

    alone = round_queries()
    # Quiet: acknowledged, or waiting with every level fired, or not due yet.
    quiet = [
        Incident(
            reference=f"INC-2025-{n:04d}",
            title="Quiet",
            severity=sev1,
            incident_type=outage,
            status=Status.INVESTIGATING if n % 2 else Status.DECLARED,
            started_at=NOW,
            detected_at=NOW,
            declared_at=NOW + timedelta(hours=1),  # its levels are all in the future
            acknowledged_at=NOW if n % 2 else None,
        )
        for n in range(200)
    ]
    Incident.objects.bulk_create(quiet)
    assert round_queries() == alone


# --- stuck ------------------------------------------------------------------------------


@pytest.fixture
def stuck_incident(clock, declare, api_service, policy, people, sev1):
    StuckRule.objects.filter(severity=sev1).update(
        no_update_for=timedelta(hours=1), not_mitigated_in=timedelta(hours=2), level=2
    )
    incident = declare(services=[api_service], severity=sev1)
    services.incident_acknowledge(incident=incident, actor=people["rita"], source=Source.API)
    return incident


def test_no_status_update_escalates_once_per_missed_deadline(clock, stuck_incident, people):
    clock.move_to(NOW + 59 * MIN)
    assert escalate_stuck() == 0
    clock.move_to(NOW + 60 * MIN)
    assert escalate_stuck() == 1
    assert escalate_stuck() == 0
    assert paged(stuck_incident, "stuck") == [("lee", 2)]
    assert any(
        "Stuck, no status update since 2026-02-02 12:00 UTC: escalated to L2 Team lead" in s
        for s in summaries(stuck_incident)
    )
    clock.move_to(NOW + 70 * MIN)
    services.status_update_post(
        incident=stuck_incident, audience=Audience.INTERNAL, summary="Rolling back",
        actor=people["rita"], source=Source.API,
    )  # fmt: skip
    clock.move_to(NOW + 119 * MIN)
    assert escalate_stuck() == 0
    # Lee has not answered the first page: the next missed deadline is written on the
    # timeline, and Lee is not paged twice at once.
    clock.move_to(NOW + 130 * MIN)
    assert escalate_stuck() == 2  # the update missed again, and not mitigated in 2 hours
    reasons = Escalation.objects.filter(incident=stuck_incident).values_list("reason", "due_at")
    assert sorted(reasons) == [
        ("no_update", NOW + 60 * MIN),
        ("no_update", NOW + 130 * MIN),
        ("not_mitigated", NOW + 120 * MIN),
    ]
    assert paged(stuck_incident, "stuck") == [("lee", 2)]
    assert any("already being paged: lee" in s for s in summaries(stuck_incident))


def test_not_mitigated_in_time_escalates_once(clock, stuck_incident):
    StuckRule.objects.update(no_update_for=None)
    clock.move_to(NOW + 2 * 60 * MIN)
    assert escalate_stuck() == 1
    clock.move_to(NOW + 5 * 60 * MIN)
    assert escalate_stuck() == 0
    assert Escalation.objects.filter(incident=stuck_incident, reason="not_mitigated").count() == 1


def test_a_mitigated_incident_is_not_stuck(clock, stuck_incident, people):
    StuckRule.objects.update(no_update_for=None)
    services.incident_transition(
        incident=stuck_incident, to_status=Status.MONITORING, actor=people["rita"],
        source=Source.API,
    )  # fmt: skip
    clock.move_to(NOW + 3 * 60 * MIN)
    assert escalate_stuck() == 0


def test_a_stuck_rule_naming_a_missing_level_warns(clock, stuck_incident, commander):
    StuckRule.objects.update(level=9, no_update_for=None)
    clock.move_to(NOW + 2 * 60 * MIN)
    assert escalate_stuck() == 1
    assert any(
        "Platform escalation has no level 9" in summary for summary in summaries(stuck_incident)
    )


# --- by hand --------------------------------------------------------------------------


def test_paging_a_level_by_hand_pages_it_now(clock, incident, commander, people):
    outcome = page_manually(incident=incident, level=3, message="Need a decision",
                            actor=commander, source=Source.ADMIN)  # fmt: skip
    assert [page.user.username for page in outcome.pages] == ["max"]
    page = outcome.pages[0]
    assert (page.reason, page.level, page.created_by) == ("manual", 3, commander)
    assert "alice paged L3 Manager by hand: Need a decision" in summaries(incident)


def test_paging_a_person_by_hand(clock, incident, commander, people):
    outcome = page_manually(
        incident=incident, user=people["ivy"], actor=commander, source=Source.API
    )
    assert [page.user.username for page in outcome.pages] == ["ivy"]
    assert Notification.objects.filter(incident=incident, event="page", recipient=people["ivy"])
    with pytest.raises(StateConflict, match="already being paged by hand"):
        page_manually(incident=incident, user=people["ivy"], actor=commander, source=Source.API)


def test_paging_an_unknown_level_names_the_levels(clock, incident, commander):
    with pytest.raises(DomainError, match="has no level 7; its levels: L1 On-call engineer, L2"):
        page_manually(incident=incident, level=7, actor=commander, source=Source.API)


def test_paging_by_hand_takes_a_level_or_a_person_not_both(clock, incident, commander, people):
    with pytest.raises(DomainError, match="not both"):
        page_manually(
            incident=incident, level=1, user=people["ivy"], actor=commander, source=Source.API
        )
    with pytest.raises(DomainError, match="either a level"):
        page_manually(incident=incident, actor=commander, source=Source.API)


def test_nobody_is_paged_by_hand_for_a_confidential_incident_they_may_not_see(
    clock, declare, security_type, commander, people, policy
):
    incident = declare(incident_type=security_type)
    with pytest.raises(DomainError, match="may not see confidential"):
        page_manually(incident=incident, user=people["ivy"], actor=commander, source=Source.API)
    assert not Page.objects.filter(incident=incident, reason="manual").exists()


def test_nobody_is_paged_for_a_cancelled_incident(clock, incident, commander, people):
    services.incident_transition(
        incident=incident, to_status=Status.CANCELLED, actor=commander, source=Source.API
    )
    with pytest.raises(StateConflict, match="cancelled"):
        page_manually(incident=incident, user=people["ivy"], actor=commander, source=Source.API)


def test_a_level_paged_by_hand_that_reaches_nobody_warns(clock, make_policy, declare, commander):
    make_policy(levels=[{"name": "Ghosts", "delay": timedelta(0)}])
    incident = declare(severity=Severity.objects.get(key="SEV4"))
    outcome = page_manually(incident=incident, level=1, actor=commander, source=Source.API)
    assert outcome.pages == []
    assert any(s.startswith("Paged nobody: L1 Ghosts by hand") for s in summaries(incident))
